//! Small helpers for S3's XML documents and date formats.

use quick_xml::events::Event;

use crate::error::{ErrorCode, S3Error};

/// The XML namespace of S3 documents.
pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Escapes text for an XML element: the five markup characters, and CR
/// and LF as character references, as S3 does for keys. A parser would
/// turn a literal CR (or CR LF) into LF, so a key holding one would come
/// back changed; a reference survives.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

/// Characters `encoding-type=url` leaves alone (as AWS: unreserved and '/').
const URL_KEEP: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// A key (prefix, marker, delimiter) as a listing sends it: URL-encoded
/// when the client asked for `encoding-type=url`, else as text, which
/// [`el`] then XML-escapes; never URL-encoded unasked.
pub fn encode(s: &[u8], url: bool) -> String {
    if url {
        percent_encoding::percent_encode(s, URL_KEEP).to_string()
    } else {
        String::from_utf8_lossy(s).into_owned()
    }
}

/// The `encoding-type` parameter of a listing: absent (text) or `url`;
/// anything else is refused.
pub fn url_encoding(v: Option<&str>) -> Result<bool, S3Error> {
    match v {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(S3Error::new(ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request")),
    }
}

/// `<Tag>escaped</Tag>`.
pub fn el(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", esc(text))
}

/// ISO 8601 with milliseconds (`2024-01-02T03:04:05.000Z`), as listings use.
pub fn iso8601(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// IMF-fixdate (`Tue, 02 Jan 2024 03:04:05 GMT`) of whole seconds.
pub fn http_date(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000).max(0) as u64;
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A parsed XML element tree (enough for S3's request documents).
#[derive(Debug, Default)]
pub struct Node {
    /// Local element name.
    pub name: String,
    /// Text content.
    pub text: String,
    /// Child elements.
    pub children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    /// All children named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// Text of the first child named `name`.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Elements a request document may hold (10 000 parts need ~50 000).
const XML_NODES_MAX: usize = 100_000;
/// Nesting depth a request document may have.
const XML_DEPTH_MAX: usize = 16;

/// Parses a request document; malformed input is `MalformedXML`.
pub fn parse(body: &[u8]) -> Result<Node, S3Error> {
    let bad = || {
        S3Error::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut count = 0;
    loop {
        match reader.read_event().map_err(|_| bad())? {
            Event::Start(e) => {
                count += 1;
                if count > XML_NODES_MAX || stack.len() > XML_DEPTH_MAX {
                    return Err(bad());
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Node { name, ..Default::default() });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.last_mut().ok_or_else(bad)?.children.push(Node { name, ..Default::default() });
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|_| bad())?;
                stack.last_mut().ok_or_else(bad)?.text.push_str(&s);
            }
            Event::CData(t) => stack.last_mut().ok_or_else(bad)?.text.push_str(&String::from_utf8_lossy(&t)),
            Event::End(_) => {
                let done = stack.pop().ok_or_else(bad)?;
                stack.last_mut().ok_or_else(bad)?.children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut root = stack.pop().ok_or_else(bad)?;
    if !stack.is_empty() || root.children.len() != 1 {
        return Err(bad());
    }
    Ok(root.children.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(iso8601(1_369_353_600_123_000_000), "2013-05-24T00:00:00.123Z");
        assert_eq!(http_date(1_369_353_600_999_000_000), "Fri, 24 May 2013 00:00:00 GMT");
    }

    /// Keys are XML-escaped, never URL-encoded, unless the client asks.
    #[test]
    fn escapes_markup_and_line_ends() {
        assert_eq!(esc("a\nb\r\nc"), "a&#10;b&#13;&#10;c");
        assert_eq!(esc("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
        assert_eq!(esc("100%0A+ €"), "100%0A+ €");
        // What a parser reads back is the original text.
        let doc = format!("<K>{}</K>", esc("line\r\nnext\rlast&"));
        assert_eq!(parse(doc.as_bytes()).unwrap().text, "line\r\nnext\rlast&");
    }

    #[test]
    fn keys_are_url_encoded_only_when_asked() {
        assert_eq!(encode(b"a b+c/d\n%", true), "a%20b%2Bc/d%0A%25");
        assert_eq!(encode(b"a b+c/d\n%", false), "a b+c/d\n%");
        assert_eq!(el("Key", &encode(b"a\nb&", false)), "<Key>a&#10;b&amp;</Key>");
        assert!(!url_encoding(None).unwrap());
        assert!(url_encoding(Some("url")).unwrap());
        let e = url_encoding(Some("base64")).unwrap_err();
        assert_eq!((e.code.as_str(), e.status().as_u16()), ("InvalidArgument", 400));
    }

    #[test]
    fn parses_documents_and_rejects_garbage() {
        let n = parse(
            b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>",
        )
        .unwrap();
        assert_eq!(n.name, "Delete");
        assert_eq!(n.text_of("Quiet"), Some("true"));
        assert_eq!(
            n.all("Object").map(|o| o.text_of("Key").unwrap().to_string()).collect::<Vec<_>>(),
            vec!["a&b", "c"]
        );
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"").is_err());
    }
}

//! Rules for names, bucket names and S3 keys (keys are bucket-relative
//! paths, byte-exact: nothing is normalised, nothing aliased).

use crate::limits::{BUCKET_NAME_LEN_MAX, BUCKET_NAME_LEN_MIN, KEY_LEN_BYTES_MAX, NAME_LEN_BYTES_MAX};
use crate::{NsError, NsResult};

/// Checks one directory-entry name.
pub fn validate_name(name: &[u8]) -> NsResult<()> {
    if name.is_empty() {
        return Err(NsError::InvalidName("empty name".into()));
    }
    if name.len() > NAME_LEN_BYTES_MAX {
        return Err(NsError::NameTooLong);
    }
    if name == b"." || name == b".." {
        return Err(NsError::InvalidName("'.' and '..' are not names".into()));
    }
    if name.contains(&b'/') {
        return Err(NsError::InvalidName("'/' in a name".into()));
    }
    if name.contains(&0) {
        return Err(NsError::InvalidName("NUL in a name".into()));
    }
    Ok(())
}

/// Checks an S3 bucket name (3-63 of a-z, 0-9, '.', '-'; starts and ends
/// with a letter or digit; no '..'; not an IP address).
pub fn validate_bucket_name(name: &[u8]) -> NsResult<()> {
    let bad = |why: &str| Err(NsError::InvalidName(format!("bucket name {why}")));
    if name.len() < BUCKET_NAME_LEN_MIN || name.len() > BUCKET_NAME_LEN_MAX {
        return bad("must be 3 to 63 characters");
    }
    if !name.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-') {
        return bad("may hold only a-z, 0-9, '.' and '-'");
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge(name[0]) || !edge(name[name.len() - 1]) {
        return bad("must start and end with a letter or digit");
    }
    if name.windows(2).any(|w| w == b".." || w == b".-" || w == b"-.") {
        return bad("may not hold '..', '.-' or '-.'");
    }
    let s = std::str::from_utf8(name).expect("ascii checked above");
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("may not look like an IP address");
    }
    Ok(())
}

/// A key split into path components.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// Directory components, outermost first.
    pub dirs: Vec<&'a [u8]>,
    /// The file name, or `None` for a directory marker key ending in '/'.
    pub leaf: Option<&'a [u8]>,
}

/// Splits and checks a key: no empty, `.` or `..` component, no NUL, each
/// component at most 255 bytes, the whole at most 1024 bytes.
pub fn parse_key(key: &[u8]) -> NsResult<ParsedKey<'_>> {
    if key.is_empty() {
        return Err(NsError::InvalidName("empty key".into()));
    }
    if key.len() > KEY_LEN_BYTES_MAX {
        return Err(NsError::KeyTooLong);
    }
    let (body, marker) = match key.strip_suffix(b"/") {
        Some(b) => (b, true),
        None => (key, false),
    };
    let mut comps: Vec<&[u8]> = body.split(|&c| c == b'/').collect();
    for c in &comps {
        match validate_name(c) {
            Ok(()) => {}
            Err(NsError::InvalidName(why)) => {
                return Err(NsError::InvalidName(format!("key component: {why}")));
            }
            Err(e) => return Err(e),
        }
    }
    let leaf = if marker { None } else { comps.pop() };
    Ok(ParsedKey { dirs: comps, leaf })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [&b"a"[..], b"a.b", b"...", &[0xff, 0xfe], &[b'x'; 255]] {
            validate_name(ok).unwrap();
        }
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(matches!(validate_name(bad), Err(NsError::InvalidName(_))), "{bad:?}");
        }
        assert!(matches!(validate_name(&[b'x'; 256]), Err(NsError::NameTooLong)));
    }

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.v2", "a1b", "0ab"] {
            validate_bucket_name(ok.as_bytes()).unwrap();
        }
        for bad in ["ab", "ABC", "a_b", "-ab", "ab-", "a..b", "192.168.1.1", "a.-b", &"a".repeat(64)] {
            assert!(validate_bucket_name(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys() {
        let k = parse_key(b"a/b/c").unwrap();
        assert_eq!(k.dirs, vec![&b"a"[..], b"b"]);
        assert_eq!(k.leaf, Some(&b"c"[..]));
        let m = parse_key(b"a/b/").unwrap();
        assert_eq!(m.dirs, vec![&b"a"[..], b"b"]);
        assert_eq!(m.leaf, None);
        for bad in [&b""[..], b"/a", b"a//b", b"a/./b", b"a/../b", b"..", b"a/\0", b"//", b"/"] {
            assert!(matches!(parse_key(bad), Err(NsError::InvalidName(_))), "{bad:?}");
        }
        let long_comp = [b'x'; 256];
        assert!(matches!(parse_key(&long_comp), Err(NsError::NameTooLong)));
        let long_key: Vec<u8> = std::iter::repeat_n(&b"abcdefgh/"[..], 114).flatten().copied().collect();
        assert!(matches!(parse_key(&long_key), Err(NsError::KeyTooLong)));
    }
}

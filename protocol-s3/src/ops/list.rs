//! ListObjects (v1 and v2).

use base64::Engine;
use http::Response;
use namespace::{ListEntry, ListParams};

use crate::body::Body;
use crate::error::{Ctx, S3Error};
use crate::reply::xml_response;
use crate::request::ReqCtx;
use crate::xml::{el, iso8601, NS};

/// Default and largest `max-keys`.
const MAX_KEYS_DEFAULT: usize = 1000;

/// Characters `encoding-type=url` leaves alone (as AWS: unreserved and '/').
const URL_KEEP: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

fn encode(s: &[u8], url: bool) -> String {
    if url {
        percent_encoding::percent_encode(s, URL_KEEP).to_string()
    } else {
        String::from_utf8_lossy(s).into_owned()
    }
}

fn token_encode(pos: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pos)
}

fn token_decode(t: &str) -> Result<Vec<u8>, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

/// GET /b (v1) and GET /b?list-type=2 (v2).
pub async fn list_objects(c: ReqCtx, v2: bool) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let q = &c.query;
    let url = match q.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => return Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request")),
    };
    let max_keys = match q.get("max-keys") {
        None => MAX_KEYS_DEFAULT,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| S3Error::invalid_argument("Provided max-keys not an integer or within integer range"))?
            as usize,
    }
    .min(MAX_KEYS_DEFAULT);
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delimiter = q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let token = if v2 { q.get("continuation-token").map(str::to_string) } else { None };
    let start_after = if v2 { q.get("start-after").map(str::to_string) } else { q.get("marker").map(str::to_string) };
    let position = match &token {
        Some(t) => Some(token_decode(t)?),
        None => start_after.clone().filter(|s| !s.is_empty()).map(String::into_bytes),
    };
    let params = ListParams {
        prefix: prefix.clone().into_bytes(),
        delimiter: delimiter.clone().map(String::into_bytes),
        start_after: position,
        max_keys,
    };
    let page = if max_keys == 0 {
        namespace::ListPage::default()
    } else {
        let (bucket, caller) = (c.bucket().as_bytes().to_vec(), c.auth.caller.clone());
        c.blocking(|ns| ns.list_objects(&caller, &bucket, &params), Ctx::Bucket)?
    };
    let fetch_owner = !v2 || q.get("fetch-owner") == Some("true");
    let mut s = format!("<ListBucketResult xmlns=\"{NS}\">{}", el("Name", c.bucket()));
    s.push_str(&el("Prefix", &encode(prefix.as_bytes(), url)));
    if let Some(d) = &delimiter {
        s.push_str(&el("Delimiter", &encode(d.as_bytes(), url)));
    }
    s.push_str(&el("MaxKeys", &max_keys.to_string()));
    if url {
        s.push_str(&el("EncodingType", "url"));
    }
    s.push_str(&el("IsTruncated", if page.truncated { "true" } else { "false" }));
    let mut last_key: Option<Vec<u8>> = None;
    let mut body = String::new();
    for e in &page.entries {
        match e {
            ListEntry::Object { key, info } => {
                body.push_str("<Contents>");
                body.push_str(&el("Key", &encode(key, url)));
                body.push_str(&el("LastModified", &iso8601(info.inode.mtime)));
                body.push_str(&el("ETag", &format!("\"{}\"", info.etag)));
                body.push_str(&el("Size", &info.inode.size.to_string()));
                body.push_str(&el("StorageClass", "STANDARD"));
                if fetch_owner {
                    body.push_str(&format!(
                        "<Owner>{}{}</Owner>",
                        el("ID", &info.inode.uid.to_string()),
                        el("DisplayName", &info.inode.uid.to_string())
                    ));
                }
                body.push_str("</Contents>");
            }
            ListEntry::CommonPrefix(p) => {
                body.push_str(&format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", &encode(p, url))))
            }
        }
        last_key = Some(e.key().to_vec());
    }
    if v2 {
        s.push_str(&el("KeyCount", &page.entries.len().to_string()));
        if let Some(t) = &token {
            s.push_str(&el("ContinuationToken", t));
        }
        if let Some(sa) = &start_after {
            s.push_str(&el("StartAfter", &encode(sa.as_bytes(), url)));
        }
        if page.truncated {
            if let Some(next) = &page.next_start_after {
                s.push_str(&el("NextContinuationToken", &token_encode(next)));
            }
        }
    } else {
        s.push_str(&el("Marker", &encode(start_after.as_deref().unwrap_or("").as_bytes(), url)));
        if page.truncated && delimiter.is_some() {
            if let Some(k) = &last_key {
                s.push_str(&el("NextMarker", &encode(k, url)));
            }
        }
    }
    s.push_str(&body);
    s.push_str("</ListBucketResult>");
    Ok(xml_response(s))
}

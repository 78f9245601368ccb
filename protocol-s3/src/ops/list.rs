//! ListObjects (v1 and v2) and ListObjectVersions (every object is its
//! one `null` version: buckets are never versioned).

use base64::Engine;
use http::Response;
use namespace::{ListEntry, ListParams};

use crate::body::Body;
use crate::error::{Ctx, S3Error};
use crate::reply::xml_response;
use crate::request::ReqCtx;
use crate::router::Query;
use crate::xml::{el, encode, iso8601, url_encoding, NS};

/// Default and largest `max-keys`.
const MAX_KEYS_DEFAULT: usize = 1000;

fn token_encode(pos: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pos)
}

fn token_decode(t: &str) -> Result<Vec<u8>, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

/// `max-keys`: a non-negative integer, capped at 1000 (the default).
fn max_keys(q: &Query) -> Result<usize, S3Error> {
    Ok(match q.get("max-keys") {
        None => MAX_KEYS_DEFAULT,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| S3Error::invalid_argument("Provided max-keys not an integer or within integer range"))?
            as usize,
    }
    .min(MAX_KEYS_DEFAULT))
}

/// GET /b (v1) and GET /b?list-type=2 (v2).
pub async fn list_objects(c: ReqCtx, v2: bool) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let q = &c.query;
    let url = url_encoding(q.get("encoding-type"))?;
    let max_keys = max_keys(q)?;
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
                push_object_fields(&mut body, info);
                if fetch_owner {
                    body.push_str(&owner(info));
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

/// The version id of every object: buckets are never versioned.
const NULL_VERSION: &str = "null";

/// Where a ListObjectVersions page starts: strictly after `key-marker`
/// (whose only version is `null`). A `version-id-marker` needs a key
/// marker and, in an unversioned bucket, can only be `null`.
fn versions_position(q: &Query) -> Result<Option<Vec<u8>>, S3Error> {
    let key_marker = q.get("key-marker").filter(|k| !k.is_empty());
    match (key_marker, q.get("version-id-marker").filter(|v| !v.is_empty())) {
        (None, Some(_)) => {
            Err(S3Error::invalid_argument("A version-id marker cannot be specified without a key marker."))
        }
        (_, Some(v)) if v != NULL_VERSION => Err(S3Error::invalid_argument("Invalid version id specified")),
        (k, _) => Ok(k.map(|k| k.as_bytes().to_vec())),
    }
}

/// GET /b?versions: the bucket's objects, each as its one version `null`
/// (IsLatest), with prefix, delimiter, key-marker/version-id-marker,
/// max-keys and `encoding-type=url`, by the same walk as ListObjects.
pub async fn list_versions(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let q = &c.query;
    let url = url_encoding(q.get("encoding-type"))?;
    let max_keys = max_keys(q)?;
    let start_after = versions_position(q)?;
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delimiter = q.get("delimiter").filter(|d| !d.is_empty()).map(str::to_string);
    let params = ListParams {
        prefix: prefix.clone().into_bytes(),
        delimiter: delimiter.clone().map(String::into_bytes),
        start_after: start_after.clone(),
        max_keys,
    };
    let page = if max_keys == 0 {
        namespace::ListPage::default()
    } else {
        let (bucket, caller) = (c.bucket().as_bytes().to_vec(), c.auth.caller.clone());
        c.blocking(|ns| ns.list_objects(&caller, &bucket, &params), Ctx::Bucket)?
    };
    let mut s = format!("<ListVersionsResult xmlns=\"{NS}\">{}", el("Name", c.bucket()));
    s.push_str(&el("Prefix", &encode(prefix.as_bytes(), url)));
    s.push_str(&el("KeyMarker", &encode(start_after.as_deref().unwrap_or_default(), url)));
    s.push_str(&el("VersionIdMarker", q.get("version-id-marker").unwrap_or("")));
    if page.truncated {
        if let Some(last) = page.entries.last() {
            s.push_str(&el("NextKeyMarker", &encode(last.key(), url)));
            s.push_str(&el("NextVersionIdMarker", NULL_VERSION));
        }
    }
    s.push_str(&el("MaxKeys", &max_keys.to_string()));
    if let Some(d) = &delimiter {
        s.push_str(&el("Delimiter", &encode(d.as_bytes(), url)));
    }
    if url {
        s.push_str(&el("EncodingType", "url"));
    }
    s.push_str(&el("IsTruncated", if page.truncated { "true" } else { "false" }));
    for e in &page.entries {
        match e {
            ListEntry::Object { key, info } => {
                s.push_str("<Version>");
                s.push_str(&el("Key", &encode(key, url)));
                s.push_str(&el("VersionId", NULL_VERSION));
                s.push_str(&el("IsLatest", "true"));
                push_object_fields(&mut s, info);
                s.push_str(&owner(info));
                s.push_str("</Version>");
            }
            ListEntry::CommonPrefix(p) => {
                s.push_str(&format!("<CommonPrefixes>{}</CommonPrefixes>", el("Prefix", &encode(p, url))))
            }
        }
    }
    s.push_str("</ListVersionsResult>");
    Ok(xml_response(s))
}

/// The fields every listed object carries, in S3's order (ListObjects
/// `<Contents>` and ListObjectVersions `<Version>` alike).
fn push_object_fields(out: &mut String, info: &namespace::ObjectInfo) {
    out.push_str(&el("LastModified", &iso8601(info.inode.mtime)));
    out.push_str(&el("ETag", &format!("\"{}\"", info.etag)));
    out.push_str(&el("Size", &info.inode.size.to_string()));
    out.push_str(&el("StorageClass", "STANDARD"));
}

/// `<Owner>`: the object's uid as both ID and display name.
fn owner(info: &namespace::ObjectInfo) -> String {
    let uid = info.inode.uid.to_string();
    format!("<Owner>{}{}</Owner>", el("ID", &uid), el("DisplayName", &uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_markers() {
        let pos = |q: &str| versions_position(&Query::parse(Some(q)));
        assert_eq!(pos("versions").unwrap(), None);
        assert_eq!(pos("versions&key-marker=a%2Fb").unwrap(), Some(b"a/b".to_vec()));
        assert_eq!(pos("versions&key-marker=a&version-id-marker=null").unwrap(), Some(b"a".to_vec()));
        for bad in ["versions&version-id-marker=null", "versions&key-marker=a&version-id-marker=3HL4kqtJ"] {
            let e = pos(bad).unwrap_err();
            assert_eq!((e.code.as_str(), e.status().as_u16()), ("InvalidArgument", 400), "{bad}");
        }
    }

    #[test]
    fn max_keys_is_capped_and_checked() {
        assert_eq!(max_keys(&Query::parse(None)).unwrap(), 1000);
        assert_eq!(max_keys(&Query::parse(Some("max-keys=5000"))).unwrap(), 1000);
        assert_eq!(max_keys(&Query::parse(Some("max-keys=0"))).unwrap(), 0);
        assert!(max_keys(&Query::parse(Some("max-keys=-1"))).is_err());
        assert!(max_keys(&Query::parse(Some("max-keys=x"))).is_err());
    }
}

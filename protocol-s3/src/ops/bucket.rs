//! Bucket operations.

use base64::Engine;
use http::{HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::error::{Ctx, S3Error};
use crate::reply::{status_response, xml_response};
use crate::request::ReqCtx;
use crate::xml::{el, iso8601, NS};

/// Bodies of CreateBucket (a location constraint) are small.
const CREATE_BUCKET_BODY_BYTES_MAX: u64 = 64 << 10;

/// Default and largest `max-buckets`, as S3.
const MAX_BUCKETS: usize = 10_000;

/// One ListBuckets page over `names` (any order): sorted by name, those
/// starting with `prefix` and after `after`, at most `max`; and the name
/// to continue after when more follow.
fn bucket_page<T>(
    mut names: Vec<(String, T)>,
    prefix: &str,
    after: Option<&str>,
    max: usize,
) -> (Vec<(String, T)>, Option<String>) {
    names.retain(|(n, _)| n.starts_with(prefix) && after.is_none_or(|a| n.as_str() > a));
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let more = names.len() > max;
    names.truncate(max);
    let next = if more { names.last().map(|(n, _)| n.clone()) } else { None };
    (names, next)
}

/// `max-buckets`: 1..=10000, default 10000.
fn max_buckets(v: Option<&str>) -> Result<usize, S3Error> {
    match v {
        None => Ok(MAX_BUCKETS),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_BUCKETS).contains(n))
            .ok_or_else(|| S3Error::invalid_argument("max-buckets must be an integer between 1 and 10000")),
    }
}

/// The opaque continuation token: the last bucket name sent.
fn token_encode(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

fn token_decode(t: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))
}

/// GET / (`max-buckets`, `continuation-token`, `prefix`; `bucket-region`
/// is ignored: every bucket is in the one region).
pub async fn list_buckets(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    let max = max_buckets(c.query.get("max-buckets"))?;
    let after = c.query.get("continuation-token").filter(|t| !t.is_empty()).map(token_decode).transpose()?;
    let prefix = c.query.get("prefix").unwrap_or("").to_string();
    let buckets = c.blocking(|ns| ns.list_buckets(), Ctx::Bucket)?;
    // A key sees the buckets it holds a right on, and no others.
    let visible: Vec<(String, namespace::Inode)> = buckets
        .into_iter()
        .map(|(n, inode)| (String::from_utf8_lossy(&n).into_owned(), inode))
        .filter(|(n, _)| c.auth.rights.on(n).is_some())
        .collect();
    let (page, next) = bucket_page(visible, &prefix, after.as_deref(), max);
    let mut s = format!(
        "<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner><ID>{0}</ID><DisplayName>{0}</DisplayName></Owner><Buckets>",
        crate::xml::esc(&c.auth.access_key)
    );
    for (name, inode) in page {
        s.push_str(&format!(
            "<Bucket>{}{}{}</Bucket>",
            el("Name", &name),
            el("CreationDate", &iso8601(inode.ctime)),
            el("BucketRegion", &c.state.region)
        ));
    }
    s.push_str("</Buckets>");
    if let Some(n) = next {
        s.push_str(&el("ContinuationToken", &token_encode(&n)));
    }
    if c.query.get("prefix").is_some() {
        s.push_str(&el("Prefix", &prefix));
    }
    s.push_str("</ListAllMyBucketsResult>");
    Ok(xml_response(s))
}

/// PUT /b
pub async fn create_bucket(mut c: ReqCtx) -> Result<Response<Body>, S3Error> {
    let payload = c.auth.payload.clone();
    crate::payload::read_small(&mut c.body, &c.headers, &payload, CREATE_BUCKET_BODY_BYTES_MAX).await?;
    let name = c.bucket().as_bytes().to_vec();
    let caller = c.auth.caller.clone();
    c.blocking(|ns| ns.create_bucket(&caller, &name), Ctx::Bucket)?;
    let mut r = status_response(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&format!("/{}", c.bucket())) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    Ok(r)
}

/// HEAD /b
pub async fn head_bucket(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let mut r = status_response(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&c.state.region) {
        r.headers_mut().insert("x-amz-bucket-region", v);
    }
    Ok(r)
}

/// DELETE /b
pub async fn delete_bucket(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    let name = c.bucket().as_bytes().to_vec();
    c.blocking(|ns| ns.delete_bucket(&name), Ctx::Bucket)?;
    Ok(status_response(StatusCode::NO_CONTENT))
}

/// GET /b?location
pub async fn get_location(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    // us-east-1 is reported as an empty constraint, as AWS does.
    let region = if c.state.region == "us-east-1" { String::new() } else { c.state.region.clone() };
    Ok(xml_response(format!("<LocationConstraint xmlns=\"{NS}\">{}</LocationConstraint>", crate::xml::esc(&region))))
}

/// GET /b?versioning: versioning is never enabled.
pub async fn get_versioning(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    Ok(xml_response(format!("<VersioningConfiguration xmlns=\"{NS}\"/>")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_pages() {
        let names = || ["data", "b-two", "a-one", "b-one", "c"].map(|n| (n.to_string(), ())).to_vec();
        let page = |prefix: &str, after: Option<&str>, max: usize| {
            let (page, next) = bucket_page(names(), prefix, after, max);
            (page.into_iter().map(|(n, _)| n).collect::<Vec<String>>().join(","), next)
        };
        assert_eq!(page("", None, 2), ("a-one,b-one".to_string(), Some("b-one".to_string())));
        assert_eq!(page("", Some("b-one"), 2), ("b-two,c".to_string(), Some("c".to_string())));
        assert_eq!(page("", Some("c"), 2), ("data".to_string(), None));
        assert_eq!(page("b-", None, 2), ("b-one,b-two".to_string(), None));
        assert_eq!(page("", None, 5).1, None);
        assert_eq!(token_decode(&token_encode("b-one")).unwrap(), "b-one");
        assert!(token_decode("%%%").is_err());
    }

    #[test]
    fn max_buckets_range() {
        assert_eq!(max_buckets(None).unwrap(), 10_000);
        assert_eq!(max_buckets(Some("1")).unwrap(), 1);
        for bad in ["0", "10001", "-1", "x"] {
            let e = max_buckets(Some(bad)).unwrap_err();
            assert_eq!((e.code.as_str(), e.status().as_u16()), ("InvalidArgument", 400));
        }
    }
}

//! HTTP preconditions: the `If-*` headers of GET and HEAD, the
//! `x-amz-copy-source-if-*` headers of a copy source (RFC 7232 order, whole
//! seconds), and the write condition of a PUT or CopyObject.

use http::{HeaderMap, StatusCode};
use namespace::WriteCondition;

use crate::error::{ErrorCode, S3Error};

/// The write condition of a PUT or CopyObject: `If-None-Match: *` or
/// `If-Match`.
pub fn write_condition(h: &HeaderMap) -> Result<WriteCondition, S3Error> {
    if let Some(v) = h.get(http::header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if v.trim() != "*" {
            return Err(S3Error::not_implemented("If-None-Match with a value other than '*' on writes"));
        }
        return Ok(WriteCondition::IfNoneMatchStar);
    }
    if let Some(v) = h.get(http::header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        return Ok(WriteCondition::IfMatch(unquote(v).to_string()));
    }
    Ok(WriteCondition::None)
}

fn unquote(s: &str) -> &str {
    s.trim().trim_start_matches("W/").trim_matches('"')
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || unquote(t) == etag
    })
}

fn parse_http_date(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs() as i64)
}

/// GET/HEAD conditionals (RFC 7232 order); Ok(Some(304)) to answer Not
/// Modified. Times compare in whole seconds.
pub fn check_conditions(h: &HeaderMap, etag: &str, mtime_ns: i64, prefix: &str) -> Result<Option<StatusCode>, S3Error> {
    let get = |n: &str| h.get(format!("{prefix}{n}").as_str()).and_then(|v| v.to_str().ok());
    let mtime = mtime_ns.div_euclid(1_000_000_000);
    let failed = || {
        Err(S3Error::new(
            ErrorCode::PreconditionFailed,
            "At least one of the preconditions you specified did not hold.",
        ))
    };
    match get("if-match") {
        Some(m) => {
            if !etag_matches(m, etag) {
                return failed();
            }
        }
        None => {
            if let Some(t) = get("if-unmodified-since").and_then(parse_http_date) {
                if mtime > t {
                    return failed();
                }
            }
        }
    }
    match get("if-none-match") {
        Some(m) => {
            if etag_matches(m, etag) {
                return if prefix.is_empty() { Ok(Some(StatusCode::NOT_MODIFIED)) } else { failed() };
            }
        }
        None => {
            if let Some(t) = get("if-modified-since").and_then(parse_http_date) {
                if mtime <= t {
                    return if prefix.is_empty() { Ok(Some(StatusCode::NOT_MODIFIED)) } else { failed() };
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::xml::http_date;

    #[test]
    fn conditionals_follow_rfc7232_precedence() {
        let mut h = HeaderMap::new();
        let t = 1_700_000_000i64;
        let ns = t * 1_000_000_000;
        h.insert("if-match", HeaderValue::from_static("\"abc\""));
        h.insert("if-unmodified-since", HeaderValue::from_str(&http_date((t - 100) * 1_000_000_000)).unwrap());
        assert_eq!(
            check_conditions(&h, "abc", ns, "").unwrap(),
            None,
            "If-Match passing wins over If-Unmodified-Since"
        );
        let mut h = HeaderMap::new();
        h.insert("if-none-match", HeaderValue::from_static("\"abc\""));
        h.insert("if-modified-since", HeaderValue::from_str(&http_date((t - 100) * 1_000_000_000)).unwrap());
        assert_eq!(check_conditions(&h, "abc", ns, "").unwrap(), Some(StatusCode::NOT_MODIFIED));
        let mut h = HeaderMap::new();
        h.insert("if-match", HeaderValue::from_static("\"zzz\""));
        assert_eq!(check_conditions(&h, "abc", ns, "").unwrap_err().status(), StatusCode::PRECONDITION_FAILED);
    }
}

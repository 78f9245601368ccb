//! Responses: the XML 200 document, a bodiless status, and S3's XML error
//! document.
//!
//! Invariant: an error's status is its code's ([`crate::error::ErrorCode`]),
//! and its message, details and resource are escaped.

use http::{HeaderValue, Response, StatusCode};

use crate::body::{full, Body};
use crate::error::S3Error;
use crate::xml::{el, esc};

/// An XML 200 response.
pub fn xml_response(body: String) -> Response<Body> {
    let mut r = Response::new(full(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")));
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

/// A response with a status and no body.
pub fn status_response(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Vec::new()));
    *r.status_mut() = status;
    r
}

/// S3's XML error document: Code, Message, the code's details, Resource,
/// RequestId.
fn error_document(e: &S3Error, resource: &str, id: &str) -> String {
    let details: String = e.details.iter().map(|(name, value)| el(name, value)).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>{details}<Resource>{}</Resource><RequestId>{}</RequestId></Error>",
        e.code,
        esc(&e.message),
        esc(resource),
        esc(id)
    )
}

/// The XML error document (no body for HEAD), with the error's headers.
pub fn error_response(e: &S3Error, resource: &str, id: &str, head: bool) -> Response<Body> {
    let body = if head { full(Vec::new()) } else { full(error_document(e, resource, id)) };
    let mut r = Response::new(body);
    *r.status_mut() = e.status();
    if !head {
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    }
    for (name, value) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(*name, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn error_document_carries_details_and_headers() {
        let e = S3Error::new(ErrorCode::InvalidRange, "The requested range is not satisfiable")
            .with_detail("RangeRequested", "bytes=0-8388607")
            .with_detail("ActualObjectSize", "0")
            .with_header("content-range", "bytes */0");
        assert_eq!(
            error_document(&e, "/b/k<", "ID1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRange</Code>\
             <Message>The requested range is not satisfiable</Message>\
             <RangeRequested>bytes=0-8388607</RangeRequested><ActualObjectSize>0</ActualObjectSize>\
             <Resource>/b/k&lt;</Resource><RequestId>ID1</RequestId></Error>"
        );
        for head in [false, true] {
            let r = error_response(&e, "/b/k", "ID1", head);
            assert_eq!(r.status().as_u16(), 416);
            assert_eq!(r.headers().get("content-range").unwrap(), "bytes */0");
        }
    }
}

//! Responses: the XML 200 document, a bodiless status, and S3's XML error
//! document.
//!
//! Invariant: an error's status is its code's ([`crate::error::ErrorCode`]),
//! and its message and resource are escaped.

use http::{HeaderValue, Response, StatusCode};

use crate::body::{full, Body};
use crate::error::S3Error;
use crate::xml::esc;

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

/// The XML error document (no body for HEAD).
pub fn error_response(e: &S3Error, resource: &str, id: &str, head: bool) -> Response<Body> {
    let body = if head {
        full(Vec::new())
    } else {
        full(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            e.code,
            esc(&e.message),
            esc(resource),
            id
        ))
    };
    let mut r = Response::new(body);
    *r.status_mut() = e.status();
    if !head {
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    }
    r
}

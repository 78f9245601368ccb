//! One request, from hyper to an operation: id, virtual-host or path
//! addressing, routing, authentication, rights, dispatch to `ops`, the
//! error document, and the hand-over to `observe` for the log line.
//!
//! Invariant: authentication and the bucket right are checked before any
//! operation runs; nothing in `ops` imports this module.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;

use crate::auth::authenticate;
use crate::body::Body;
use crate::error::{ErrorCode, S3Error};
use crate::observe::{Finished, ObservedBody, RequestBody};
use crate::reply::error_response;
use crate::request::ReqCtx;
// `server.rs` names the state through this module.
pub use crate::request::S3State;
use crate::router::{route, split_path, Endpoint, Query};

fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// Serves one HTTP request from `peer`. Its log line and metrics are
/// written when the response body ends (see [`crate::observe`]).
pub async fn handle(state: Arc<S3State>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let id = request_id();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let received = Arc::new(AtomicU64::new(0));
    let declared_body = body_length(&parts.headers);
    let ((op, op_name), result) = serve(state, parts, RequestBody::new(body, received.clone())).await;
    let (mut resp, code) = match result {
        Ok(r) => (r, None),
        Err(e) => {
            let mut r = error_response(&e, &path, &id, method == Method::HEAD);
            // Refused before its body was read (bad key, AccessDenied...):
            // hyper will close the connection rather than read the rest,
            // so say so, or a client reusing it sees a reset.
            if declared_body.is_some_and(|len| received.load(Ordering::Relaxed) < len) {
                r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            (r, Some(e.code))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    let status = resp.status().as_u16();
    let done = Finished { id, peer, op, op_name, status, code, received, started };
    resp.map(|b| ObservedBody::wrap(b, done))
}

/// The body length a request announces: its Content-Length, or `u64::MAX`
/// for a chunked body (length unknown); `None` when it has no body.
fn body_length(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Some(u64::MAX);
    }
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
}

async fn serve(
    state: Arc<S3State>,
    parts: http::request::Parts,
    body: RequestBody,
) -> ((String, &'static str), Result<Response<Body>, S3Error>) {
    let vhost = vhost_bucket(&state, &parts.headers);
    let (bucket, key) = match vhost.clone() {
        Some(b) => {
            let key: Vec<u8> = percent_encoding::percent_decode_str(parts.uri.path().trim_start_matches('/')).collect();
            (Some(b), (!key.is_empty()).then_some(key))
        }
        None => split_path(parts.uri.path()),
    };
    let query = Query::parse(parts.uri.query());
    let endpoint =
        route(&parts.method, bucket.as_deref(), key.is_some(), &query, parts.headers.contains_key("x-amz-copy-source"));
    let op = (format!("{endpoint:?}"), endpoint.name());
    let auth =
        match authenticate(&state.keys, &parts.method, &parts.uri, &parts.headers, vhost.as_deref(), SystemTime::now())
        {
            Ok(a) => a,
            Err(e) => return (op, Err(e)),
        };
    // S3 rights first; the namespace then checks POSIX permissions of the
    // key's identity, so a request must pass both.
    if let (Some(need), Some(b)) = (crate::rights::needed(&endpoint), bucket.as_deref()) {
        if let Err(e) = auth.rights.require(b, need) {
            return (op, Err(e));
        }
    }
    let ctx = ReqCtx { state, headers: parts.headers, query, bucket, key, auth, body };
    let r = dispatch(endpoint, ctx).await;
    (op, r)
}

fn vhost_bucket(state: &S3State, headers: &HeaderMap) -> Option<String> {
    let base = state.virtual_host_base.as_deref()?;
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let host = host.split(':').next()?;
    let b = host.strip_suffix(base)?.strip_suffix('.')?;
    (!b.is_empty()).then(|| b.to_string())
}

async fn dispatch(ep: Endpoint, c: ReqCtx) -> Result<Response<Body>, S3Error> {
    use crate::ops::{bucket, list, multipart, object};
    match ep {
        Endpoint::ListBuckets => bucket::list_buckets(c).await,
        Endpoint::CreateBucket => bucket::create_bucket(c).await,
        Endpoint::HeadBucket => bucket::head_bucket(c).await,
        Endpoint::DeleteBucket => bucket::delete_bucket(c).await,
        Endpoint::GetBucketLocation => bucket::get_location(c).await,
        Endpoint::GetBucketVersioning => bucket::get_versioning(c).await,
        Endpoint::ListObjectsV1 => list::list_objects(c, false).await,
        Endpoint::ListObjectsV2 => list::list_objects(c, true).await,
        Endpoint::ListObjectVersions => list::list_versions(c).await,
        Endpoint::ListMultipartUploads => multipart::list_uploads(c).await,
        Endpoint::DeleteObjects => object::delete_objects(c).await,
        Endpoint::PutObject => object::put_object(c).await,
        Endpoint::CopyObject => object::copy_object(c).await,
        Endpoint::GetObject => object::get_object(c, false).await,
        Endpoint::HeadObject => object::get_object(c, true).await,
        Endpoint::DeleteObject => object::delete_object(c).await,
        Endpoint::CreateMultipartUpload => multipart::create(c).await,
        Endpoint::UploadPart => multipart::upload_part(c, false).await,
        Endpoint::UploadPartCopy => multipart::upload_part(c, true).await,
        Endpoint::CompleteMultipartUpload => multipart::complete(c).await,
        Endpoint::AbortMultipartUpload => multipart::abort(c).await,
        Endpoint::ListParts => multipart::list_parts(c).await,
        Endpoint::NotImplemented(what) => Err(S3Error::not_implemented(&what)),
        Endpoint::MethodNotAllowed => {
            Err(S3Error::new(ErrorCode::MethodNotAllowed, "The specified method is not allowed against this resource."))
        }
    }
}

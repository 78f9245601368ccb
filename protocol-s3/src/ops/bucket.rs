//! Bucket operations.

use http::{HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::error::{Ctx, S3Error};
use crate::reply::{status_response, xml_response};
use crate::request::ReqCtx;
use crate::xml::{el, iso8601, NS};

/// Bodies of CreateBucket (a location constraint) are small.
const CREATE_BUCKET_BODY_BYTES_MAX: u64 = 64 << 10;

/// GET /
pub async fn list_buckets(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    let buckets = c.blocking(|ns| ns.list_buckets(), Ctx::Bucket)?;
    let mut s = format!(
        "<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner><ID>{0}</ID><DisplayName>{0}</DisplayName></Owner><Buckets>",
        c.auth.access_key
    );
    // A key sees the buckets it holds a right on, and no others.
    for (name, inode) in buckets.into_iter().filter(|(n, _)| c.auth.rights.on(&String::from_utf8_lossy(n)).is_some()) {
        s.push_str(&format!(
            "<Bucket>{}{}</Bucket>",
            el("Name", &String::from_utf8_lossy(&name)),
            el("CreationDate", &iso8601(inode.ctime))
        ));
    }
    s.push_str("</Buckets></ListAllMyBucketsResult>");
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

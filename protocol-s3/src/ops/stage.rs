//! What PUT, CopyObject, UploadPart and UploadPartCopy share: object
//! metadata from request headers, a request body streamed into a staged
//! object, and a copy source opened (and its bytes copied) under its
//! conditions.
//!
//! Invariant: nothing here publishes; a staged object becomes visible only
//! when its operation hands it to the namespace.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use namespace::limits::USER_METADATA_BYTES_MAX;
use namespace::{ObjMeta, ObjectInfo, ObjectReader, StagedObject};

use crate::checksum::unb64;
use crate::error::{Ctx, ErrorCode, S3Error};
use crate::ops::conditions::check_conditions;
use crate::payload::{read_payload, PayloadSummary};
use crate::request::ReqCtx;

/// Standard headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: [&str; 5] =
    ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"];

/// Content headers and user metadata of a PUT, Create or REPLACE copy.
pub fn meta_from_headers(h: &HeaderMap) -> Result<ObjMeta, S3Error> {
    let mut m = ObjMeta {
        content_type: h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        ..Default::default()
    };
    for name in STORED_HEADERS {
        if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
            let v = if name == "content-encoding" {
                // aws-chunked is transport framing, never stored.
                v.split(',')
                    .map(str::trim)
                    .filter(|p| *p != "aws-chunked" && !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                v.to_string()
            };
            if !v.is_empty() {
                m.headers.push((name.to_string(), v));
            }
        }
    }
    let mut size = 0;
    for (k, v) in h {
        if let Some(n) = k.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            size += n.len() + v.len();
            m.user_meta.push((n.to_string(), v));
        }
    }
    if size > USER_METADATA_BYTES_MAX {
        return Err(S3Error::new(
            ErrorCode::MetadataTooLarge,
            format!(
                "Your metadata headers exceed the maximum allowed metadata size ({USER_METADATA_BYTES_MAX} bytes)."
            ),
        ));
    }
    m.user_meta.sort();
    Ok(m)
}

/// Content-MD5, if given: 16 bytes, else `InvalidDigest`.
pub fn content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>, S3Error> {
    match h.get("content-md5") {
        None => Ok(None),
        Some(v) => {
            let raw = v.to_str().ok().and_then(unb64).filter(|r| r.len() == 16);
            let raw = raw
                .ok_or_else(|| S3Error::new(ErrorCode::InvalidDigest, "The Content-MD5 you specified was invalid."))?;
            Ok(Some(raw.try_into().expect("16 bytes")))
        }
    }
}

/// Streams the request body into a staged object, verifying everything.
pub async fn stage_body(c: &mut ReqCtx, limit: u64) -> Result<(StagedObject, PayloadSummary), S3Error> {
    let md5 = content_md5(&c.headers)?;
    let mut writer = c.state.ns.object_writer();
    let payload = c.auth.payload.clone();
    let summary = read_payload(&mut c.body, &c.headers, &payload, limit, |b: Bytes| {
        // Most frames only fill the chunk buffer; only the frame that
        // completes a chunk writes (and hashes) it, off the runtime.
        let r = if writer.would_block(b.len()) {
            tokio::task::block_in_place(|| writer.write(&b))
        } else {
            writer.write(&b)
        };
        r.map_err(|e| crate::error::from_ns(e, Ctx::Write))
    })
    .await?;
    let staged = tokio::task::block_in_place(|| writer.finish()).map_err(|e| crate::error::from_ns(e, Ctx::Write))?;
    if let Some(want) = md5 {
        if staged.md5 != want {
            return Err(S3Error::new(
                ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    Ok((staged, summary))
}

/// Parses `x-amz-copy-source` into (bucket, key).
pub fn copy_source(c: &ReqCtx) -> Result<(Vec<u8>, Vec<u8>), S3Error> {
    let raw = c.header("x-amz-copy-source").ok_or_else(|| S3Error::invalid_argument("missing x-amz-copy-source"))?;
    if raw.contains("?versionId=") {
        return Err(S3Error::not_implemented("copying a specific version"));
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw.trim_start_matches('/')).collect();
    let slash = decoded
        .iter()
        .position(|&b| b == b'/')
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source must be bucket/key"))?;
    let (bucket, key) = (decoded[..slash].to_vec(), decoded[slash + 1..].to_vec());
    // Copying reads the source: the key needs the read right there too.
    c.auth.rights.require(&String::from_utf8_lossy(&bucket), crate::rights::Right::Read)?;
    Ok((bucket, key))
}

/// Opens a copy source and checks the `x-amz-copy-source-if-*` conditions.
pub fn open_source(c: &ReqCtx) -> Result<(ObjectInfo, ObjectReader), S3Error> {
    let (sb, sk) = copy_source(c)?;
    let caller = c.auth.caller.clone();
    c.blocking(|ns| ns.bucket(&sb), Ctx::Bucket)?;
    let (info, reader) = c.blocking(|ns| ns.open_object(&caller, &sb, &sk), Ctx::Read)?;
    check_conditions(&c.headers, &info.etag, info.inode.mtime, "x-amz-copy-source-")?;
    Ok((info, reader))
}

/// Copies `[start, end)` of a source into a new staged object.
pub fn copy_range(
    ns: &Arc<namespace::Namespace>,
    reader: &ObjectReader,
    start: u64,
    end: u64,
) -> Result<StagedObject, S3Error> {
    tokio::task::block_in_place(|| {
        let mut w = ns.object_writer();
        let mut off = start;
        let mut buf = vec![0u8; ns.chunk_size_bytes()];
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            reader.read_at(off, &mut buf[..n])?;
            w.write(&buf[..n])?;
            off += n as u64;
        }
        w.finish()
    })
    .map_err(|e| crate::error::from_ns(e, Ctx::Read))
}

//! Object operations.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use namespace::limits::PUT_SIZE_BYTES_MAX;
use namespace::{Checksum, ObjectInfo, ObjectReader, PutOptions, PutTarget, StagedObject};

use crate::body::{Body, ChannelBody};
use crate::checksum::{b64, Algo};
use crate::error::{from_ns, Ctx, ErrorCode, S3Error};
use crate::ops::conditions::{check_conditions, write_condition};
use crate::ops::stage::{content_md5, copy_range, copy_source, meta_from_headers, open_source, stage_body};
use crate::payload::{read_small, PayloadSummary};
use crate::reply::{status_response, xml_response};
use crate::request::ReqCtx;
use crate::xml::{el, http_date, iso8601, NS};

/// Bytes a GET reads from the store per piece sent.
const GET_PIECE_BYTES: usize = 1 << 20;
/// Bytes of the first piece of a GET whose first byte is still arriving
/// from an upstream; each next piece is twice the last, up to
/// [`GET_PIECE_BYTES`], so the first bytes are sent before a whole piece
/// is here (time to first byte). Local reads start with whole pieces (a
/// 256 KiB GET stays one read).
const GET_FIRST_PIECE_BYTES: usize = 64 << 10;
/// Pieces buffered between the store reader and the connection.
const GET_PIECES_IN_FLIGHT: usize = 4;
/// Bytes a HEAD with `x-amz-checksum-mode` may read to compute a CRC64NVME
/// for extents whose CRC is unknown; beyond that it answers without one.
const HEAD_CRC_READ_BYTES_MAX: u64 = 16 << 20;
/// Keys one DeleteObjects may name.
const DELETE_OBJECTS_KEYS_MAX: usize = 1000;
/// Largest DeleteObjects document.
const DELETE_OBJECTS_BODY_BYTES_MAX: u64 = 2 << 20;

/// The checksums to store for a staged object: the client's, and always a
/// full-object CRC64NVME (free: combined from the chunk CRCs).
pub fn checksums_of(staged: &StagedObject, summary: &PayloadSummary) -> Vec<Checksum> {
    let mut out = Vec::new();
    if let Some((algo, v)) = &summary.checksum {
        out.push(Checksum { algorithm: algo.name().into(), kind: "FULL_OBJECT".into(), value: v.clone() });
    }
    if !out.iter().any(|c| c.algorithm == "CRC64NVME") {
        out.push(Checksum {
            algorithm: "CRC64NVME".into(),
            kind: "FULL_OBJECT".into(),
            value: b64(&staged.crc64.to_be_bytes()),
        });
    }
    out
}

/// The request's bucket (NoSuchBucket when missing) and key (refused when
/// it cannot be a path), resolved once for a write.
fn put_target(c: &ReqCtx) -> Result<PutTarget, S3Error> {
    let bucket = c.require_bucket()?;
    PutTarget::new(bucket.ino, c.key()).map_err(|e| crate::error::from_ns(e, Ctx::Write))
}

/// PUT /b/k
pub async fn put_object(mut c: ReqCtx) -> Result<Response<Body>, S3Error> {
    // The bucket is resolved and the key parsed once, into the target that
    // the early refusal and the publish both use.
    let target = put_target(&c)?;
    let mut meta = meta_from_headers(&c.headers)?;
    let condition = write_condition(&c.headers)?;
    // Refuse before the body is read when the publish would refuse anyway.
    let caller = c.auth.caller.clone();
    c.blocking(|ns| ns.check_put_access(&caller, &target), Ctx::Write)?;
    let (staged, summary) = stage_body(&mut c, PUT_SIZE_BYTES_MAX).await?;
    meta.checksums = checksums_of(&staged, &summary);
    let info =
        c.blocking(move |ns| ns.put_object_to(&caller, &target, staged, PutOptions { meta, condition }), Ctx::Write)?;
    let mut r = status_response(StatusCode::OK);
    set(&mut r, "etag", &format!("\"{}\"", info.etag));
    if let Some((algo, v)) = summary.checksum {
        set(&mut r, algo.header(), &v);
    }
    Ok(r)
}

fn set(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// 416 InvalidRange as S3 sends it: `Content-Range: bytes */<size>`, and
/// the range asked for and the object's size in the error document (the
/// CRT-based readers, s3torchconnector among them, read the size from
/// there when their first ranged GET meets an empty object).
fn unsatisfiable_range(requested: &str, size: u64) -> S3Error {
    S3Error::new(ErrorCode::InvalidRange, "The requested range is not satisfiable")
        .with_detail("RangeRequested", requested)
        .with_detail("ActualObjectSize", size.to_string())
        .with_header("content-range", format!("bytes */{size}"))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`; `Ok(None)` for no (or an ignored,
/// multi-range) header; `Err` InvalidRange when it cannot be satisfied.
fn parse_range(v: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(v) = v else { return Ok(None) };
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let unsatisfiable = || Err(unsatisfiable_range(v, size));
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else { return Ok(None) };
        if n == 0 || size == 0 {
            return unsatisfiable();
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let Ok(start) = a.parse::<u64>() else { return Ok(None) };
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if start >= size {
            return unsatisfiable();
        }
        (start, end)
    };
    Ok(Some(range))
}

/// Byte range `[start, end)` of part `n` of an object of `size` bytes, and
/// the part count, from the recorded layout (runs of equal-sized parts;
/// empty for an object written in one piece, which is its own part 1). A
/// part past the count is 400 InvalidPartNumber, as S3 answers.
fn part_range(layout: &[(u64, u32)], size: u64, n: u32) -> Result<(u64, u64, u32), S3Error> {
    let total: u32 = layout.iter().map(|(_, c)| c).sum::<u32>().max(1);
    let bad = || Err(S3Error::new(ErrorCode::InvalidPartNumber, "The requested partnumber is not satisfiable"));
    if n == 0 || n > total {
        return bad();
    }
    if layout.is_empty() {
        return Ok((0, size, 1));
    }
    let mut off = 0u64;
    let mut idx = 0u32;
    for (part, count) in layout {
        if n <= idx + count {
            let start = off + (n - idx - 1) as u64 * part;
            return Ok((start, (start + part).min(size), total));
        }
        off += part * *count as u64;
        idx += count;
    }
    bad()
}

fn object_headers(r: &mut Response<Body>, info: &ObjectInfo) {
    set(r, "etag", &format!("\"{}\"", info.etag));
    set(r, "last-modified", &http_date(info.inode.mtime));
    set(r, "accept-ranges", "bytes");
    set(r, "content-type", info.meta.content_type.as_deref().unwrap_or("binary/octet-stream"));
    for (k, v) in &info.meta.headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().insert(n, v);
        }
    }
    for (k, v) in &info.meta.user_meta {
        if let (Ok(n), Ok(v)) =
            (http::HeaderName::from_bytes(format!("x-amz-meta-{k}").as_bytes()), HeaderValue::from_bytes(v.as_bytes()))
        {
            r.headers_mut().insert(n, v);
        }
    }
}

/// GET /b/k and HEAD /b/k
pub async fn get_object(c: ReqCtx, head: bool) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let (bucket, key, caller) = (c.bucket().as_bytes().to_vec(), c.key().to_vec(), c.auth.caller.clone());
    let (info, reader) = c.blocking(|ns| ns.open_object(&caller, &bucket, &key), Ctx::Read)?;
    if let Some(status) = check_conditions(&c.headers, &info.etag, info.inode.mtime, "")? {
        let mut r = status_response(status);
        set(&mut r, "etag", &format!("\"{}\"", info.etag));
        set(&mut r, "last-modified", &http_date(info.inode.mtime));
        return Ok(r);
    }
    let size = reader.size();
    let mut parts_count = None;
    let range = match c.query.get("partNumber") {
        Some(n) => {
            let n: u32 = n.parse().map_err(|_| S3Error::invalid_argument("partNumber must be an integer"))?;
            let (s, e, total) = part_range(&info.meta.part_layout, info.inode.size, n)?;
            parts_count = Some(total);
            (!info.meta.part_layout.is_empty() && e > s).then(|| (s, e - 1))
        }
        None => parse_range(c.header("range"), size)?,
    };
    let mut r = status_response(StatusCode::OK);
    object_headers(&mut r, &info);
    if let Some(n) = parts_count {
        set(&mut r, "x-amz-mp-parts-count", &n.to_string());
    }
    let (start, end) = match range {
        Some((s, e)) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(&mut r, "content-range", &format!("bytes {s}-{e}/{size}"));
            (s, e + 1)
        }
        None => {
            // Checksums describe the whole object: only for full reads.
            if c.header("x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("enabled")) {
                for ck in &info.meta.checksums {
                    if let Some(a) = Algo::from_name(&ck.algorithm) {
                        set(&mut r, a.header(), &ck.value);
                        set(&mut r, "x-amz-checksum-type", &ck.kind);
                    }
                }
                if info.meta.checksums.is_empty() {
                    // Written or changed over NFS: combine the chunk CRCs,
                    // reading only trimmed extents (HEAD only when cheap).
                    let budget = if head { HEAD_CRC_READ_BYTES_MAX } else { u64::MAX };
                    match tokio::task::block_in_place(|| reader.full_crc64nvme(budget)) {
                        Ok(Some(crc)) => {
                            set(&mut r, Algo::Crc64Nvme.header(), &b64(&crc.to_be_bytes()));
                            set(&mut r, "x-amz-checksum-type", "FULL_OBJECT");
                        }
                        Ok(None) => {}
                        // Changed while computing: the body would fail too.
                        Err(e) => tracing::debug!(error = %e, "no full-object CRC64NVME"),
                    }
                }
            }
            (0, size)
        }
    };
    for (q, h) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = c.query.get(q) {
            set(&mut r, h, v);
        }
    }
    set(&mut r, "content-length", &(end - start).to_string());
    if head || end == start {
        return Ok(r);
    }
    // An upstream object's first bytes are fetched before the answer
    // starts, so an unreachable upstream is a 503, not a cut-off body.
    let arriving = tokio::task::block_in_place(|| reader.ready_at(start)).map_err(|e| from_ns(e, Ctx::Read))?;
    let (tx, body) = ChannelBody::channel(GET_PIECES_IN_FLIGHT);
    let first_piece = if arriving { GET_FIRST_PIECE_BYTES } else { GET_PIECE_BYTES };
    stream_range(reader, start, end, first_piece, tx);
    *r.body_mut() = body;
    Ok(r)
}

/// Reads `[start, end)` on the blocking pool into the response channel,
/// in pieces growing from `first_piece` to [`GET_PIECE_BYTES`].
fn stream_range(
    reader: ObjectReader,
    start: u64,
    end: u64,
    first_piece: usize,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    tokio::task::spawn_blocking(move || {
        let mut off = start;
        let mut piece = first_piece;
        while off < end {
            let n = ((end - off) as usize).min(piece);
            piece = (piece * 2).min(GET_PIECE_BYTES);
            let mut buf = vec![0u8; n];
            let msg = match reader.read_at(off, &mut buf) {
                Ok(got) if got == n => Ok(Bytes::from(buf)),
                Ok(_) => Err(std::io::Error::other("object shorter than its size")),
                Err(e) => {
                    tracing::warn!(error = %e, "GET failed mid-stream");
                    Err(std::io::Error::other(e.to_string()))
                }
            };
            let failed = msg.is_err();
            if tx.blocking_send(msg).is_err() || failed {
                return; // client went away, or the error ends the stream
            }
            off += n as u64;
        }
    });
}

/// DELETE /b/k: 204 whether or not the key existed.
pub async fn delete_object(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let (bucket, key, caller) = (c.bucket().as_bytes().to_vec(), c.key().to_vec(), c.auth.caller.clone());
    c.blocking(|ns| ns.delete_object(&caller, &bucket, &key), Ctx::Write)?;
    Ok(status_response(StatusCode::NO_CONTENT))
}

/// POST /b?delete
pub async fn delete_objects(mut c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let md5 = content_md5(&c.headers)?;
    let payload = c.auth.payload.clone();
    let body = read_small(&mut c.body, &c.headers, &payload, DELETE_OBJECTS_BODY_BYTES_MAX).await?;
    if let Some(want) = md5 {
        use md5::Digest;
        if md5::Md5::digest(&body).as_slice() != want {
            return Err(S3Error::new(
                ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let doc = crate::xml::parse(&body)?;
    let quiet = doc.text_of("Quiet").is_some_and(|q| q.eq_ignore_ascii_case("true"));
    let keys: Vec<String> = doc.all("Object").filter_map(|o| o.text_of("Key").map(str::to_string)).collect();
    if keys.is_empty() || keys.len() > DELETE_OBJECTS_KEYS_MAX {
        return Err(S3Error::new(ErrorCode::MalformedXML, "DeleteObjects takes 1 to 1000 keys"));
    }
    let bucket = c.bucket().as_bytes().to_vec();
    let caller = c.auth.caller.clone();
    let mut s = format!("<DeleteResult xmlns=\"{NS}\">");
    for k in keys {
        match c.blocking(|ns| ns.delete_object(&caller, &bucket, k.as_bytes()), Ctx::Write) {
            Ok(()) if quiet => {}
            Ok(()) => s.push_str(&format!("<Deleted>{}</Deleted>", el("Key", &k))),
            Err(e) => s.push_str(&format!(
                "<Error>{}{}{}</Error>",
                el("Key", &k),
                el("Code", e.code.as_str()),
                el("Message", &e.message)
            )),
        }
    }
    s.push_str("</DeleteResult>");
    Ok(xml_response(s))
}

/// PUT /b/k with x-amz-copy-source
pub async fn copy_object(mut c: ReqCtx) -> Result<Response<Body>, S3Error> {
    let target = put_target(&c)?;
    let (sb, sk) = copy_source(&c)?;
    let replace = c.header("x-amz-metadata-directive").is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    if sb == c.bucket().as_bytes() && sk == c.key() && !replace {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.",
        ));
    }
    let payload = c.auth.payload.clone();
    read_small(&mut c.body, &c.headers, &payload, 0).await?;
    let (info, reader) = open_source(&c)?;
    let mut meta = if replace { meta_from_headers(&c.headers)? } else { info.meta.clone() };
    // Same bytes, same whole-object checksums (stale ones were already
    // dropped by the namespace).
    meta.checksums = info.meta.checksums.iter().filter(|ck| ck.kind == "FULL_OBJECT").cloned().collect();
    let condition = write_condition(&c.headers)?;
    let caller = c.auth.caller.clone();
    let opts = PutOptions { meta: meta.clone(), condition: condition.clone() };
    // Share the source's chunks; only a source too fragmented to pin is
    // copied byte by byte.
    let shared = tokio::task::block_in_place(|| c.state.ns.copy_object_to(&caller, &reader, &info.etag, &target, opts));
    let out = match shared {
        Err(namespace::NsError::TooLarge(_)) => {
            let staged = copy_range(&c.state.ns, &reader, 0, reader.size())?;
            drop(reader);
            meta.etag.clear();
            meta.part_layout.clear();
            meta.checksums = vec![Checksum {
                algorithm: "CRC64NVME".into(),
                kind: "FULL_OBJECT".into(),
                value: b64(&staged.crc64.to_be_bytes()),
            }];
            c.blocking(
                move |ns| ns.put_object_to(&caller, &target, staged, PutOptions { meta, condition }),
                Ctx::Write,
            )?
        }
        other => other.map_err(|e| crate::error::from_ns(e, Ctx::Write))?,
    };
    Ok(xml_response(format!(
        "<CopyObjectResult xmlns=\"{NS}\">{}{}</CopyObjectResult>",
        el("LastModified", &iso8601(out.inode.mtime)),
        el("ETag", &format!("\"{}\"", out.etag))
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range(Some("bytes=10-"), 100).unwrap(), Some((10, 99)));
        assert_eq!(parse_range(Some("bytes=-5"), 100).unwrap(), Some((95, 99)));
        assert_eq!(parse_range(Some("bytes=-500"), 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range(Some("bytes=90-200"), 100).unwrap(), Some((90, 99)));
        assert!(parse_range(Some("bytes=100-"), 100).is_err());
        assert!(parse_range(Some("bytes=0-"), 0).is_err());
        assert!(parse_range(Some("bytes=-0"), 100).is_err());
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-1"), 100).unwrap(), None);
    }

    #[test]
    fn part_numbers_past_the_count_are_invalid_part_number() {
        // 5 + 5 + 1 bytes: runs (5, 2) and (1, 1).
        let layout = [(5u64, 2u32), (1, 1)];
        assert_eq!(part_range(&layout, 11, 1).unwrap(), (0, 5, 3));
        assert_eq!(part_range(&layout, 11, 2).unwrap(), (5, 10, 3));
        assert_eq!(part_range(&layout, 11, 3).unwrap(), (10, 11, 3));
        assert_eq!(part_range(&[], 7, 1).unwrap(), (0, 7, 1));
        for (layout, n) in [(&layout[..], 4u32), (&layout[..], 0), (&[][..], 2)] {
            let e = part_range(layout, 11, n).unwrap_err();
            assert_eq!((e.code.as_str(), e.status().as_u16()), ("InvalidPartNumber", 400));
        }
    }

    /// s3torchconnector's first read of an empty object: S3 answers 416
    /// with `Content-Range: bytes */0` and the size in the error document.
    #[test]
    fn unsatisfiable_range_tells_the_size() {
        for (header, size) in [("bytes=0-8388607", 0u64), ("bytes=-5", 0), ("bytes=100-200", 100)] {
            let e = parse_range(Some(header), size).unwrap_err();
            assert_eq!((e.code, e.status().as_u16()), (ErrorCode::InvalidRange, 416));
            assert_eq!(e.details, vec![("RangeRequested", header.to_string()), ("ActualObjectSize", size.to_string())]);
            assert_eq!(e.headers, vec![("content-range", format!("bytes */{size}"))]);
        }
    }
}

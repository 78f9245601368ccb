//! The multipart family.

use http::{Response, StatusCode};
use namespace::limits::{PART_NUMBER_MAX, PART_SIZE_BYTES_MAX};
use namespace::{Checksum, CompletePart, WriteCondition};

use crate::body::Body;
use crate::checksum::{b64, unb64, Algo, Hasher};
use crate::error::{Ctx, ErrorCode, S3Error};
use crate::ops::stage::{copy_range, meta_from_headers, open_source, stage_body};
use crate::payload::read_small;
use crate::reply::{status_response, xml_response};
use crate::request::ReqCtx;
use crate::xml::{el, encode, iso8601, url_encoding, NS};

/// Largest CompleteMultipartUpload document.
const COMPLETE_BODY_BYTES_MAX: u64 = 4 << 20;

fn upload_id(c: &ReqCtx) -> Result<String, S3Error> {
    c.query.get("uploadId").map(str::to_string).ok_or_else(|| S3Error::invalid_argument("missing uploadId"))
}

/// POST /b/k?uploads
pub async fn create(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let meta = meta_from_headers(&c.headers)?;
    if let Some(a) = c.header("x-amz-checksum-algorithm") {
        Algo::from_name(a)
            .ok_or_else(|| S3Error::new(ErrorCode::InvalidRequest, format!("unsupported checksum algorithm {a}")))?;
    }
    let (bucket, key, caller) = (c.bucket().as_bytes().to_vec(), c.key().to_vec(), c.auth.caller.clone());
    let id = c.blocking(|ns| ns.create_upload(&caller, &bucket, &key, meta), Ctx::Write)?;
    let mut r = xml_response(format!(
        "<InitiateMultipartUploadResult xmlns=\"{NS}\">{}{}{}</InitiateMultipartUploadResult>",
        el("Bucket", c.bucket()),
        el("Key", &String::from_utf8_lossy(c.key())),
        el("UploadId", &id)
    ));
    if let Some(a) = c.header("x-amz-checksum-algorithm").and_then(|a| http::HeaderValue::from_str(a).ok()) {
        r.headers_mut().insert("x-amz-checksum-algorithm", a);
    }
    Ok(r)
}

/// PUT /b/k?partNumber&uploadId (with or without x-amz-copy-source)
pub async fn upload_part(mut c: ReqCtx, copy: bool) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let id = upload_id(&c)?;
    let n: u32 = c
        .query
        .get("partNumber")
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
        S3Error::invalid_argument(format!("Part number must be an integer between 1 and {PART_NUMBER_MAX}, inclusive"))
    })?;
    let (staged, checksum) = if copy {
        let payload = c.auth.payload.clone();
        read_small(&mut c.body, &c.headers, &payload, 0).await?;
        let (_, reader) = open_source(&c)?;
        let size = reader.size();
        let (start, end) = match c.header("x-amz-copy-source-range") {
            None => (0, size),
            Some(r) => {
                let spec = r
                    .trim()
                    .strip_prefix("bytes=")
                    .ok_or_else(|| S3Error::invalid_argument("bad x-amz-copy-source-range"))?;
                let (a, b) =
                    spec.split_once('-').ok_or_else(|| S3Error::invalid_argument("bad x-amz-copy-source-range"))?;
                let (a, b): (u64, u64) = (
                    a.parse().map_err(|_| S3Error::invalid_argument("bad x-amz-copy-source-range"))?,
                    b.parse().map_err(|_| S3Error::invalid_argument("bad x-amz-copy-source-range"))?,
                );
                if a > b || b >= size {
                    return Err(S3Error::new(ErrorCode::InvalidRange, "The requested range is not satisfiable"));
                }
                (a, b + 1)
            }
        };
        if end - start > PART_SIZE_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::EntityTooLarge, "a part may hold at most 5 GiB"));
        }
        (copy_range(&c.state.ns, &reader, start, end)?, None)
    } else {
        let (staged, summary) = stage_body(&mut c, PART_SIZE_BYTES_MAX).await?;
        (staged, summary.checksum)
    };
    let checksums: Vec<Checksum> = checksum
        .iter()
        .map(|(a, v)| Checksum { algorithm: a.name().into(), kind: "FULL_OBJECT".into(), value: v.clone() })
        .collect();
    let mut staged = staged;
    let info = c.blocking(|ns| ns.upload_part_with(&id, n, &mut staged, checksums), Ctx::Upload)?;
    if copy {
        return Ok(xml_response(format!(
            "<CopyPartResult xmlns=\"{NS}\">{}{}</CopyPartResult>",
            el("LastModified", &iso8601(info.last_modified)),
            el("ETag", &format!("\"{}\"", info.etag))
        )));
    }
    let mut r = status_response(StatusCode::OK);
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        r.headers_mut().insert("etag", v);
    }
    if let Some((a, v)) = checksum {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            r.headers_mut().insert(a.header(), v);
        }
    }
    Ok(r)
}

/// The object checksum of a completed upload from its parts' checksums:
/// CRC64NVME combined into a full-object value, others COMPOSITE
/// (`base64(H(part digests))-N`).
fn combined_checksum(parts: &[namespace::PartInfo]) -> Option<Checksum> {
    let first = parts.first()?.checksums.first()?;
    let algo = Algo::from_name(&first.algorithm)?;
    let raws: Option<Vec<Vec<u8>>> = parts
        .iter()
        .map(|p| p.checksums.iter().find(|c| c.algorithm == first.algorithm).and_then(|c| unb64(&c.value)))
        .collect();
    let raws = raws?;
    if algo == Algo::Crc64Nvme {
        let mut crc = namespace_crc64_empty();
        for (p, raw) in parts.iter().zip(&raws) {
            let v = u64::from_be_bytes(raw.as_slice().try_into().ok()?);
            crc = crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Nvme, crc, v, p.size);
        }
        return Some(Checksum {
            algorithm: algo.name().into(),
            kind: "FULL_OBJECT".into(),
            value: b64(&crc.to_be_bytes()),
        });
    }
    let mut h = Hasher::new(algo);
    for raw in &raws {
        h.update(raw);
    }
    Some(Checksum {
        algorithm: algo.name().into(),
        kind: "COMPOSITE".into(),
        value: format!("{}-{}", b64(&h.finish()), parts.len()),
    })
}

fn namespace_crc64_empty() -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, b"")
}

/// POST /b/k?uploadId
pub async fn complete(mut c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let id = upload_id(&c)?;
    let payload = c.auth.payload.clone();
    let body = read_small(&mut c.body, &c.headers, &payload, COMPLETE_BODY_BYTES_MAX).await?;
    let doc = crate::xml::parse(&body)?;
    let mut list = Vec::new();
    let mut claimed: Vec<Vec<(String, String)>> = Vec::new();
    for p in doc.all("Part") {
        let n = p
            .text_of("PartNumber")
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| S3Error::new(ErrorCode::MalformedXML, "a Part lacks a PartNumber"))?;
        let etag = p.text_of("ETag").unwrap_or("").to_string();
        list.push(CompletePart { part_number: n, etag });
        claimed.push(
            Algo::ALL
                .iter()
                .filter_map(|a| {
                    p.text_of(&format!("Checksum{}", a.name())).map(|v| (a.name().to_string(), v.trim().to_string()))
                })
                .collect(),
        );
    }
    if list.is_empty() {
        return Err(S3Error::new(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema.",
        ));
    }
    // Of entries naming one part number, the last counts (the last upload
    // of a part wins); descending numbers are InvalidPartOrder.
    let keep = namespace::completion_entries(&list).map_err(|e| crate::error::from_ns(e, Ctx::Upload))?;
    let list: Vec<CompletePart> = keep.iter().map(|&i| list[i].clone()).collect();
    let claimed: Vec<Vec<(String, String)>> = keep.iter().map(|&i| claimed[i].clone()).collect();
    // Checksums the client lists must match the ones its parts arrived with.
    let parts = c
        .blocking(|ns| ns.list_parts(&id, 0, PART_NUMBER_MAX as usize), Ctx::Upload)
        .map(|(_, p, _)| p)
        .unwrap_or_default();
    let mut chosen = Vec::new();
    for (want, claims) in list.iter().zip(&claimed) {
        let Some(p) = parts.iter().find(|p| p.part_number == want.part_number) else { continue };
        for (algo, v) in claims {
            if p.checksums.iter().any(|c| &c.algorithm == algo && &c.value != v) {
                return Err(S3Error::new(
                    ErrorCode::InvalidPart,
                    format!("part {} checksum does not match", want.part_number),
                ));
            }
        }
        chosen.push(p.clone());
    }
    let checksums: Vec<Checksum> =
        if chosen.len() == list.len() { combined_checksum(&chosen).into_iter().collect() } else { Vec::new() };
    let caller = c.auth.caller.clone();
    let condition = match (c.header("if-none-match"), c.header("if-match")) {
        (Some(v), _) if v.trim() == "*" => WriteCondition::IfNoneMatchStar,
        (Some(_), _) => return Err(S3Error::not_implemented("If-None-Match with a value other than '*'")),
        (None, Some(m)) => WriteCondition::IfMatch(m.trim().trim_matches('"').to_string()),
        (None, None) => WriteCondition::None,
    };
    let done = c.blocking(|ns| ns.complete_upload_with(&caller, &id, &list, condition, checksums), Ctx::Upload)?;
    let mut extra = String::new();
    for ck in &done.info.meta.checksums {
        extra.push_str(&el(&format!("Checksum{}", ck.algorithm), &ck.value));
        extra.push_str(&el("ChecksumType", &ck.kind));
    }
    let key = String::from_utf8_lossy(c.key()).into_owned();
    Ok(xml_response(format!(
        "<CompleteMultipartUploadResult xmlns=\"{NS}\">{}{}{}{}{extra}</CompleteMultipartUploadResult>",
        el("Location", &format!("/{}/{}", c.bucket(), key)),
        el("Bucket", c.bucket()),
        el("Key", &key),
        el("ETag", &format!("\"{}\"", done.info.etag)),
    )))
}

/// DELETE /b/k?uploadId
pub async fn abort(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let id = upload_id(&c)?;
    c.blocking(|ns| ns.abort_upload(&id), Ctx::Upload)?;
    Ok(status_response(StatusCode::NO_CONTENT))
}

/// GET /b/k?uploadId
pub async fn list_parts(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let id = upload_id(&c)?;
    let after: u32 = c.query.get("part-number-marker").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = c.query.get("max-parts").and_then(|v| v.parse().ok()).unwrap_or(1000).clamp(1, 1000);
    let (info, parts, truncated) = c.blocking(|ns| ns.list_parts(&id, after, max), Ctx::Upload)?;
    let mut s = format!(
        "<ListPartsResult xmlns=\"{NS}\">{}{}{}{}{}{}",
        el("Bucket", c.bucket()),
        el("Key", &String::from_utf8_lossy(&info.key)),
        el("UploadId", &id),
        el("PartNumberMarker", &after.to_string()),
        el("MaxParts", &max.to_string()),
        el("IsTruncated", if truncated { "true" } else { "false" }),
    );
    if let Some(last) = parts.last() {
        s.push_str(&el("NextPartNumberMarker", &last.part_number.to_string()));
    }
    for p in &parts {
        s.push_str(&format!(
            "<Part>{}{}{}{}",
            el("PartNumber", &p.part_number.to_string()),
            el("LastModified", &iso8601(p.last_modified)),
            el("ETag", &format!("\"{}\"", p.etag)),
            el("Size", &p.size.to_string())
        ));
        for ck in &p.checksums {
            s.push_str(&el(&format!("Checksum{}", ck.algorithm), &ck.value));
        }
        s.push_str("</Part>");
    }
    s.push_str("</ListPartsResult>");
    Ok(xml_response(s))
}

/// GET /b?uploads. Keys are URL-encoded only with `encoding-type=url`.
pub async fn list_uploads(c: ReqCtx) -> Result<Response<Body>, S3Error> {
    c.require_bucket()?;
    let url = url_encoding(c.query.get("encoding-type"))?;
    let prefix = c.query.get("prefix").unwrap_or("").to_string();
    let marker = c.query.get("key-marker").map(str::to_string);
    let max: usize = c.query.get("max-uploads").and_then(|v| v.parse().ok()).unwrap_or(1000).clamp(1, 1000);
    let bucket = c.bucket().as_bytes().to_vec();
    let (uploads, truncated) = c.blocking(
        |ns| ns.list_uploads(&bucket, prefix.as_bytes(), marker.as_deref().map(str::as_bytes), max),
        Ctx::Bucket,
    )?;
    let mut s = format!(
        "<ListMultipartUploadsResult xmlns=\"{NS}\">{}{}{}{}{}",
        el("Bucket", c.bucket()),
        el("KeyMarker", &encode(marker.as_deref().unwrap_or("").as_bytes(), url)),
        el("Prefix", &encode(prefix.as_bytes(), url)),
        el("MaxUploads", &max.to_string()),
        el("IsTruncated", if truncated { "true" } else { "false" }),
    );
    if url {
        s.push_str(&el("EncodingType", "url"));
    }
    if truncated {
        if let Some(last) = uploads.last() {
            s.push_str(&el("NextKeyMarker", &encode(&last.key, url)));
            s.push_str(&el("NextUploadIdMarker", &last.upload_id));
        }
    }
    for u in &uploads {
        s.push_str(&format!(
            "<Upload>{}{}{}</Upload>",
            el("Key", &encode(&u.key, url)),
            el("UploadId", &u.upload_id),
            el("Initiated", &iso8601(u.initiated))
        ));
    }
    s.push_str("</ListMultipartUploadsResult>");
    Ok(xml_response(s))
}

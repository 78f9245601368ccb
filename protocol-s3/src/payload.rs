//! Reading a request body: plain or aws-chunked, with the payload SHA-256,
//! chunk signatures, declared lengths and checksums verified while it
//! streams. Callers get decoded bytes through a sink and must not publish
//! anything until [`read_payload`] returned `Ok`.

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use sha2::Digest;

use crate::auth::Payload;
use crate::checksum::{b64, unb64, Algo, Hasher};
use crate::chunked::ChunkedDecoder;
use crate::error::{ErrorCode, S3Error};
use crate::observe::RequestBody;

/// What the body turned out to hold.
#[derive(Debug, Default)]
pub struct PayloadSummary {
    /// Verified checksum (algorithm, base64 value), if the client sent or
    /// asked for one.
    pub checksum: Option<(Algo, String)>,
}

/// The checksum the client asked for, and the value it sent if any.
fn wanted_checksum(h: &HeaderMap) -> Result<Option<(Algo, Option<String>)>, S3Error> {
    let mut found: Option<(Algo, Option<String>)> = None;
    for a in Algo::ALL {
        if let Some(v) = h.get(a.header()) {
            if found.is_some() {
                return Err(S3Error::new(ErrorCode::InvalidRequest, "Expecting a single x-amz-checksum- header"));
            }
            found = Some((a, Some(v.to_str().unwrap_or("").to_string())));
        }
    }
    if let Some(t) = h.get("x-amz-trailer").and_then(|v| v.to_str().ok()) {
        if found.is_some() {
            return Err(S3Error::new(ErrorCode::InvalidRequest, "x-amz-trailer and x-amz-checksum- headers together"));
        }
        let a = Algo::from_header(t.trim())
            .ok_or_else(|| S3Error::new(ErrorCode::InvalidRequest, format!("unsupported trailer {t}")))?;
        return Ok(Some((a, None)));
    }
    if found.is_none() {
        if let Some(n) = h.get("x-amz-sdk-checksum-algorithm").and_then(|v| v.to_str().ok()) {
            let a = Algo::from_name(n).ok_or_else(|| {
                S3Error::new(ErrorCode::InvalidRequest, format!("unsupported checksum algorithm {n}"))
            })?;
            return Ok(Some((a, None)));
        }
    }
    Ok(found)
}

/// Whether the body is aws-chunked framing. Only the `STREAMING-*` values
/// of `x-amz-content-sha256` say so, as with S3: `Content-Encoding:
/// aws-chunked` beside a hex hash or `UNSIGNED-PAYLOAD` is a plain body
/// (the encoding is still never stored).
fn is_aws_chunked(payload: &Payload) -> bool {
    match payload {
        Payload::Chunked { .. } => true,
        Payload::Sha256(_) | Payload::Unsigned => false,
    }
}

/// Reads the whole body through `sink`, at most `limit` decoded bytes.
pub async fn read_payload(
    body: &mut RequestBody,
    headers: &HeaderMap,
    payload: &Payload,
    limit: u64,
    mut sink: impl FnMut(Bytes) -> Result<(), S3Error>,
) -> Result<PayloadSummary, S3Error> {
    let chunked = is_aws_chunked(payload);
    let declared: Option<u64> = if chunked {
        Some(
            headers
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    S3Error::new(ErrorCode::MissingContentLength, "x-amz-decoded-content-length is required")
                })?,
        )
    } else {
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    };
    if declared.is_some_and(|d| d > limit) {
        return Err(S3Error::new(ErrorCode::EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
    }
    let want = wanted_checksum(headers)?;
    let mut hasher = want.as_ref().map(|(a, _)| Hasher::new(*a));
    let mut sha = match payload {
        Payload::Sha256(h) => Some((sha2::Sha256::new(), *h)),
        _ => None,
    };
    let mut decoder = match payload {
        Payload::Chunked { signer, trailer } => Some(ChunkedDecoder::new(signer.clone(), *trailer)),
        _ => None,
    };
    let mut len = 0u64;
    let mut decoded = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| S3Error::new(ErrorCode::IncompleteBody, format!("reading the body failed: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if let Some((h, _)) = &mut sha {
            h.update(&data);
        }
        decoded.clear();
        match &mut decoder {
            Some(d) => d.push(data, &mut decoded)?,
            None => decoded.push(data),
        }
        for piece in decoded.drain(..) {
            len += piece.len() as u64;
            if len > limit || declared.is_some_and(|d| len > d) {
                return Err(S3Error::new(ErrorCode::IncompleteBody, "the body is longer than declared or allowed"));
            }
            if let Some(h) = &mut hasher {
                h.update(&piece);
            }
            sink(piece)?;
        }
    }
    if let Some(d) = &decoder {
        if !d.is_done() {
            return Err(S3Error::new(ErrorCode::IncompleteBody, "the aws-chunked body ended early"));
        }
    }
    if declared.is_some_and(|d| d != len) {
        return Err(S3Error::new(
            ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        ));
    }
    if let Some((h, expect)) = sha {
        if h.finalize().as_slice() != expect {
            return Err(S3Error::new(
                ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    let mut summary = PayloadSummary { checksum: None };
    if let (Some((algo, sent)), Some(h)) = (want, hasher) {
        let got = b64(&h.finish());
        let expected = match sent {
            Some(v) => Some(v),
            None => decoder
                .as_ref()
                .and_then(|d| d.trailers.iter().find(|(n, _)| n == algo.header()).map(|(_, v)| v.clone())),
        };
        let trailer_declared = headers.contains_key("x-amz-trailer");
        match expected {
            Some(v) if unb64(&v).is_none() => {
                return Err(S3Error::new(ErrorCode::InvalidRequest, "malformed checksum value"))
            }
            Some(v) if v.trim() != got => {
                return Err(S3Error::new(
                    ErrorCode::BadDigest,
                    format!("The {} you specified did not match the calculated checksum.", algo.name()),
                ))
            }
            None if trailer_declared => {
                return Err(S3Error::new(ErrorCode::InvalidRequest, "the declared checksum trailer is missing"))
            }
            _ => {}
        }
        summary.checksum = Some((algo, got));
    }
    Ok(summary)
}

/// Reads a small body (XML) into memory, at most `limit` bytes.
pub async fn read_small(
    body: &mut RequestBody,
    headers: &HeaderMap,
    payload: &Payload,
    limit: u64,
) -> Result<Vec<u8>, S3Error> {
    let mut out = Vec::new();
    read_payload(body, headers, payload, limit, |b| {
        out.extend_from_slice(&b);
        Ok(())
    })
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a STREAMING-* payload hash means aws-chunked framing; the
    /// Content-Encoding header alone does not.
    #[test]
    fn only_streaming_payloads_are_aws_chunked() {
        assert!(is_aws_chunked(&Payload::Chunked { signer: None, trailer: true }));
        assert!(!is_aws_chunked(&Payload::Unsigned));
        assert!(!is_aws_chunked(&Payload::Sha256([0; 32])));
    }
}

//! Request authentication: which access key signed a request, whether the
//! signature holds, and how its payload is protected. Two schemes, each in
//! its own module, both ending in the same [`Authenticated`], so bucket
//! rights and POSIX checks apply whatever the client signed with:
//!
//! - `sigv4`: `AWS4-HMAC-SHA256` headers and presigned `X-Amz-*` URLs,
//!   verified by re-signing with `aws-sigv4`; the chunk-signature chain of
//!   `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` bodies is [`ChunkSigner`].
//! - `sigv2`: `Authorization: AWS key:signature` and presigned
//!   `AWSAccessKeyId`/`Expires`/`Signature` URLs (HMAC-SHA1), which
//!   boto3's `generate_presigned_url` still makes by default.
//!
//! Invariant: both share the keyring, the clock-skew rule, the error texts
//! and the constant-time comparison defined here; neither imports the other.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::sign::v4;
use http::{HeaderMap, Method, Uri};
use namespace::Caller;
use sha2::Digest;

use crate::error::{ErrorCode, S3Error};
use crate::rights::BucketRights;

/// Largest allowed difference between the client's clock and ours.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(15 * 60);
/// Longest presigned URL lifetime (7 days, as AWS).
pub const PRESIGN_EXPIRES_SECS_MAX: u64 = 604_800;
/// Longest Authorization header we parse.
const AUTH_HEADER_BYTES_MAX: usize = 4096;

/// One access key.
#[derive(Clone)]
pub struct Credential {
    /// Access key id.
    pub access_key: String,
    /// Secret.
    pub secret_key: String,
    /// The POSIX identity requests signed with this key act as.
    pub caller: Caller,
    /// What the key may do in each bucket.
    pub rights: BucketRights,
}

/// Secrets stay out of logs and panics: `Debug` shows the key id only.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("caller", &self.caller)
            .field("rights", &self.rights)
            .finish_non_exhaustive()
    }
}

/// Access keys by id. The set can be replaced while the server runs
/// (`gateway user add`, SIGHUP); a request sees the set of the moment it
/// was authenticated.
#[derive(Debug, Default)]
pub struct Keyring(RwLock<Arc<HashMap<String, Credential>>>);

impl Keyring {
    /// A keyring holding `creds`.
    pub fn new(creds: impl IntoIterator<Item = Credential>) -> Self {
        Keyring(RwLock::new(Arc::new(Self::index(creds))))
    }
    fn index(creds: impl IntoIterator<Item = Credential>) -> HashMap<String, Credential> {
        creds.into_iter().map(|c| (c.access_key.clone(), c)).collect()
    }
    /// Replaces every key at once; requests in flight keep the old set.
    pub fn replace(&self, creds: impl IntoIterator<Item = Credential>) {
        let next = Arc::new(Self::index(creds));
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = next;
    }
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }
    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn get(&self, ak: &str) -> Option<Credential> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(ak).cloned()
    }
}

/// How the payload is protected.
#[derive(Clone, Debug)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD` (or a presigned URL).
    Unsigned,
    /// A hex SHA-256 of the whole body, checked while streaming.
    Sha256([u8; 32]),
    /// aws-chunked; `signer` is set for the signed forms.
    Chunked {
        /// Chunk-signature chain (signed forms only).
        signer: Option<ChunkSigner>,
        /// Whether trailers follow the last chunk.
        trailer: bool,
    },
}

/// State of the chunk-signature chain.
#[derive(Clone, Debug)]
pub struct ChunkSigner {
    key: Vec<u8>,
    amz_date: String,
    scope: String,
    /// The previous signature (the seed is the request's signature).
    pub prev: String,
}

impl ChunkSigner {
    /// Signature of a chunk whose SHA-256 is `chunk_sha`.
    pub fn chunk_signature(&self, chunk_sha: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.prev,
            hex::encode(sha2::Sha256::digest(b"")),
            hex::encode(chunk_sha)
        );
        v4::calculate_signature(&self.key, sts.as_bytes())
    }
    /// Signature of the trailer block (`name:value\n` lines).
    pub fn trailer_signature(&self, trailer_lines: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.prev,
            hex::encode(sha2::Sha256::digest(trailer_lines))
        );
        v4::calculate_signature(&self.key, sts.as_bytes())
    }
}

/// The outcome of authentication.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The identity the request acts as.
    pub caller: Caller,
    /// The access key used.
    pub access_key: String,
    /// What the key may do in each bucket.
    pub rights: BucketRights,
    /// Payload protection.
    pub payload: Payload,
}

/// Constant-time string comparison for signatures.
pub(crate) fn auth_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn denied(msg: &str) -> S3Error {
    S3Error::new(ErrorCode::AccessDenied, msg)
}

/// `YYYYMMDD'T'HHMMSS'Z'` → time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    (secs >= 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn skew_ok(t: SystemTime, now: SystemTime) -> bool {
    match t.duration_since(now) {
        Ok(ahead) => ahead <= CLOCK_SKEW_MAX,
        Err(e) => e.duration() <= CLOCK_SKEW_MAX,
    }
}

/// The canonical (once-encoded) form of a path, as SigV4 signs it for S3.
pub fn canonical_path(raw_path: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw_path).collect();
    percent_encoding::percent_encode(&decoded, KEEP).to_string()
}

mod sigv2;
mod sigv4;

/// Verifies a request's signature; returns who it is and how its payload
/// is protected. `vhost_bucket` is the bucket named by a virtual-hosted
/// request's Host (SigV2 signs `/bucket/key` whichever style was used).
pub fn authenticate(
    keys: &Keyring,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    vhost_bucket: Option<&str>,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let h =
            h.to_str().map_err(|_| S3Error::new(ErrorCode::AuthorizationHeaderMalformed, "non-ASCII Authorization"))?;
        if h.len() > AUTH_HEADER_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::AuthorizationHeaderMalformed, "Authorization header too long"));
        }
        if let Some(rest) = h.strip_prefix("AWS ") {
            let req = sigv2::Signed { method, uri, headers, vhost_bucket };
            return sigv2::header_auth(keys, &req, now, rest);
        }
        return sigv4::header_auth(keys, method, uri, headers, now, h);
    }
    let q = crate::router::Query::parse(uri.query());
    if q.has("X-Amz-Signature") {
        return sigv4::presigned_auth(keys, method, uri, headers, now, &q);
    }
    if q.has("Signature") || q.has("AWSAccessKeyId") {
        let req = sigv2::Signed { method, uri, headers, vhost_bucket };
        return sigv2::query_auth(keys, &req, now, &q);
    }
    Err(denied("Anonymous requests are not allowed"))
}

/// 403 InvalidAccessKeyId, for a key not in the keyring.
fn invalid_key() -> S3Error {
    S3Error::new(ErrorCode::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
}

/// 403 SignatureDoesNotMatch.
fn signature_mismatch() -> S3Error {
    S3Error::new(
        ErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

/// 403 RequestTimeTooSkewed.
fn too_skewed() -> S3Error {
    S3Error::new(
        ErrorCode::RequestTimeTooSkewed,
        "The difference between the request time and the server's time is too large.",
    )
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!vals.is_empty()).then(|| vals.iter().map(|v| v.trim()).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> ChunkSigner {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        ChunkSigner {
            key: v4::generate_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", t, "us-east-1", "s3")
                .as_ref()
                .to_vec(),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            prev: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    /// The AWS documentation's example for STREAMING-AWS4-HMAC-SHA256-PAYLOAD:
    /// the first 64 KiB chunk of 'a's.
    #[test]
    fn aws_chunk_signature_vector() {
        let s = signer();
        let chunk = vec![b'a'; 65536];
        assert_eq!(
            s.chunk_signature(&sha2::Sha256::digest(&chunk)),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
    }

    #[test]
    fn amz_dates() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_369_353_600);
        assert!(parse_amz_date("20131324T000000Z").is_none());
        assert!(parse_amz_date("2013-05-24").is_none());
    }

    #[test]
    fn canonical_paths_encode_once() {
        assert_eq!(canonical_path("/b/a%20b"), "/b/a%20b");
        assert_eq!(canonical_path("/b/a+b"), "/b/a%2Bb");
        assert_eq!(canonical_path("/b/%E2%82%AC~x"), "/b/%E2%82%AC~x");
    }
}

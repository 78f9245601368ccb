//! SigV4 verification by re-signing with `aws-sigv4`: header auth and
//! presigned URLs, clock skew, expiry, and the chunk-signature chain of
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` bodies.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode,
};
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

struct Parsed<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<String>,
    signature: &'a str,
}

fn parse_credential(c: &str) -> Option<(&str, &str, &str, &str)> {
    let mut it = c.split('/');
    let (ak, date, region, service, term) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    (term == "aws4_request" && it.next().is_none()).then_some((ak, date, region, service))
}

fn parse_header(h: &str) -> Result<Parsed<'_>, S3Error> {
    let malformed = |m: &str| S3Error::new(ErrorCode::AuthorizationHeaderMalformed, m);
    let rest = h.strip_prefix("AWS4-HMAC-SHA256").ok_or_else(|| malformed("unsupported authorization type"))?;
    let (mut cred, mut sh, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            sh = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (cred, sh, sig) = (
        cred.ok_or_else(|| malformed("missing Credential"))?,
        sh.ok_or_else(|| malformed("missing SignedHeaders"))?,
        sig.ok_or_else(|| malformed("missing Signature"))?,
    );
    let (access_key, date, region, service) =
        parse_credential(cred).ok_or_else(|| malformed("malformed Credential"))?;
    Ok(Parsed {
        access_key,
        date,
        region,
        service,
        signed_headers: sh.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: sig,
    })
}

/// Verifies a request's signature; returns who it is and how its payload
/// is protected.
pub fn authenticate(
    keys: &Keyring,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let h =
            h.to_str().map_err(|_| S3Error::new(ErrorCode::AuthorizationHeaderMalformed, "non-ASCII Authorization"))?;
        if h.len() > AUTH_HEADER_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::AuthorizationHeaderMalformed, "Authorization header too long"));
        }
        if h.starts_with("AWS ") {
            return Err(denied("Signature Version 2 is not supported; use SigV4"));
        }
        return header_auth(keys, method, uri, headers, now, h);
    }
    let q = crate::router::Query::parse(uri.query());
    if q.has("X-Amz-Signature") {
        return presigned_auth(keys, method, uri, headers, now, &q);
    }
    if q.has("Signature") || q.has("AWSAccessKeyId") {
        return Err(denied("Signature Version 2 is not supported; use SigV4"));
    }
    Err(denied("Anonymous requests are not allowed"))
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!vals.is_empty()).then(|| vals.iter().map(|v| v.trim()).collect::<Vec<_>>().join(","))
}

fn check_signed_headers(signed: &[String], headers: &HeaderMap) -> Result<(), S3Error> {
    if !signed.iter().any(|h| h == "host") {
        return Err(denied("the host header must be signed"));
    }
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && n != "x-amz-content-sha256" && !signed.iter().any(|s| s == n) {
            return Err(denied(&format!("There were headers present in the request which were not signed: {n}")));
        }
    }
    Ok(())
}

fn settings(location: SignatureLocation, expires: Option<Duration>) -> SigningSettings {
    let mut s = SigningSettings::default();
    s.percent_encoding_mode = PercentEncodingMode::Single;
    s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    s.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    s.excluded_headers = None;
    s.session_token_mode = SessionTokenMode::Exclude;
    s.signature_location = location;
    s.expires_in = expires;
    s
}

#[allow(clippy::too_many_arguments)]
fn resign(
    cred: &Credential,
    region: &str,
    time: SystemTime,
    method: &Method,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: SignableBody<'_>,
    settings: SigningSettings,
) -> Result<String, S3Error> {
    let identity =
        aws_credential_types::Credentials::new(&cred.access_key, &cred.secret_key, None, None, "gateway").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(S3Error::internal)?
        .into();
    let uri = if query.is_empty() { format!("http://{host}{path}") } else { format!("http://{host}{path}?{query}") };
    let req = SignableRequest::new(method.as_str(), uri, headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), body)
        .map_err(|e| S3Error::new(ErrorCode::AuthorizationHeaderMalformed, format!("unsignable request: {e}")))?;
    let (_, sig) = sign(req, &params).map_err(S3Error::internal)?.into_parts();
    Ok(sig)
}

/// Tries the canonical re-encoding of the path, then the raw path.
fn verify_both_paths(
    uri: &Uri,
    mut sign_with: impl FnMut(&str) -> Result<String, S3Error>,
    want: &str,
) -> Result<(), S3Error> {
    let raw = uri.path();
    let canonical = canonical_path(raw);
    if auth_eq(&sign_with(&canonical)?, want) {
        return Ok(());
    }
    if canonical != raw && auth_eq(&sign_with(raw)?, want) {
        return Ok(());
    }
    Err(S3Error::new(
        ErrorCode::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    ))
}

fn header_auth(
    keys: &Keyring,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
    h: &str,
) -> Result<Authenticated, S3Error> {
    let p = parse_header(h)?;
    let cred = keys.get(p.access_key).ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
    })?;
    let amz_date = header_value(headers, "x-amz-date")
        .ok_or_else(|| denied("x-amz-date is required (Date alone cannot be verified)"))?;
    let time = parse_amz_date(&amz_date).ok_or_else(|| denied("x-amz-date is malformed"))?;
    if !amz_date.starts_with(p.date) {
        return Err(S3Error::new(
            ErrorCode::AuthorizationHeaderMalformed,
            "the credential date does not match x-amz-date",
        ));
    }
    if p.service != "s3" {
        return Err(S3Error::new(ErrorCode::AuthorizationHeaderMalformed, "the credential service must be s3"));
    }
    if !skew_ok(time, now) {
        return Err(S3Error::new(
            ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the server's time is too large.",
        ));
    }
    check_signed_headers(&p.signed_headers, headers)?;
    let content_sha = header_value(headers, "x-amz-content-sha256").ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidRequest, "Missing required header for this request: x-amz-content-sha256")
    })?;
    let signed: Vec<(String, String)> =
        p.signed_headers.iter().map(|n| (n.clone(), header_value(headers, n).unwrap_or_default())).collect();
    let host = header_value(headers, "host").unwrap_or_default();
    let query = uri.query().unwrap_or("");
    verify_both_paths(
        uri,
        |path| {
            resign(
                &cred,
                p.region,
                time,
                method,
                &host,
                path,
                query,
                &signed,
                SignableBody::Precomputed(content_sha.clone()),
                settings(SignatureLocation::Headers, None),
            )
        },
        p.signature,
    )?;
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let signer = || ChunkSigner {
        key: v4::generate_signing_key(&cred.secret_key, time, p.region, "s3").as_ref().to_vec(),
        amz_date: amz_date.clone(),
        scope: scope.clone(),
        prev: p.signature.to_string(),
    };
    let payload = match content_sha.as_str() {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::Chunked { signer: None, trailer: true },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Payload::Chunked { signer: Some(signer()), trailer: false },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Payload::Chunked { signer: Some(signer()), trailer: true },
        hexhash => {
            let mut h = [0u8; 32];
            hex::decode_to_slice(hexhash, &mut h).map_err(|_| {
                S3Error::new(
                    ErrorCode::InvalidArgument,
                    "x-amz-content-sha256 must be a SHA-256 hex digest or a known literal",
                )
            })?;
            Payload::Sha256(h)
        }
    };
    Ok(Authenticated { caller: cred.caller, access_key: cred.access_key, rights: cred.rights, payload })
}

/// Query parameters that carry the presigned signature itself.
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

fn presigned_auth(
    keys: &Keyring,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
    q: &crate::router::Query,
) -> Result<Authenticated, S3Error> {
    let malformed = |m: &str| S3Error::new(ErrorCode::AuthorizationQueryParametersError, m);
    if q.get("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
        return Err(malformed("X-Amz-Algorithm must be AWS4-HMAC-SHA256"));
    }
    let cred_s = q.get("X-Amz-Credential").ok_or_else(|| malformed("missing X-Amz-Credential"))?;
    let (ak, date, region, service) =
        parse_credential(cred_s).ok_or_else(|| malformed("malformed X-Amz-Credential"))?;
    let cred = keys.get(ak).ok_or_else(|| {
        S3Error::new(ErrorCode::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.")
    })?;
    let amz_date = q.get("X-Amz-Date").ok_or_else(|| malformed("missing X-Amz-Date"))?;
    let time = parse_amz_date(amz_date).ok_or_else(|| malformed("malformed X-Amz-Date"))?;
    if !amz_date.starts_with(date) || service != "s3" {
        return Err(malformed("credential scope does not match"));
    }
    let expires: u64 = q
        .get("X-Amz-Expires")
        .and_then(|v| v.parse().ok())
        .filter(|e| (1..=PRESIGN_EXPIRES_SECS_MAX).contains(e))
        .ok_or_else(|| denied("X-Amz-Expires must be between 1 and 604800 seconds"))?;
    if time > now + CLOCK_SKEW_MAX {
        return Err(denied("Request is not valid yet"));
    }
    if now > time + Duration::from_secs(expires) {
        return Err(denied("Request has expired"));
    }
    let signed_names: Vec<String> = q
        .get("X-Amz-SignedHeaders")
        .ok_or_else(|| malformed("missing X-Amz-SignedHeaders"))?
        .split(';')
        .map(|s| s.to_ascii_lowercase())
        .collect();
    check_signed_headers(&signed_names, headers)?;
    let signed: Vec<(String, String)> =
        signed_names.iter().map(|n| (n.clone(), header_value(headers, n).unwrap_or_default())).collect();
    let host = header_value(headers, "host").unwrap_or_default();
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split('=').next().unwrap_or("");
            !PRESIGN_PARAMS.iter().any(|x| x.eq_ignore_ascii_case(k))
        })
        .collect();
    let query = rest.join("&");
    let want = q.get("X-Amz-Signature").unwrap_or("");
    verify_both_paths(
        uri,
        |path| {
            resign(
                &cred,
                region,
                time,
                method,
                &host,
                path,
                &query,
                &signed,
                SignableBody::UnsignedPayload,
                settings(SignatureLocation::QueryParams, Some(Duration::from_secs(expires))),
            )
        },
        want,
    )?;
    Ok(Authenticated {
        caller: cred.caller,
        access_key: cred.access_key,
        rights: cred.rights,
        payload: Payload::Unsigned,
    })
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

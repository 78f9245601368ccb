//! SigV4: the `Authorization: AWS4-HMAC-SHA256` header and presigned
//! `X-Amz-*` URLs, verified by re-signing with `aws-sigv4` and comparing
//! in constant time.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, Method, Uri};

use super::{
    auth_eq, canonical_path, denied, header_value, invalid_key, parse_amz_date, signature_mismatch, skew_ok,
    too_skewed, Authenticated, ChunkSigner, Credential, Keyring, Payload, CLOCK_SKEW_MAX, PRESIGN_EXPIRES_SECS_MAX,
};
use crate::error::{ErrorCode, S3Error};

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
    Err(signature_mismatch())
}

pub(super) fn header_auth(
    keys: &Keyring,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: SystemTime,
    h: &str,
) -> Result<Authenticated, S3Error> {
    let p = parse_header(h)?;
    let cred = keys.get(p.access_key).ok_or_else(invalid_key)?;
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
        return Err(too_skewed());
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

pub(super) fn presigned_auth(
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
    let cred = keys.get(ak).ok_or_else(invalid_key)?;
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

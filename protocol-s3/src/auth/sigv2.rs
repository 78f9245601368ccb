//! SigV2: `Authorization: AWS AccessKeyId:Signature` headers and presigned
//! `AWSAccessKeyId`/`Expires`/`Signature` URLs, as boto3's
//! `generate_presigned_url` still makes them for a default client. The
//! signature is base64(HMAC-SHA1(secret, StringToSign)) with
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//! CanonicalizedAmzHeaders (name:value\n each) CanonicalizedResource
//! ```
//!
//! SigV2 does not sign the body: the payload is treated as SigV4's
//! `UNSIGNED-PAYLOAD` (Content-MD5 and `x-amz-checksum-*` are still
//! verified by the operations), unless the client sends a signed
//! `x-amz-content-sha256`, which is then checked like SigV4's.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use sha1::Sha1;

use super::{
    auth_eq, denied, invalid_key, parse_amz_date, signature_mismatch, skew_ok, too_skewed, Authenticated, Keyring,
    Payload,
};
use crate::error::{ErrorCode, S3Error};
use crate::router::Query;

/// Query parameters that name a sub-resource and so belong to the signed
/// resource: AWS's list (acl ... website, the `response-*` overrides) and
/// the ones botocore's signer adds (accelerate, analytics, ...). Every
/// other parameter is left out of the signature, as S3 does.
const SUB_RESOURCES: [&str; 35] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// The parts of a request a SigV2 signature covers.
pub(super) struct Signed<'a> {
    /// The method.
    pub method: &'a Method,
    /// Path and query exactly as sent.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The bucket a virtual-hosted request's Host names; it is put in
    /// front of the path, since SigV2 always signs `/bucket/key`.
    pub vhost_bucket: Option<&'a str>,
}

/// Everything in the StringToSign but the date line.
struct StringToSign {
    method: String,
    content_md5: String,
    content_type: String,
    /// `name:value\n` per `x-amz-*` header, sorted by name.
    amz_headers: String,
    /// The canonical resource; a second form when the path names a bucket
    /// alone without the trailing slash botocore signs (`/b` sent, `/b/`
    /// signed).
    resources: Vec<String>,
}

impl StringToSign {
    fn of(req: &Signed<'_>, query: Option<&Query>) -> Self {
        // A presigned URL carries the headers it was signed with as query
        // parameters (botocore moves Content-Type, Content-MD5 and x-amz-*
        // there); a header sent with the request wins.
        let from_query = |name: &str| {
            query
                .and_then(|q| q.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .map(|(_, v)| v.trim().to_string())
        };
        let standard = |name: &str| header_text(req.headers, name).or_else(|| from_query(name)).unwrap_or_default();
        let mut amz: BTreeMap<String, String> = BTreeMap::new();
        for name in req.headers.keys().filter(|n| n.as_str().starts_with("x-amz-")) {
            amz.insert(name.as_str().to_string(), header_text(req.headers, name.as_str()).unwrap_or_default());
        }
        for (k, v) in query.map(|q| q.0.as_slice()).unwrap_or_default() {
            let k = k.to_ascii_lowercase();
            if k.starts_with("x-amz-") {
                amz.entry(k).or_insert_with(|| v.trim().to_string());
            }
        }
        StringToSign {
            method: req.method.as_str().to_string(),
            content_md5: standard("content-md5"),
            content_type: standard("content-type"),
            amz_headers: amz.iter().map(|(k, v)| format!("{k}:{v}\n")).collect(),
            resources: resources(req.uri, req.vhost_bucket),
        }
    }

    fn render(&self, date: &str, resource: &str) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}{}",
            self.method, self.content_md5, self.content_type, date, self.amz_headers, resource
        )
    }

    /// Succeeds when the signature over any of `dates` (and any of the
    /// resource forms) is `want`.
    fn verify(&self, secret: &str, dates: &[&str], want: &str) -> Result<(), S3Error> {
        let mut matched = false;
        for resource in &self.resources {
            for date in dates {
                matched |= auth_eq(&sign(secret, &self.render(date, resource)), want);
            }
        }
        if matched {
            Ok(())
        } else {
            Err(signature_mismatch())
        }
    }
}

/// base64(HMAC-SHA1(secret, string_to_sign)).
fn sign(secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A header's values, each trimmed, joined by commas; bytes that are not
/// ASCII are taken as UTF-8 (they were signed as such).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let vals: Vec<String> =
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string()).collect();
    (!vals.is_empty()).then(|| vals.join(","))
}

/// The canonical resource, and for a path-style `/bucket` also `/bucket/`.
fn resources(uri: &Uri, vhost_bucket: Option<&str>) -> Vec<String> {
    let path = match vhost_bucket {
        Some(b) => format!("/{b}{}", uri.path()),
        None => uri.path().to_string(),
    };
    let mut out = vec![canonical_resource(&path, uri.query())];
    if vhost_bucket.is_none() && path.len() > 1 && !path[1..].contains('/') {
        out.push(canonical_resource(&format!("{path}/"), uri.query()));
    }
    out
}

/// `/bucket/key` as sent (with a virtual-hosted bucket put in front of the
/// path), then the sub-resources of `query` sorted by name, with their
/// decoded values where given.
fn canonical_resource(path: &str, query: Option<&str>) -> String {
    let mut out = path.to_string();
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut subs: Vec<(String, Option<String>)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), Some(decode(v))),
            None => (decode(p), None),
        })
        .filter(|(k, _)| SUB_RESOURCES.contains(&k.as_str()))
        .collect();
    subs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if let Some(v) = v {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// An RFC 1123 date (`GMT` or `+0000`), or the ISO 8601 basic form.
fn parse_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let gmt = s.strip_suffix("+0000").map(|p| format!("{p}GMT"));
    httpdate::parse_http_date(gmt.as_deref().unwrap_or(s)).ok().or_else(|| parse_amz_date(s))
}

/// How the body is protected: unsigned unless the client sent (and so
/// signed, as an `x-amz-*` header) a hex `x-amz-content-sha256`.
fn payload(headers: &HeaderMap) -> Result<Payload, S3Error> {
    match header_text(headers, "x-amz-content-sha256").as_deref() {
        None | Some("UNSIGNED-PAYLOAD") => Ok(Payload::Unsigned),
        Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER") => Ok(Payload::Chunked { signer: None, trailer: true }),
        Some(h) => {
            let mut sha = [0u8; 32];
            hex::decode_to_slice(h, &mut sha).map_err(|_| {
                S3Error::new(
                    ErrorCode::InvalidRequest,
                    "with Signature Version 2, x-amz-content-sha256 must be a SHA-256 hex digest or an unsigned form",
                )
            })?;
            Ok(Payload::Sha256(sha))
        }
    }
}

/// Verifies `Authorization: AWS <rest>`.
pub(super) fn header_auth(
    keys: &Keyring,
    req: &Signed<'_>,
    now: SystemTime,
    rest: &str,
) -> Result<Authenticated, S3Error> {
    let (ak, sig) = rest
        .trim()
        .split_once(':')
        .filter(|(ak, sig)| !ak.is_empty() && !sig.is_empty() && !sig.contains(char::is_whitespace))
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::AuthorizationHeaderMalformed,
                "AWS authorization header is invalid. Expected AwsAccessKeyId:signature",
            )
        })?;
    let cred = keys.get(ak).ok_or_else(invalid_key)?;
    let amz_date = header_text(req.headers, "x-amz-date");
    let date = header_text(req.headers, "date");
    let time = amz_date
        .as_deref()
        .or(date.as_deref())
        .and_then(parse_date)
        .ok_or_else(|| denied("AWS authentication requires a valid Date or x-amz-date header"))?;
    if !skew_ok(time, now) {
        return Err(too_skewed());
    }
    // With x-amz-date (signed among the x-amz-* headers) AWS's rule leaves
    // the Date line empty; botocore and MinIO put the Date header there
    // all the same, so both are accepted.
    let mut dates: Vec<&str> = Vec::with_capacity(2);
    if amz_date.is_some() {
        dates.push("");
    }
    if let Some(d) = date.as_deref() {
        dates.push(d);
    }
    StringToSign::of(req, None).verify(&cred.secret_key, &dates, sig)?;
    let payload = payload(req.headers)?;
    Ok(Authenticated { caller: cred.caller, access_key: cred.access_key, rights: cred.rights, payload })
}

/// Verifies a presigned SigV2 URL: `AWSAccessKeyId`, `Expires` (seconds
/// since the epoch, signed in place of the date) and `Signature`.
pub(super) fn query_auth(
    keys: &Keyring,
    req: &Signed<'_>,
    now: SystemTime,
    q: &Query,
) -> Result<Authenticated, S3Error> {
    let param = |name: &str| {
        q.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            S3Error::new(
                ErrorCode::AuthorizationQueryParametersError,
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
            )
        })
    };
    let (ak, sig, expires) = (param("AWSAccessKeyId")?, param("Signature")?, param("Expires")?);
    let cred = keys.get(ak).ok_or_else(invalid_key)?;
    let expires_secs: u64 = expires.parse().map_err(|_| {
        S3Error::new(
            ErrorCode::AuthorizationQueryParametersError,
            "Expires must be a number of seconds since the epoch",
        )
    })?;
    let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now_secs > expires_secs {
        return Err(denied("Request has expired"));
    }
    StringToSign::of(req, Some(q)).verify(&cred.secret_key, &[expires], sig)?;
    Ok(Authenticated {
        caller: cred.caller,
        access_key: cred.access_key,
        rights: cred.rights,
        payload: Payload::Unsigned,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::{authenticate, Credential};
    use crate::rights::BucketRights;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn keys() -> Keyring {
        Keyring::new([Credential {
            access_key: AK.into(),
            secret_key: SECRET.into(),
            caller: namespace::Caller { uid: 1000, gid: 1000, groups: vec![] },
            rights: BucketRights::admin_everywhere(),
        }])
    }

    fn at(date: &str) -> SystemTime {
        parse_date(date).unwrap()
    }

    fn request(
        method: &str,
        uri: &str,
        vhost: Option<&str>,
        headers: &[(&str, &str)],
        now: SystemTime,
    ) -> Result<Authenticated, S3Error> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(), v.parse().unwrap());
        }
        authenticate(&keys(), &method.parse().unwrap(), &uri.parse().unwrap(), &h, vhost, now)
    }

    fn code(r: Result<Authenticated, S3Error>) -> (&'static str, u16) {
        let e = r.unwrap_err();
        (e.code.as_str(), e.status().as_u16())
    }

    /// The StringToSign/signature pairs of AWS's "Signing and
    /// authenticating REST requests" page (the current edition uses bucket
    /// `awsexamplebucket1`; the last four are from the older edition with
    /// `johnsmith`, `static.johnsmith.net` and the query-string example).
    #[test]
    fn aws_documented_signatures() {
        let rows = [
            (
                "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
            ),
            (
                "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "iqRzw+ileNPu1fhspnRs8nOjjIA=",
            ),
            ("GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/awsexamplebucket1/", "m0WP8eCtspQl5Ahe6L1SozdX9YA="),
            ("GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/awsexamplebucket1/?acl", "82ZHiFIjc+WbcwFKGUVEQspPn+0="),
            (
                "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "XbyTlbQdu9Xw5o8P4iMwPktxQd8=",
            ),
            ("GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/", "qGdzdERIC03wnaRNKh6OqZehG9s="),
            (
                "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
                "DNEZGsoieTZ92F3bUfSPQcbGmlM=",
            ),
            (
                "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n\
                 x-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\n\
                 x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n/static.johnsmith.net/db-backup.dat.gz",
                "ilyl83RwaSoYIEdixDQcA4OnAnc=",
            ),
            ("GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg", "NpgCjnDzrM+WFzoENXmpNDUsSn8="),
        ];
        for (sts, sig) in rows {
            assert_eq!(sign(SECRET, sts), sig, "{sts:?}");
        }
    }

    /// The documented requests, verified end to end (canonicalization
    /// included): virtual-hosted and path style, sub-resources, the
    /// ignored list parameters, repeated x-amz-meta headers, a CNAME-style
    /// bucket and percent-encoded UTF-8 in the path.
    #[test]
    fn aws_documented_requests_verify() {
        let vh = Some("awsexamplebucket1");
        let get = [
            ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
        ];
        let a = request("GET", "/photos/puppy.jpg", vh, &get, at(get[0].1)).unwrap();
        assert_eq!((a.access_key.as_str(), a.caller.uid), (AK, 1000));
        assert!(matches!(a.payload, Payload::Unsigned));
        let put = [
            ("Content-Type", "image/jpeg"),
            ("Date", "Tue, 27 Mar 2007 21:15:45 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:iqRzw+ileNPu1fhspnRs8nOjjIA="),
        ];
        request("PUT", "/photos/puppy.jpg", vh, &put, at(put[1].1)).unwrap();
        let list = [
            ("Date", "Tue, 27 Mar 2007 19:42:41 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:m0WP8eCtspQl5Ahe6L1SozdX9YA="),
        ];
        request("GET", "/?prefix=photos&max-keys=50&marker=puppy", vh, &list, at(list[0].1)).unwrap();
        let acl = [
            ("Date", "Tue, 27 Mar 2007 19:44:46 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:82ZHiFIjc+WbcwFKGUVEQspPn+0="),
        ];
        request("GET", "/?acl", vh, &acl, at(acl[0].1)).unwrap();
        let buckets = [
            ("Date", "Wed, 28 Mar 2007 01:29:59 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qGdzdERIC03wnaRNKh6OqZehG9s="),
        ];
        request("GET", "/", None, &buckets, at(buckets[0].1)).unwrap();
        let utf8 = [
            ("Date", "Wed, 28 Mar 2007 01:49:49 +0000"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:DNEZGsoieTZ92F3bUfSPQcbGmlM="),
        ];
        request("GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", None, &utf8, at(utf8[0].1)).unwrap();
        let upload = [
            ("Date", "Tue, 27 Mar 2007 21:06:08 +0000"),
            ("x-amz-acl", "public-read"),
            ("content-type", "application/x-download"),
            ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
            ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
            ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
            ("X-Amz-Meta-FileChecksum", "0x02661779"),
            ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
            ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:ilyl83RwaSoYIEdixDQcA4OnAnc="),
        ];
        request("PUT", "/db-backup.dat.gz", Some("static.johnsmith.net"), &upload, at(upload[0].1)).unwrap();
    }

    /// With x-amz-date the Date line is empty and x-amz-date is signed
    /// among the amz headers (AWS's rule; its DELETE example instead puts
    /// x-amz-date's value on the Date line, which S3 itself does not do).
    #[test]
    fn x_amz_date_replaces_date() {
        let amz = "Tue, 27 Mar 2007 21:20:26 +0000";
        let sig = sign(SECRET, &format!("DELETE\n\n\n\nx-amz-date:{amz}\n/awsexamplebucket1/photos/puppy.jpg"));
        let auth = format!("AWS {AK}:{sig}");
        let h = [("Date", "Tue, 27 Mar 2007 21:20:27 +0000"), ("x-amz-date", amz), ("Authorization", auth.as_str())];
        request("DELETE", "/awsexamplebucket1/photos/puppy.jpg", None, &h, at(amz)).unwrap();
        // The clock is checked against x-amz-date, not Date.
        let h = [("Date", "Tue, 27 Mar 2007 22:20:27 +0000"), ("x-amz-date", amz), ("Authorization", auth.as_str())];
        request("DELETE", "/awsexamplebucket1/photos/puppy.jpg", None, &h, at(amz)).unwrap();
    }

    #[test]
    fn refusals() {
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        let now = at(date);
        let with = |auth: &str| {
            request(
                "GET",
                "/photos/puppy.jpg",
                Some("awsexamplebucket1"),
                &[("Date", date), ("Authorization", auth)],
                now,
            )
        };
        assert_eq!(code(with("AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1h=")), ("SignatureDoesNotMatch", 403));
        assert_eq!(code(with("AWS NOSUCHKEY:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=")), ("InvalidAccessKeyId", 403));
        assert_eq!(code(with("AWS AKIAIOSFODNN7EXAMPLE")), ("AuthorizationHeaderMalformed", 400));
        assert_eq!(code(with("AWS :sig")), ("AuthorizationHeaderMalformed", 400));
        let late = request(
            "GET",
            "/photos/puppy.jpg",
            Some("awsexamplebucket1"),
            &[("Date", date), ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=")],
            now + Duration::from_secs(16 * 60),
        );
        assert_eq!(code(late), ("RequestTimeTooSkewed", 403));
        let undated =
            request("GET", "/photos/puppy.jpg", None, &[("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:x=")], now);
        assert_eq!(code(undated), ("AccessDenied", 403));
        // An x-amz-* header added after signing breaks the signature.
        let injected = request(
            "GET",
            "/photos/puppy.jpg",
            Some("awsexamplebucket1"),
            &[
                ("Date", date),
                ("x-amz-copy-source", "/other/key"),
                ("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
            ],
            now,
        );
        assert_eq!(code(injected), ("SignatureDoesNotMatch", 403));
    }

    /// The older edition's query-string example, then expiry and tampering.
    #[test]
    fn presigned_urls() {
        let url = "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";
        let before = UNIX_EPOCH + Duration::from_secs(1_175_139_000);
        let a = request("GET", url, Some("johnsmith"), &[], before).unwrap();
        assert_eq!(a.access_key, AK);
        let after = UNIX_EPOCH + Duration::from_secs(1_175_139_621);
        let e = request("GET", url, Some("johnsmith"), &[], after).unwrap_err();
        assert_eq!((e.code.as_str(), e.message.as_str()), ("AccessDenied", "Request has expired"));
        let other = url.replace("puppy", "kitten");
        assert_eq!(code(request("GET", &other, Some("johnsmith"), &[], before)), ("SignatureDoesNotMatch", 403));
        assert_eq!(code(request("PUT", url, Some("johnsmith"), &[], before)), ("SignatureDoesNotMatch", 403));
        let later = url.replace("1175139620", "1175139999");
        assert_eq!(code(request("GET", &later, Some("johnsmith"), &[], before)), ("SignatureDoesNotMatch", 403));
        let partial = "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x";
        assert_eq!(
            code(request("GET", partial, Some("johnsmith"), &[], before)),
            ("AuthorizationQueryParametersError", 400)
        );
    }

    #[test]
    fn sub_resources_sorted_with_values_others_dropped() {
        let uri: Uri = "/b/k?uploadId=a%2Fb&partNumber=2&foo=bar&x-id=UploadPart".parse().unwrap();
        assert_eq!(resources(&uri, None), ["/b/k?partNumber=2&uploadId=a/b"]);
        let uri: Uri = "/?uploads&prefix=p".parse().unwrap();
        assert_eq!(resources(&uri, Some("b")), ["/b/?uploads"]);
        let uri: Uri = "/k?response-content-type=text%2Fplain&versionId=".parse().unwrap();
        assert_eq!(resources(&uri, Some("b")), ["/b/k?response-content-type=text/plain&versionId="]);
        // botocore signs a path-style bucket request as `/b/` but sends `/b`.
        let uri: Uri = "/b?location".parse().unwrap();
        assert_eq!(resources(&uri, None), ["/b?location", "/b/?location"]);
    }

    #[test]
    fn dates() {
        let t = at("Tue, 27 Mar 2007 19:36:42 +0000");
        assert_eq!(t, at("Tue, 27 Mar 2007 19:36:42 GMT"));
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_175_024_202);
        assert_eq!(parse_date("20070327T193642Z"), Some(t));
        assert_eq!(parse_date("yesterday"), None);
    }
}

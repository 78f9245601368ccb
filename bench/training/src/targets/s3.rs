//! `s3://BUCKET/PREFIX` at `--endpoint` (or the URL's own `?endpoint=`): a
//! hyper HTTP/1.1 client with a connection pool over TCP or TLS (rustls;
//! the system's roots plus `--ca-file`), requests signed with `aws-sigv4`
//! (path-style or virtual-hosted-style,
//! `UNSIGNED-PAYLOAD`, as s3torchconnector and Mountpoint send over TLS;
//! hashing every payload would make the client, not the server, the
//! bottleneck). Parallelism is concurrent requests, bounded by
//! `--s3-connections` with a semaphore so the pool never grows past it.
//!
//! Operations: PUT (objects up to one part), multipart upload (larger
//! objects: [`limits::PARTS_IN_FLIGHT_MAX`] parts in flight), ranged GET,
//! HEAD, ListObjectsV2 with continuation tokens, DELETE; HEAD/PUT bucket
//! for `prepare_root`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::sync::Semaphore;

use super::resolve::Resolver;
use super::{Addressing, BoxFuture, Content, Entry, Target, TargetOptions};
use crate::limits;
use crate::{BenchError, Result};

/// Bytes S3 leaves unescaped in a URI (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping `/` for object paths.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// An S3 bucket (and key prefix) at an endpoint.
pub struct S3Target {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    /// `scheme://` of the endpoint.
    scheme: &'static str,
    /// `host[:port]` of the endpoint.
    authority: String,
    addressing: Addressing,
    bucket: String,
    /// Key prefix with a trailing `/`, or empty.
    prefix: String,
    access_key: String,
    secret_key: String,
    region: String,
    list_keys: u32,
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>,
    in_flight: Semaphore,
}

/// A response: status, headers we need, body.
struct Resp {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl S3Target {
    /// A target for `bucket`/`prefix` at `endpoint` (the URL's own, else
    /// `--endpoint`), with the keys and TLS settings in `opts`.
    pub fn new(
        url: &str,
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        addressing: Option<Addressing>,
        opts: &TargetOptions,
    ) -> Result<S3Target> {
        let invalid = |w: &str| BenchError::BadTarget { url: url.into(), why: w.into() };
        let endpoint = endpoint
            .or_else(|| opts.endpoint.clone())
            .ok_or_else(|| invalid("s3:// needs --endpoint (or ?endpoint= in the URL)"))?;
        let (scheme, rest) = if let Some(r) = endpoint.strip_prefix("http://") {
            ("http://", r)
        } else if let Some(r) = endpoint.strip_prefix("https://") {
            ("https://", r)
        } else {
            return Err(invalid("the endpoint must be http://HOST[:PORT] or https://HOST[:PORT]"));
        };
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(invalid("the endpoint is scheme://HOST[:PORT], without a path"));
        }
        let addressing = addressing.unwrap_or(opts.s3_addressing);
        if addressing == Addressing::Virtual && bucket.contains('.') && scheme == "https://" {
            return Err(invalid("a bucket with dots cannot be addressed virtual-host style over TLS"));
        }
        let access_key = opts.access_key.clone().ok_or_else(|| invalid("s3:// needs --access-key"))?;
        let secret_key = opts.secret_key.clone().ok_or_else(|| invalid("s3:// needs --secret-key"))?;
        let mut conn = HttpConnector::new_with_resolver(Resolver::new(opts.resolve.clone()));
        conn.set_nodelay(true);
        conn.enforce_http(false);
        let tls = tls_config(url, opts.ca_file.as_deref())?;
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(opts.s3_connections as usize)
            .pool_idle_timeout(POOL_IDLE)
            .build(conn);
        let prefix = if prefix.is_empty() { prefix } else { format!("{prefix}/") };
        Ok(S3Target {
            inner: Arc::new(Inner {
                url: url.into(),
                scheme,
                authority,
                addressing,
                bucket,
                prefix,
                access_key,
                secret_key,
                region: opts.region.clone(),
                list_keys: opts.s3_list_keys,
                client,
                in_flight: Semaphore::new(opts.s3_connections as usize),
            }),
        })
    }
}

/// An error and its sources, `a: b: c`: hyper's own message ("client
/// error (Connect)") hides the cause (refused, a certificate not trusted).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// TLS to an S3 endpoint: the system's trusted roots plus the PEM
/// certificates of `ca_file` (a private CA, a self-signed test gateway).
fn tls_config(url: &str, ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig> {
    let bad = |why: String| BenchError::BadTarget { url: url.into(), why };
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates leave the store to --ca-file.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| bad(format!("--ca-file {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| bad(format!("--ca-file {}: {e}", path.display())))?;
            roots.add(cert).map_err(|e| bad(format!("--ca-file {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(format!("--ca-file {}: no PEM certificate in it", path.display())));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Inner {
    fn key(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// Sends one signed request. `key` empty addresses the bucket.
    async fn send(
        &self,
        op: &'static str,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        extra: &[(&str, String)],
        body: Bytes,
    ) -> Result<Resp> {
        let err = |why: String| BenchError::S3 { op, key: format!("{}/{key}", self.bucket), why };
        // Path style: `host/bucket/key`; virtual-hosted: `bucket.host/key`.
        let (host, mut path) = match self.addressing {
            Addressing::Path => (self.authority.clone(), format!("/{}", self.bucket)),
            Addressing::Virtual => (format!("{}.{}", self.bucket, self.authority), String::new()),
        };
        if !key.is_empty() || path.is_empty() {
            path.push('/');
            path.push_str(&utf8_percent_encode(key, PATH).to_string());
        }
        let mut q = String::new();
        for (i, (k, v)) in query.iter().enumerate() {
            q.push(if i == 0 { '?' } else { '&' });
            q.push_str(k);
            if !v.is_empty() || *k != "uploads" {
                q.push('=');
                q.push_str(&utf8_percent_encode(v, UNRESERVED).to_string());
            }
        }
        let url = format!("{}{host}{path}{q}", self.scheme);
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity =
            aws_credential_types::Credentials::new(&self.access_key, &self.secret_key, None, None, "bench").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| err(format!("signing parameters: {e}")))?
            .into();
        let signable =
            SignableRequest::new(method, &url, std::iter::once(("host", host.as_str())), SignableBody::UnsignedPayload)
                .map_err(|e| err(format!("signing: {e}")))?;
        let (instructions, _sig) = sign(signable, &params).map_err(|e| err(format!("signing: {e}")))?.into_parts();
        let mut req = http::Request::builder().method(method).uri(&url).header("host", &host);
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(body)).map_err(|e| err(format!("request: {e}")))?;
        let _permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
        let resp = self.client.request(req).await.map_err(|e| err(error_chain(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(|e| err(format!("body: {e}")))?.to_bytes();
        Ok(Resp { status, headers, body })
    }

    fn check(&self, op: &'static str, key: &str, r: Resp, ok: &[u16]) -> Result<Resp> {
        if ok.contains(&r.status) {
            return Ok(r);
        }
        let n = r.body.len().min(limits::S3_ERROR_BODY_BYTES_MAX);
        Err(BenchError::S3 {
            op,
            key: format!("{}/{key}", self.bucket),
            why: format!("status {}: {}", r.status, String::from_utf8_lossy(&r.body[..n])),
        })
    }

    async fn put_object(&self, key: &str, body: Bytes) -> Result<()> {
        let r = self.send("PUT", "PUT", key, &[], &[], body).await?;
        self.check("PUT", key, r, &[200]).map(|_| ())
    }

    async fn multipart(self: &Arc<Self>, key: &str, content: Content) -> Result<()> {
        let r = self.send("CreateMultipartUpload", "POST", key, &[("uploads", "")], &[], Bytes::new()).await?;
        let r = self.check("CreateMultipartUpload", key, r, &[200])?;
        let upload_id =
            xml_values(&r.body, "UploadId", "CreateMultipartUpload", key)?.into_iter().next().ok_or_else(|| {
                BenchError::S3 { op: "CreateMultipartUpload", key: key.into(), why: "no UploadId".into() }
            })?;
        let parts = content.len().div_ceil(limits::PART_BYTES);
        assert!(parts <= limits::S3_PARTS_MAX, "checked when the workload was scaled");
        let uploads = (0..parts).map(|i| {
            let (me, key, id, content) = (self.clone(), key.to_string(), upload_id.clone(), content.clone());
            async move {
                let off = i * limits::PART_BYTES;
                let body = content.part(off, limits::PART_BYTES.min(content.len() - off));
                let n = (i + 1).to_string();
                let r = me.send("UploadPart", "PUT", &key, &[("partNumber", &n), ("uploadId", &id)], &[], body).await?;
                let r = me.check("UploadPart", &key, r, &[200])?;
                let etag = r.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                Ok::<_, BenchError>((i + 1, etag))
            }
        });
        let mut done: Vec<(u64, String)> = Vec::new();
        let mut s = futures_util::stream::iter(uploads).buffer_unordered(limits::PARTS_IN_FLIGHT_MAX);
        while let Some(r) = s.next().await {
            match r {
                Ok(p) => done.push(p),
                Err(e) => {
                    let _ = self
                        .send("AbortMultipartUpload", "DELETE", key, &[("uploadId", &upload_id)], &[], Bytes::new())
                        .await;
                    return Err(e);
                }
            }
        }
        done.sort();
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (n, etag) in &done {
            xml.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>", xml_escape(etag)));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let r = self
            .send("CompleteMultipartUpload", "POST", key, &[("uploadId", &upload_id)], &[], Bytes::from(xml))
            .await?;
        let r = self.check("CompleteMultipartUpload", key, r, &[200])?;
        // A 200 can still carry an error document.
        if r.body.windows(7).any(|w| w == b"<Error>") {
            return Err(BenchError::S3 {
                op: "CompleteMultipartUpload",
                key: key.into(),
                why: String::from_utf8_lossy(&r.body).into_owned(),
            });
        }
        Ok(())
    }
}

/// The texts of every `<tag>` element of an S3 reply, unescaped, in order
/// (quick-xml's reader: entities, CDATA and attributes handled as XML says).
/// A reply that is not well-formed XML is an error naming `op` and `key`.
fn xml_values(body: &[u8], tag: &str, op: &'static str, key: &str) -> Result<Vec<String>> {
    use quick_xml::events::Event;
    let bad = |why: String| BenchError::S3 { op, key: key.into(), why };
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    loop {
        match reader.read_event().map_err(|e| bad(format!("reply is not XML: {e}")))? {
            Event::Start(e) if e.local_name().as_ref() == tag.as_bytes() => inside = Some(String::new()),
            Event::Text(t) => {
                if let Some(v) = inside.as_mut() {
                    v.push_str(&t.unescape().map_err(|e| bad(format!("reply is not XML: {e}")))?);
                }
            }
            Event::CData(t) => {
                if let Some(v) = inside.as_mut() {
                    v.push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::End(e) if e.local_name().as_ref() == tag.as_bytes() => {
                out.extend(inside.take());
            }
            Event::Empty(e) if e.local_name().as_ref() == tag.as_bytes() => out.push(String::new()),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl Target for S3Target {
    fn url(&self) -> &str {
        &self.inner.url
    }

    fn prepare_root(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let me = &self.inner;
            let r = me.send("HeadBucket", "HEAD", "", &[], &[], Bytes::new()).await?;
            if r.status == 404 {
                let r = me.send("CreateBucket", "PUT", "", &[], &[], Bytes::new()).await?;
                me.check("CreateBucket", "", r, &[200])?;
                return Ok(());
            }
            me.check("HeadBucket", "", r, &[200]).map(|_| ())
        })
    }

    fn write<'a>(&'a self, path: &'a str, content: Content, _sync: bool) -> BoxFuture<'a, ()> {
        // An S3 PUT or CompleteMultipartUpload is durable once
        // acknowledged; there is nothing more to sync.
        Box::pin(async move {
            let key = self.inner.key(path);
            if content.len() <= limits::PART_BYTES {
                self.inner.put_object(&key, content.part(0, content.len())).await
            } else {
                self.inner.multipart(&key, content).await
            }
        })
    }

    fn read<'a>(&'a self, path: &'a str, offset: u64, len: u64) -> BoxFuture<'a, Bytes> {
        Box::pin(async move {
            let key = self.inner.key(path);
            if len == 0 {
                return Ok(Bytes::new());
            }
            let range = format!("bytes={offset}-{}", offset + len - 1);
            let r = self.inner.send("GET", "GET", &key, &[], &[("range", range)], Bytes::new()).await?;
            let r = self.inner.check("GET", &key, r, &[200, 206])?;
            if r.status == 200 {
                // A server that ignores Range sends the whole object.
                let end = (offset + len).min(r.body.len() as u64);
                return Ok(r.body.slice(offset.min(end) as usize..end as usize));
            }
            Ok(r.body)
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            let prefix = format!("{}{dir}/", self.inner.prefix);
            let max = self.inner.list_keys.to_string();
            let mut token: Option<String> = None;
            let mut out = Vec::new();
            loop {
                let mut q = vec![
                    ("list-type", "2"),
                    ("prefix", prefix.as_str()),
                    ("delimiter", "/"),
                    ("max-keys", max.as_str()),
                ];
                if let Some(t) = &token {
                    q.push(("continuation-token", t.as_str()));
                }
                let r = self.inner.send("ListObjectsV2", "GET", "", &q, &[], Bytes::new()).await?;
                let r = self.inner.check("ListObjectsV2", &prefix, r, &[200])?;
                let keys = xml_values(&r.body, "Key", "ListObjectsV2", &prefix)?;
                let sizes = xml_values(&r.body, "Size", "ListObjectsV2", &prefix)?;
                if keys.len() != sizes.len() {
                    return Err(BenchError::S3 {
                        op: "ListObjectsV2",
                        key: prefix,
                        why: "a Key without a Size".into(),
                    });
                }
                for (k, s) in keys.into_iter().zip(sizes) {
                    let bytes = s.trim().parse().map_err(|_| BenchError::S3 {
                        op: "ListObjectsV2",
                        key: k.clone(),
                        why: format!("bad Size {s:?}"),
                    })?;
                    out.push(Entry { name: k[prefix.len().min(k.len())..].to_string(), bytes });
                }
                let truncated =
                    xml_values(&r.body, "IsTruncated", "ListObjectsV2", &prefix)?.first().is_some_and(|v| v == "true");
                token = xml_values(&r.body, "NextContinuationToken", "ListObjectsV2", &prefix)?.into_iter().next();
                if !truncated || token.is_none() {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let key = self.inner.key(path);
            let r = self.inner.send("HEAD", "HEAD", &key, &[], &[], Bytes::new()).await?;
            let r = self.inner.check("HEAD", &key, r, &[200])?;
            r.headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| BenchError::S3 { op: "HEAD", key, why: "no Content-Length".into() })
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let key = self.inner.key(path);
            let r = self.inner.send("DELETE", "DELETE", &key, &[], &[], Bytes::new()).await?;
            self.inner.check("DELETE", &key, r, &[200, 204, 404]).map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_values_reads_list_replies() {
        let body = b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/b&amp;c</Key><Size>12</Size></Contents><Contents><Key>a/d</Key><Size>0</Size></Contents><NextContinuationToken>t+/=</NextContinuationToken></ListBucketResult>";
        let v = |tag| xml_values(body, tag, "ListObjectsV2", "p").unwrap();
        assert_eq!(v("Key"), vec!["a/b&c", "a/d"]);
        assert_eq!(v("Size"), vec!["12", "0"]);
        assert_eq!(v("NextContinuationToken"), vec!["t+/="]);
        assert_eq!(v("UploadId"), Vec::<String>::new());
        let cdata =
            b"<InitiateMultipartUploadResult><UploadId><![CDATA[x<y]]></UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_values(cdata, "UploadId", "CreateMultipartUpload", "k").unwrap(), vec!["x<y"]);
        assert!(xml_values(b"<a><b></a>", "b", "ListObjectsV2", "p").is_err(), "a broken reply is an error");
    }
}

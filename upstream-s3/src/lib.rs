//! [`namespace::Upstream`] over another S3-compatible object store, with
//! `object_store`'s S3 client (SigV4, retries with back-off, ranged and
//! conditional GETs, multipart uploads). The gateway builds one per bound
//! bucket and attaches it to the namespace.
//!
//! The namespace's calls block; each runs on this client's own small
//! runtime. Invariant: they are made from blocking threads
//! (`spawn_blocking`, `block_in_place`, plain threads), never from inside
//! an async task, as every namespace call is.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use namespace::{RemoteObject, UploadBody, Upstream, UpstreamBinding, UpstreamError, UpstreamListing};
use object_store::aws::S3ConditionalPut;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion,
};

/// Objects up to this size are uploaded with one PUT; larger ones in parts.
pub const SINGLE_PUT_BYTES_MAX: u64 = 64 << 20;
/// Size of each multipart part.
pub const PART_BYTES: usize = 16 << 20;
/// Parts uploaded at once (memory: this many parts are buffered).
pub const PARTS_IN_FLIGHT_MAX: usize = 4;
/// Time one request may take (a 16 MiB part on a slow link included).
pub const REQUEST_TIMEOUT_SECS: u64 = 120;
/// Time a connection may take to open.
pub const CONNECT_TIMEOUT_SECS: u64 = 5;
/// Retries of a failed request (5xx, connection errors) before giving up.
pub const RETRIES_MAX: usize = 3;
/// Total time retries of one request may take.
pub const RETRY_WINDOW_SECS: u64 = 20;
/// Worker threads of the client's runtime.
const RUNTIME_THREADS: usize = 2;

/// Access key pair for signing.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the secret (nor the key id, which names the account).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// Time limits and retries of a client.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Time one request may take.
    pub request_timeout: Duration,
    /// Retries of a failed request (5xx, connection errors).
    pub retries: usize,
    /// Total time the retries of one request may take.
    pub retry_window: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            request_timeout: Duration::from_secs(REQUEST_TIMEOUT_SECS),
            retries: RETRIES_MAX,
            retry_window: Duration::from_secs(RETRY_WINDOW_SECS),
        }
    }
}

/// A client of one upstream bucket.
pub struct S3Upstream {
    store: Arc<AmazonS3>,
    /// `Some` until dropped (see the `Drop` impl).
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for S3Upstream {
    /// A runtime dropped the ordinary way panics inside an async context
    /// (the gateway may drop the namespace there): shut it down without
    /// waiting instead.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl S3Upstream {
    /// A client for `binding`; `creds` `None` sends unsigned requests.
    pub fn new(binding: &UpstreamBinding, creds: Option<Credentials>) -> Result<Self, String> {
        Self::with_tuning(binding, creds, Tuning::default())
    }

    /// [`S3Upstream::new`] with its own retry behaviour.
    pub fn with_tuning(binding: &UpstreamBinding, creds: Option<Credentials>, tuning: Tuning) -> Result<Self, String> {
        let mut opts = ClientOptions::new()
            .with_timeout(tuning.request_timeout)
            .with_connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
            .with_allow_http(binding.endpoint.starts_with("http://"));
        if let Some(ca) = &binding.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("reading CA file {ca}: {e}"))?;
            for cert in object_store::Certificate::from_pem_bundle(&pem).map_err(|e| format!("CA file {ca}: {e}"))? {
                opts = opts.with_root_certificate(cert);
            }
        }
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: tuning.retries,
            retry_timeout: tuning.retry_window,
        };
        let mut b = AmazonS3Builder::new()
            .with_endpoint(&binding.endpoint)
            .with_region(&binding.region)
            .with_bucket_name(&binding.bucket)
            .with_virtual_hosted_style_request(binding.virtual_host)
            .with_allow_http(binding.endpoint.starts_with("http://"))
            .with_client_options(opts)
            // Over TLS the payload is not hashed into the signature (as
            // Mountpoint and the AWS CLI do): TLS already guards it, and
            // SHA-256 of every byte costs both ends CPU. Plain HTTP keeps
            // the signed payload hash, the only integrity check it has.
            .with_unsigned_payload(binding.endpoint.starts_with("https://"))
            .with_retry(retry)
            // If-Match on PUT: local changes never overwrite a newer version.
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        b = match creds {
            Some(c) => b.with_access_key_id(c.access_key_id).with_secret_access_key(c.secret_access_key),
            None => b.with_skip_signature(true),
        };
        let store = b.build().map_err(|e| format!("upstream client: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_THREADS)
            .thread_name("upstream-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("upstream runtime: {e}"))?;
        Ok(S3Upstream { store: Arc::new(store), rt: Some(rt) })
    }
}

/// The client's error as the namespace's.
fn classify(e: object_store::Error) -> UpstreamError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => UpstreamError::NotFound,
        E::Precondition { .. } | E::NotModified { .. } => UpstreamError::Changed,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } | E::InvalidPath { .. } => {
            UpstreamError::Refused(e.to_string())
        }
        E::NotSupported { .. } | E::NotImplemented | E::UnknownConfigurationKey { .. } | E::AlreadyExists { .. } => {
            UpstreamError::Refused(e.to_string())
        }
        // Connection errors, 5xx and timeouts after the retries: retryable.
        other => UpstreamError::Unavailable(other.to_string()),
    }
}

/// `key` as a path (keys with empty or `.` segments cannot be expressed).
fn path(key: &str) -> Result<Path, UpstreamError> {
    Path::parse(key).map_err(|e| UpstreamError::Refused(format!("key {key:?}: {e}")))
}

/// Runs one upstream operation and records its latency and errors
/// (`gateway_upstream_request_duration_seconds{op}`,
/// `gateway_upstream_request_errors_total{op,kind}`): retries included,
/// as the namespace waited for them.
fn timed<T>(op: &'static str, f: impl FnOnce() -> Result<T, UpstreamError>) -> Result<T, UpstreamError> {
    let started = std::time::Instant::now();
    let r = f();
    metrics::histogram!("gateway_upstream_request_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(e) = &r {
        let kind = match e {
            UpstreamError::NotFound => "not_found",
            UpstreamError::Changed => "changed",
            UpstreamError::Unavailable(_) => "unavailable",
            UpstreamError::Refused(_) => "refused",
        };
        metrics::counter!("gateway_upstream_request_errors_total", "op" => op, "kind" => kind).increment(1);
    }
    r
}

fn body_bytes(body: &dyn UploadBody, offset: u64, len: usize) -> Result<Bytes, UpstreamError> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = body
            .read_at(offset + got as u64, &mut buf[got..])
            .map_err(|e| UpstreamError::Unavailable(format!("reading the local file: {e}")))?;
        if n == 0 {
            return Err(UpstreamError::Unavailable("the local file shrank during its upload".into()));
        }
        got += n;
    }
    Ok(Bytes::from(buf))
}

impl S3Upstream {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.as_ref().expect("runtime present until drop").block_on(f)
    }
}

impl Upstream for S3Upstream {
    fn list_dir(&self, prefix: &str, max_entries: usize) -> Result<UpstreamListing, UpstreamError> {
        timed("list", || self.list_dir_inner(prefix, max_entries))
    }

    fn get_range_into(
        &self,
        key: &str,
        range: Range<u64>,
        etag: &str,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), UpstreamError> {
        timed("get", || self.get_range_inner(key, range, etag, sink))
    }

    fn put(&self, key: &str, body: &dyn UploadBody, if_match: Option<&str>) -> Result<String, UpstreamError> {
        timed("put", || self.put_inner(key, body, if_match))
    }

    fn copy(&self, from: &str, to: &str) -> Result<String, UpstreamError> {
        timed("copy", || self.copy_inner(from, to))
    }

    fn delete(&self, key: &str) -> Result<(), UpstreamError> {
        timed("delete", || self.delete_inner(key))
    }
}

impl S3Upstream {
    fn list_dir_inner(&self, prefix: &str, max_entries: usize) -> Result<UpstreamListing, UpstreamError> {
        let dir = prefix.trim_end_matches('/');
        let at = if dir.is_empty() { None } else { Some(path(dir)?) };
        let res = self.block_on(self.store.list_with_delimiter(at.as_ref())).map_err(classify)?;
        if res.objects.len() + res.common_prefixes.len() > max_entries {
            return Err(UpstreamError::Refused(format!("{prefix:?} holds more than {max_entries} entries")));
        }
        let name_of = |p: &Path| -> Option<String> {
            let rest = p.as_ref().strip_prefix(prefix)?;
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        };
        let mut out = UpstreamListing::default();
        for o in res.objects {
            let Some(name) = name_of(&o.location) else { continue };
            let mtime = o.last_modified.timestamp_nanos_opt().unwrap_or(0);
            out.objects.push(RemoteObject { name, size: o.size, etag: o.e_tag.unwrap_or_default(), mtime });
        }
        out.dirs = res.common_prefixes.iter().filter_map(name_of).collect();
        Ok(out)
    }

    fn get_range_inner(
        &self,
        key: &str,
        range: Range<u64>,
        etag: &str,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), UpstreamError> {
        use futures_util::StreamExt;
        let p = path(key)?;
        let want = range.end - range.start;
        let opts = GetOptions {
            if_match: (!etag.is_empty()).then(|| etag.to_string()),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let mut got = 0u64;
        self.block_on(async {
            let mut body = self.store.get_opts(&p, opts).await.map_err(classify)?.into_stream();
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(classify)?;
                let piece = &piece[..piece.len().min((want - got) as usize)];
                got += piece.len() as u64;
                sink(piece);
            }
            Ok::<(), UpstreamError>(())
        })?;
        if got != want {
            return Err(UpstreamError::Unavailable(format!("upstream sent {got} bytes for a {want}-byte range")));
        }
        Ok(())
    }

    fn put_inner(&self, key: &str, body: &dyn UploadBody, if_match: Option<&str>) -> Result<String, UpstreamError> {
        let p = path(key)?;
        let size = body.size();
        if size <= SINGLE_PUT_BYTES_MAX {
            let data = body_bytes(body, 0, size as usize)?;
            let mode = match if_match {
                Some(e) => PutMode::Update(UpdateVersion { e_tag: Some(e.to_string()), version: None }),
                None => PutMode::Overwrite,
            };
            let opts = PutOptions { mode, ..PutOptions::default() };
            let r = self.block_on(self.store.put_opts(&p, PutPayload::from(data), opts)).map_err(classify)?;
            return Ok(r.e_tag.unwrap_or_default());
        }
        if let Some(want) = if_match {
            // A multipart completion carries no condition here: check the
            // version first (a race in between goes undetected).
            let now = self.block_on(self.store.head(&p)).map_err(classify)?;
            if now.e_tag.as_deref() != Some(want) {
                return Err(UpstreamError::Changed);
            }
        }
        self.block_on(async {
            let mut up = self.store.put_multipart(&p).await.map_err(classify)?;
            let mut inflight = VecDeque::new();
            let mut off = 0u64;
            let mut failed = None;
            while off < size && failed.is_none() {
                let n = (size - off).min(PART_BYTES as u64) as usize;
                match body_bytes(body, off, n) {
                    Ok(data) => inflight.push_back(tokio::spawn(up.put_part(PutPayload::from(data)))),
                    Err(e) => failed = Some(e),
                }
                off += n as u64;
                while inflight.len() >= PARTS_IN_FLIGHT_MAX || (off >= size && !inflight.is_empty()) {
                    let done = inflight.pop_front().expect("non-empty");
                    match done.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failed = failed.or(Some(classify(e))),
                        Err(e) => failed = failed.or(Some(UpstreamError::Unavailable(e.to_string()))),
                    }
                    if failed.is_some() {
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                for h in inflight {
                    h.abort();
                }
                if let Err(ae) = up.abort().await {
                    tracing::warn!(key, error = %ae, "could not abort a failed multipart upload upstream");
                }
                return Err(e);
            }
            let r = up.complete().await.map_err(classify)?;
            Ok(r.e_tag.unwrap_or_default())
        })
    }

    fn copy_inner(&self, from: &str, to: &str) -> Result<String, UpstreamError> {
        let (f, t) = (path(from)?, path(to)?);
        self.block_on(async {
            self.store.copy(&f, &t).await?;
            // The copy's answer carries no ETag here: ask for it.
            self.store.head(&t).await
        })
        .map(|m| m.e_tag.unwrap_or_default())
        .map_err(classify)
    }

    fn delete_inner(&self, key: &str) -> Result<(), UpstreamError> {
        let p = path(key)?;
        match self.block_on(self.store.delete(&p)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(e)),
        }
    }
}

//! Upstream buckets: the `[[upstream_bucket]]` tables of the configuration,
//! the `bucket create --upstream` flags, credential resolution, and the
//! clients attached to the namespace at start-up.
//!
//! Secrets never reach a log or an error message: they live in [`Secret`]
//! (whose `Debug` is redacted) until handed to the client.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use namespace::{CredentialSource, Namespace, UpstreamBinding};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use upstream_s3::{Credentials, S3Upstream, Tuning};

/// Threads fetching ahead of sequential readers of upstream buckets.
pub const READAHEAD_THREADS: usize = 4;
/// Revalidation time when none is configured: listings and ETags are
/// trusted this long before the upstream is asked again.
pub const DEFAULT_REVALIDATE_SECS: u64 = 30;
/// Quiet time of an NFS-written file before its upload, when none is
/// configured.
pub const DEFAULT_UPLOAD_DELAY_SECS: u64 = 5;
/// Longest quiet time accepted (one hour).
const UPLOAD_DELAY_SECS_MAX: u64 = 3600;
/// Longest revalidation time accepted (one day).
const REVALIDATE_SECS_MAX: u64 = 86_400;
/// Largest credentials file read.
const CREDENTIALS_FILE_BYTES_MAX: u64 = 64 << 10;

/// A secret string: `Debug` prints nothing of it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One `[[upstream_bucket]]` table.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct UpstreamBucketEntry {
    /// The local bucket (created at start-up when missing).
    pub name: String,
    /// Endpoint URL of the upstream store.
    pub endpoint: String,
    /// Region for signatures.
    #[serde(default = "default_region")]
    pub region: String,
    /// The upstream bucket.
    pub bucket: String,
    /// Key prefix inside it (empty or ending in '/').
    #[serde(default)]
    pub prefix: String,
    /// Virtual-host addressing instead of path style.
    #[serde(default)]
    pub virtual_host: bool,
    /// Extra CA certificates (PEM) for a private TLS upstream.
    pub ca_file: Option<String>,
    /// Access key id (with `secret_access_key`); else `credentials_file`,
    /// else `anonymous`, else the environment.
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// File of `access_key_id = ...` and `secret_access_key = ...` lines.
    pub credentials_file: Option<String>,
    /// Unsigned requests (a public bucket).
    #[serde(default)]
    pub anonymous: bool,
    /// Seconds listings and ETags are trusted; 0 asks on every use.
    pub revalidate_secs: Option<u64>,
    /// Seconds a file written over NFS stays unchanged before its upload.
    pub upload_delay_secs: Option<u64>,
    /// Answer S3 writes before their upload (write-back).
    #[serde(default)]
    pub write_back: bool,
    /// Owner of the local bucket when it is created.
    #[serde(default)]
    pub uid: u32,
    /// Group of the local bucket when it is created.
    #[serde(default)]
    pub gid: u32,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl UpstreamBucketEntry {
    /// The binding this table asks for (checked).
    pub fn binding(&self) -> anyhow::Result<UpstreamBinding> {
        let key = format!("upstream_bucket {:?}", self.name);
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(_), Some(_)) => CredentialSource::Config,
            (None, None) => match (&self.credentials_file, self.anonymous) {
                (Some(f), false) => CredentialSource::File(f.clone()),
                (None, true) => CredentialSource::Anonymous,
                (None, false) => CredentialSource::Env,
                (Some(_), true) => bail!("{key}: credentials_file and anonymous exclude each other"),
            },
            _ => bail!("{key}: give both access_key_id and secret_access_key, or neither"),
        };
        let b = UpstreamBinding {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            virtual_host: self.virtual_host,
            ca_file: self.ca_file.clone(),
            credentials,
            revalidate_secs: self.revalidate_secs.unwrap_or(DEFAULT_REVALIDATE_SECS),
            upload_delay_secs: self.upload_delay_secs.unwrap_or(DEFAULT_UPLOAD_DELAY_SECS),
            write_back: self.write_back,
        };
        check_binding(&b).with_context(|| key.clone())?;
        Ok(b)
    }
}

/// Checks what the namespace does not: the endpoint's scheme, the limits.
pub fn check_binding(b: &UpstreamBinding) -> anyhow::Result<()> {
    if !(b.endpoint.starts_with("http://") || b.endpoint.starts_with("https://")) {
        bail!("endpoint {:?} must start with http:// or https://", b.endpoint);
    }
    if b.revalidate_secs > REVALIDATE_SECS_MAX {
        bail!("revalidate_secs is at most {REVALIDATE_SECS_MAX}");
    }
    if b.upload_delay_secs > UPLOAD_DELAY_SECS_MAX {
        bail!("upload_delay_secs is at most {UPLOAD_DELAY_SECS_MAX}");
    }
    b.validate().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Parses `s3://BUCKET[/PREFIX]` into the upstream bucket and prefix
/// (given a trailing '/').
pub fn parse_s3_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("s3://") else { bail!("{url:?} is not an s3://BUCKET[/PREFIX] URL") };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("{url:?} names no bucket");
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
    Ok((bucket.to_string(), prefix))
}

/// Parses `env`, `anonymous` or `file:PATH`.
pub fn parse_credential_source(s: &str) -> anyhow::Result<CredentialSource> {
    match s {
        "env" => Ok(CredentialSource::Env),
        "anonymous" => Ok(CredentialSource::Anonymous),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(CredentialSource::File(p.to_string())),
            _ => bail!("credentials {s:?}: use env, anonymous or file:PATH"),
        },
    }
}

/// Reads a credentials file: `access_key_id`/`secret_access_key` lines
/// (the `aws_`-prefixed names of `~/.aws/credentials` too; `[section]`
/// lines and `#` comments are skipped).
fn read_credentials_file(path: &str) -> anyhow::Result<Credentials> {
    let meta = std::fs::metadata(path).with_context(|| format!("credentials file {path}"))?;
    if meta.len() > CREDENTIALS_FILE_BYTES_MAX {
        bail!("credentials file {path} is over {CREDENTIALS_FILE_BYTES_MAX} bytes");
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading credentials file {path}"))?;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        match k.trim().trim_start_matches("aws_") {
            "access_key_id" => id = Some(v.trim().to_string()),
            "secret_access_key" => secret = Some(v.trim().to_string()),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials { access_key_id, secret_access_key }),
        _ => bail!("credentials file {path} lacks access_key_id or secret_access_key"),
    }
}

/// The credentials a binding names; `config` is the bucket's table, when
/// the configuration has one.
fn resolve(b: &UpstreamBinding, config: Option<&UpstreamBucketEntry>) -> anyhow::Result<Option<Credentials>> {
    match &b.credentials {
        CredentialSource::Anonymous => Ok(None),
        CredentialSource::File(p) => read_credentials_file(p).map(Some),
        CredentialSource::Env => {
            let id = std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID is not set")?;
            let secret = std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY is not set")?;
            Ok(Some(Credentials { access_key_id: id, secret_access_key: secret }))
        }
        CredentialSource::Config => match config.and_then(|c| c.access_key_id.clone().zip(c.secret_access_key.clone()))
        {
            Some((id, secret)) => Ok(Some(Credentials { access_key_id: id.0, secret_access_key: secret.0 })),
            None => bail!("the binding takes its keys from the configuration, which has no [[upstream_bucket]] for it"),
        },
    }
}

/// Builds and attaches the client of bound bucket `ino`.
pub fn attach(
    ns: &Namespace,
    ino: u64,
    b: &UpstreamBinding,
    config: Option<&UpstreamBucketEntry>,
    tuning: Tuning,
) -> anyhow::Result<()> {
    let creds = resolve(b, config)?;
    let client = S3Upstream::with_tuning(b, creds, tuning).map_err(|e| anyhow::anyhow!(e))?;
    ns.attach_upstream(ino, Arc::new(client)).context("attaching the upstream client")
}

/// At start-up: creates and binds the configured upstream buckets, then
/// attaches a client to every bound bucket of the data directory. Returns
/// one line per bound bucket.
pub fn setup(ns: &Namespace, entries: &[UpstreamBucketEntry], tuning: Tuning) -> anyhow::Result<Vec<String>> {
    for e in entries {
        let binding = e.binding()?;
        if ns.bucket(e.name.as_bytes()).is_err() {
            let owner = namespace::Caller { uid: e.uid, gid: e.gid, groups: Vec::new() };
            ns.create_bucket(&owner, e.name.as_bytes())
                .map_err(|err| anyhow::anyhow!("upstream_bucket {:?}: creating the bucket: {err}", e.name))?;
        }
        ns.bind_upstream(e.name.as_bytes(), &binding).map_err(|err| match err {
            namespace::NsError::NotEmpty => anyhow::anyhow!(
                "upstream_bucket {:?}: the local bucket already holds data; bind an empty bucket",
                e.name
            ),
            other => anyhow::anyhow!("upstream_bucket {:?}: {other}", e.name),
        })?;
    }
    let mut lines = Vec::new();
    for (name, ino, b) in ns.upstream_bindings().context("reading upstream bindings")? {
        let name = String::from_utf8_lossy(&name).to_string();
        let config = entries.iter().find(|e| e.name == name);
        attach(ns, ino, &b, config, tuning).with_context(|| format!("upstream bucket {name:?}"))?;
        lines.push(describe(&name, &b));
    }
    Ok(lines)
}

/// One line naming a binding (never its credentials).
pub fn describe(name: &str, b: &UpstreamBinding) -> String {
    let how = match &b.credentials {
        CredentialSource::Anonymous => "anonymous".to_string(),
        CredentialSource::Env => "keys from the environment".to_string(),
        CredentialSource::File(p) => format!("keys from {p}"),
        CredentialSource::Config => "keys from the configuration".to_string(),
    };
    format!(
        "bucket {name} -> s3://{}/{} at {} ({}, revalidate {}s, {})",
        b.bucket,
        b.prefix,
        b.endpoint,
        how,
        b.revalidate_secs,
        if b.write_back { "write-back" } else { "write-through" }
    )
}

/// How often queued uploads are looked at.
const UPLOAD_PASS_EVERY: Duration = Duration::from_secs(1);

/// Runs due uploads of bound buckets (NFS-written files once quiet, S3
/// writes whose write-through failed, renames) until shutdown, and
/// publishes the queue's gauges.
pub async fn upload_loop(ns: Arc<Namespace>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(UPLOAD_PASS_EVERY) => {}
        }
        let ns_stats = ns.clone();
        let ns = ns.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<_, namespace::NsError> {
            ns.reclaim_evicted()?;
            let report = ns.run_uploads()?;
            Ok((report, ns.upload_queue_status()?))
        })
        .await;
        match res {
            Ok(Ok((report, status))) => {
                metrics::counter!("gateway_upstream_uploads_total").increment(report.uploaded);
                metrics::counter!("gateway_upstream_upload_bytes_total").increment(report.bytes);
                metrics::counter!("gateway_upstream_upload_failures_total").increment(report.failed);
                metrics::gauge!("gateway_upstream_queue_items").set(status.items as f64);
                metrics::gauge!("gateway_upstream_dirty_bytes").set(status.dirty_bytes as f64);
                metrics::gauge!("gateway_upstream_poisoned_items").set(status.poisoned.len() as f64);
                metrics::counter!("gateway_upstream_conflicts_total").absolute(status.conflicts);
                let c = ns_stats.cache_stats();
                metrics::gauge!("gateway_cache_used_bytes").set(c.used_bytes as f64);
                metrics::gauge!("gateway_cache_capacity_bytes").set(c.capacity_bytes as f64);
                metrics::counter!("gateway_cache_hit_bytes_total").absolute(c.hit_bytes);
                metrics::counter!("gateway_cache_miss_bytes_total").absolute(c.miss_bytes);
                metrics::counter!("gateway_cache_evictions_total").absolute(c.evictions);
                if report.uploaded > 0 || report.failed > 0 {
                    tracing::info!(?report, "upload pass");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "upload pass failed"),
            Err(e) => tracing::warn!(error = %e, "upload task failed"),
        }
    }
}

/// `gateway cache status`: the upload queue and the bindings.
pub fn status_lines(ns: &Namespace) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for (name, _, b) in ns.upstream_bindings().map_err(|e| format!("reading bindings: {e}"))? {
        lines.push(describe(&String::from_utf8_lossy(&name), &b));
    }
    let c = ns.cache_stats();
    let ratio = if c.hit_bytes + c.miss_bytes == 0 {
        "n/a".to_string()
    } else {
        format!("{:.1}%", 100.0 * c.hit_bytes as f64 / (c.hit_bytes + c.miss_bytes) as f64)
    };
    let capacity = if c.capacity_bytes == 0 { "unbounded".to_string() } else { format!("{} bytes", c.capacity_bytes) };
    lines.push(format!(
        "cache: capacity {capacity}, used {} bytes (clean, in {} window(s)), hit ratio {ratio} ({} hit / {} miss bytes since start), {} eviction(s)",
        c.used_bytes, c.windows, c.hit_bytes, c.miss_bytes, c.evictions
    ));
    let st = ns.upload_queue_status().map_err(|e| format!("reading the upload queue: {e}"))?;
    lines.push(format!(
        "upload queue: {} item(s), {} dirty byte(s), {} failing, {} poisoned; {} conflict(s) kept since start",
        st.items,
        st.dirty_bytes,
        st.failing,
        st.poisoned.len(),
        st.conflicts
    ));
    for (key, why) in st.poisoned {
        lines.push(format!("poisoned: {key}: {why}"));
    }
    Ok(lines)
}

/// `gateway cache flush [BUCKET[/PREFIX]]`: uploads everything queued
/// there now; fails if anything is still not upstream.
pub fn flush(ns: &Namespace, target: Option<&str>) -> Result<String, String> {
    let (bucket, prefix) = match target {
        None => (None, ""),
        Some(t) => {
            let (b, p) = t.split_once('/').unwrap_or((t, ""));
            let ino = ns.bucket(b.as_bytes()).map_err(|e| format!("bucket {b:?}: {e}"))?.ino;
            (Some(ino), p)
        }
    };
    let r = ns.flush_uploads(bucket, prefix.as_bytes()).map_err(|e| format!("flush: {e}"))?;
    Ok(format!("flushed: {} file(s) uploaded ({} bytes), {} dropped", r.uploaded, r.bytes, r.dropped))
}

/// Splits `BUCKET[/PREFIX]`.
fn split_target(target: &str) -> (&str, &str) {
    target.split_once('/').unwrap_or((target, ""))
}

/// `gateway cache warm BUCKET[/PREFIX]`: one summary line.
pub fn warm(
    ns: &Namespace,
    target: &str,
    parallel: usize,
    progress: &(dyn Fn(namespace::WarmProgress) + Sync),
) -> Result<String, String> {
    let (bucket, prefix) = split_target(target);
    let r = ns
        .warm(bucket.as_bytes(), prefix.as_bytes(), parallel, progress)
        .map_err(|e| format!("warming {target}: {e}"))?;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let mut line = format!(
        "warmed {target}: {} file(s), {} bytes fetched in {:.1} s ({:.1} MiB/s), {} bytes were cached already",
        r.files,
        r.fetched_bytes,
        secs,
        r.fetched_bytes as f64 / secs / (1 << 20) as f64,
        r.cached_bytes
    );
    if r.failed > 0 {
        return Err(format!(
            "{line}; {} window(s) failed (first: {}); run it again to resume",
            r.failed,
            r.first_error.unwrap_or_default()
        ));
    }
    line.push_str("; complete");
    Ok(line)
}

/// `gateway cache evict BUCKET[/PREFIX]`: one summary line.
pub fn evict(ns: &Namespace, target: &str) -> Result<String, String> {
    let (bucket, prefix) = split_target(target);
    let (files, windows) =
        ns.evict_prefix(bucket.as_bytes(), prefix.as_bytes()).map_err(|e| format!("evicting {target}: {e}"))?;
    Ok(format!("evicted {target}: {windows} cached window(s) of {files} file(s)"))
}

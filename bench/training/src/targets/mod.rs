//! Where the dataset lives: a local directory (or a kernel NFS mount), an
//! S3 bucket, or an NFSv3 export, behind one [`Target`] trait.
//!
//! API boundary: the runner sees only [`Target`]; each module here is the
//! only one that knows its protocol.
//!
//! The trait is async with boxed futures, for three reasons. The S3 and NFS
//! clients (hyper, `nfs3_client`) are async, and the benchmark's
//! parallelism is many requests in flight on a few threads, as a data
//! loader with many workers makes them; a blocking trait would need a
//! thread per outstanding request. Boxed futures (rather than `async fn` in
//! the trait) keep the trait object-safe, so one run holds several targets
//! of different kinds as `Arc<dyn Target>` and runs the same pattern on
//! each. The file target does its blocking I/O on tokio's blocking pool,
//! which is what a multi-process data loader does with its workers.

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::pattern;
use crate::{BenchError, Result};

pub mod file;
pub mod nfs;
pub mod resolve;
pub mod s3;

/// A boxed, sendable future of a result.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The content of a file to write. A pattern's every byte derives from
/// its key and offset, so a target generates the data part by part and
/// never holds a whole large file.
#[derive(Clone, Debug)]
pub enum Content {
    /// Pattern bytes ([`pattern::fill`]).
    Pattern {
        /// The content key ([`pattern::content_key`]).
        key: u64,
        /// Size of the file.
        bytes: u64,
    },
    /// Literal bytes (the dataset manifest).
    Literal(Bytes),
}

impl Content {
    /// Size of the file.
    pub fn len(&self) -> u64 {
        match self {
            Content::Pattern { bytes, .. } => *bytes,
            Content::Literal(b) => b.len() as u64,
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `offset..offset+len` of the file.
    pub fn part(&self, offset: u64, len: u64) -> Bytes {
        assert!(offset + len <= self.len(), "part {offset}+{len} past {}", self.len());
        match self {
            Content::Pattern { key, .. } => Bytes::from(pattern::bytes_at(*key, offset, len as usize)),
            Content::Literal(b) => b.slice(offset as usize..(offset + len) as usize),
        }
    }
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name inside the listed directory.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// A storage target. Paths are relative to the target's root, `/`
/// separated, with no `.`/`..` components (the benchmark makes them).
pub trait Target: Send + Sync {
    /// The URL it was opened from, for reports.
    fn url(&self) -> &str;

    /// Makes the root usable (creates the directory or bucket if missing).
    fn prepare_root(&self) -> BoxFuture<'_, ()>;

    /// Creates or replaces `path` with `content`, in parts of
    /// [`crate::limits::PART_BYTES`]. With `sync`, returns only once the
    /// data is durable (fsync, NFS COMMIT; S3 PUT is durable when acknowledged).
    fn write<'a>(&'a self, path: &'a str, content: Content, sync: bool) -> BoxFuture<'a, ()>;

    /// Reads `len` bytes at `offset`; fewer only at the end of the file.
    fn read<'a>(&'a self, path: &'a str, offset: u64, len: u64) -> BoxFuture<'a, Bytes>;

    /// Lists the files directly under directory `dir` with their sizes.
    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Vec<Entry>>;

    /// The size of `path` (a stat, HEAD or LOOKUP+attributes).
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, u64>;

    /// Deletes `path`; absent is not an error.
    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, ()>;

    /// Drops what this client side caches of `path`, so the next read
    /// comes from the storage (MLPerf drops caches between checkpoint
    /// write and restore). Answers whether it could: a remote server's
    /// caches are out of a client's reach, so only `file://` can.
    fn drop_cache<'a>(&'a self, path: &'a str) -> BoxFuture<'a, bool> {
        let _ = path;
        Box::pin(async { Ok(false) })
    }
}

/// How S3 requests name the bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Addressing {
    /// `https://host/bucket/key`.
    #[default]
    Path,
    /// `https://bucket.host/key` (AWS's default, Mountpoint's, the SDKs').
    Virtual,
}

/// Options that only some targets use.
#[derive(Clone, Debug)]
pub struct TargetOptions {
    /// S3 endpoint URL (`http[s]://host[:port]`) of targets without their own.
    pub endpoint: Option<String>,
    /// S3 addressing of targets that do not name their own.
    pub s3_addressing: Addressing,
    /// PEM certificates trusted for S3 over TLS, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Host names the S3 client resolves to fixed addresses.
    pub resolve: Vec<(String, IpAddr)>,
    /// S3 access key.
    pub access_key: Option<String>,
    /// S3 secret key.
    pub secret_key: Option<String>,
    /// S3 region for signing.
    pub region: String,
    /// S3 connections (and requests in flight) at most.
    pub s3_connections: u32,
    /// ListObjectsV2 page size (max-keys).
    pub s3_list_keys: u32,
    /// NFS connections (each carries one call at a time).
    pub nfs_connections: u32,
    /// uid of the NFS AUTH_SYS credential.
    pub nfs_uid: u32,
    /// gid of the NFS AUTH_SYS credential.
    pub nfs_gid: u32,
}

/// A parsed target URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetUrl {
    /// `file:///PATH`.
    File(PathBuf),
    /// `s3://BUCKET[/PREFIX][?endpoint=URL][&addressing=path|virtual]`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix without leading or trailing `/` (may be empty).
        prefix: String,
        /// This target's endpoint; `None`: `--endpoint`.
        endpoint: Option<String>,
        /// This target's addressing; `None`: `--s3-addressing`.
        addressing: Option<Addressing>,
    },
    /// `nfs://HOST[:PORT]/EXPORT[/PATH]`; the first path component is the
    /// export (the gateway exports buckets as `/BUCKET`).
    Nfs {
        /// Host name or address.
        host: String,
        /// Port for both MOUNT and NFS; `None` asks the portmapper.
        port: Option<u16>,
        /// The export, `/NAME`.
        export: String,
        /// Path inside the export (may be empty).
        path: String,
    },
}

fn clean_components(url: &str, p: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = p.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
    if parts.iter().any(|c| c == "." || c == "..") {
        return Err(BenchError::BadTarget { url: url.into(), why: "`.` and `..` are not allowed".into() });
    }
    if parts.len() > crate::limits::PATH_COMPONENTS_MAX {
        return Err(BenchError::BadTarget { url: url.into(), why: "path too deep".into() });
    }
    Ok(parts)
}

impl TargetUrl {
    /// Parses a target URL.
    pub fn parse(url: &str) -> Result<TargetUrl> {
        let bad = |why: &str| BenchError::BadTarget { url: url.into(), why: why.into() };
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// needs an absolute path (file:///tmp/x)"));
            }
            clean_components(url, rest)?;
            return Ok(TargetUrl::File(PathBuf::from(rest)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            let prefix = clean_components(url, prefix)?.join("/");
            let (mut endpoint, mut addressing) = (None, None);
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("endpoint", v)) if !v.is_empty() => endpoint = Some(v.to_string()),
                    Some(("addressing", "path")) => addressing = Some(Addressing::Path),
                    Some(("addressing", "virtual")) => addressing = Some(Addressing::Virtual),
                    _ => return Err(bad("an s3:// URL takes ?endpoint=URL and &addressing=path|virtual")),
                }
            }
            return Ok(TargetUrl::S3 { bucket: bucket.into(), prefix, endpoint, addressing });
        }
        if let Some(rest) = url.strip_prefix("nfs://") {
            let (hostport, path) = rest.split_once('/').ok_or_else(|| bad("no export path"))?;
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad("bad port"))?)),
                None => (hostport, None),
            };
            if host.is_empty() {
                return Err(bad("no host"));
            }
            let mut parts = clean_components(url, path)?;
            if parts.is_empty() {
                return Err(bad("no export path"));
            }
            let export = format!("/{}", parts.remove(0));
            return Ok(TargetUrl::Nfs { host: host.into(), port, export, path: parts.join("/") });
        }
        Err(bad("expected file:///PATH, s3://BUCKET/PREFIX or nfs://HOST[:PORT]/EXPORT/PATH"))
    }
}

/// Opens a target.
pub async fn open(url: &str, opts: &TargetOptions) -> Result<Arc<dyn Target>> {
    Ok(match TargetUrl::parse(url)? {
        TargetUrl::File(root) => Arc::new(file::FileTarget::new(url, root)),
        TargetUrl::S3 { bucket, prefix, endpoint, addressing } => {
            Arc::new(s3::S3Target::new(url, bucket, prefix, endpoint, addressing, opts)?)
        }
        TargetUrl::Nfs { host, port, export, path } => {
            Arc::new(nfs::NfsTarget::connect(url, &host, port, &export, &path, opts).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        assert_eq!(TargetUrl::parse("file:///tmp/x/").unwrap(), TargetUrl::File("/tmp/x/".into()));
        assert_eq!(
            TargetUrl::parse("s3://b/p/q/").unwrap(),
            TargetUrl::S3 { bucket: "b".into(), prefix: "p/q".into(), endpoint: None, addressing: None }
        );
        assert_eq!(
            TargetUrl::parse("s3://b").unwrap(),
            TargetUrl::S3 { bucket: "b".into(), prefix: "".into(), endpoint: None, addressing: None }
        );
        assert_eq!(
            TargetUrl::parse("s3://b/p?endpoint=https://h:9000&addressing=virtual").unwrap(),
            TargetUrl::S3 {
                bucket: "b".into(),
                prefix: "p".into(),
                endpoint: Some("https://h:9000".into()),
                addressing: Some(Addressing::Virtual)
            }
        );
        assert_eq!(
            TargetUrl::parse("nfs://127.0.0.1:2049/data/run1").unwrap(),
            TargetUrl::Nfs { host: "127.0.0.1".into(), port: Some(2049), export: "/data".into(), path: "run1".into() }
        );
        assert_eq!(
            TargetUrl::parse("nfs://srv/data").unwrap(),
            TargetUrl::Nfs { host: "srv".into(), port: None, export: "/data".into(), path: "".into() }
        );
        for bad in [
            "file://rel",
            "s3://",
            "nfs://h",
            "nfs://h:x/e",
            "nfs://h/",
            "http://x",
            "s3://b/../x",
            "s3://b?x=1",
            "s3://b?addressing=odd",
        ] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

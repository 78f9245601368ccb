//! Upstream buckets: a bucket bound to a bucket (and prefix) of another S3
//! object store, which this namespace then caches on local disk.
//!
//! The namespace knows an upstream only through the [`Upstream`] trait;
//! the client that speaks S3 lives in its own crate and the gateway wires
//! it in with [`Namespace::attach_upstream`]. The file model is unchanged:
//! an upstream object is a file whose extents are *remote*
//! ([`crate::record::REMOTE_CHUNK`]) until a read fetches them
//! (`fetch.rs`); directories are filled from upstream listings on first
//! use and listed again after the binding's revalidation time
//! (`refresh.rs`); S3 writes and deletes reach the upstream before they
//! are answered (`sync.rs`).
//!
//! Invariant: a remote extent at file offset `o` stands for byte `o` of
//! the upstream object its inode's `remote` record names, at the ETag that
//! record holds; every fetch is conditional on that ETag, so a changed
//! upstream object is never mixed into an older one.

mod cache;
mod fetch;
mod queue;
mod readahead;
mod refresh;
mod sync;
mod warm;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::record::{self, Remote, RemoteFile};
use crate::tree::Tree;
use crate::{keys, Namespace, NsError, NsResult};

pub(crate) use cache::CachePolicy;
pub use cache::CacheStats;
pub(crate) use fetch::Fetches;
pub use queue::{QueueStatus, UploadReport};
pub use warm::{WarmProgress, WarmReport, WARM_PARALLEL_MAX};

/// What an upstream client failed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// The key does not exist upstream.
    NotFound,
    /// A condition (the ETag a read started from) no longer holds.
    Changed,
    /// The upstream cannot be reached or answered 5xx/timeout: retryable.
    Unavailable(String),
    /// The upstream refused the request (credentials, permissions, a bad
    /// binding): retrying will not help.
    Refused(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::NotFound => write!(f, "not found upstream"),
            UpstreamError::Changed => write!(f, "upstream object changed"),
            UpstreamError::Unavailable(m) => write!(f, "upstream unavailable: {m}"),
            UpstreamError::Refused(m) => write!(f, "upstream refused: {m}"),
        }
    }
}

/// One object of an upstream listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Last path component (the listing's prefix removed).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag as the upstream sent it.
    pub etag: String,
    /// Last modification time.
    pub mtime: Nanos,
}

/// One level of an upstream "directory" (a listing with delimiter '/').
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamListing {
    /// Objects directly under the prefix.
    pub objects: Vec<RemoteObject>,
    /// Names of the common prefixes (sub-"directories"), without '/'.
    pub dirs: Vec<String>,
}

/// Most bytes [`Upstream::get_range`] reserves before the body arrives.
const GET_RANGE_PREALLOC_BYTES_MAX: u64 = 64 << 20;

/// Bytes to upload: read in ranges, possibly from several threads.
pub trait UploadBody: Sync {
    /// Total size.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; returns the bytes read (short only at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> NsResult<usize>;
}

/// A client of one upstream bucket (and prefix: keys here are full keys
/// in the upstream bucket). Calls block; implementations bound their own
/// time and retries and answer [`UpstreamError::Unavailable`] when spent.
pub trait Upstream: Send + Sync {
    /// The objects and sub-prefixes directly under `prefix` (which is empty
    /// or ends in '/'), every page of it, at most `max_entries`.
    fn list_dir(&self, prefix: &str, max_entries: usize) -> Result<UpstreamListing, UpstreamError>;
    /// Bytes `range` of `key`, only if its ETag is still `etag`, handed to
    /// `sink` piece by piece as they arrive (so a reader can be served
    /// before the whole range is here). On an error, the pieces already
    /// handed over are good: the caller may ask again for the rest.
    fn get_range_into(
        &self,
        key: &str,
        range: Range<u64>,
        etag: &str,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), UpstreamError>;
    /// Bytes `range` of `key` in one buffer, only if its ETag is still `etag`.
    fn get_range(&self, key: &str, range: Range<u64>, etag: &str) -> Result<Vec<u8>, UpstreamError> {
        let mut out = Vec::with_capacity((range.end - range.start).min(GET_RANGE_PREALLOC_BYTES_MAX) as usize);
        self.get_range_into(key, range, etag, &mut |piece| out.extend_from_slice(piece))?;
        Ok(out)
    }
    /// Stores `body` at `key` (multipart when large); returns the new ETag.
    /// With `if_match`, only while the object there still has that ETag
    /// (else [`UpstreamError::Changed`]): how a local change based on that
    /// version is kept from overwriting a newer one.
    fn put(&self, key: &str, body: &dyn UploadBody, if_match: Option<&str>) -> Result<String, UpstreamError>;
    /// Deletes `key` (deleting a missing key succeeds).
    fn delete(&self, key: &str) -> Result<(), UpstreamError>;
    /// Server-side copy of `from` to `to`; returns the copy's ETag.
    fn copy(&self, from: &str, to: &str) -> Result<String, UpstreamError>;
}

/// Where the upstream client finds its credentials. The record never holds
/// a secret: the gateway resolves this at start-up.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// Unsigned requests.
    Anonymous,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` of the gateway process.
    Env,
    /// A file of `access_key_id = ...` / `secret_access_key = ...` lines.
    File(String),
    /// The gateway configuration's entry for this bucket.
    Config,
}

/// A bucket's binding to an upstream: `upstreams[bucket ino]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpstreamBinding {
    /// Endpoint URL (`http://host:port` or `https://...`).
    pub endpoint: String,
    /// Region used in signatures.
    pub region: String,
    /// Upstream bucket.
    pub bucket: String,
    /// Key prefix inside the upstream bucket: empty or ending in '/'.
    pub prefix: String,
    /// Virtual-host addressing (`bucket.host`) instead of path style.
    pub virtual_host: bool,
    /// PEM file of extra CA certificates (private TLS).
    pub ca_file: Option<String>,
    /// Where the credentials come from.
    pub credentials: CredentialSource,
    /// Seconds a listing (and so a file's ETag) is trusted before a lookup,
    /// listing or GET asks the upstream again; 0 asks every time.
    pub revalidate_secs: u64,
    /// Seconds a file written over NFS must stay unchanged before it is
    /// uploaded (NFS has no close: quiet time stands for it).
    pub upload_delay_secs: u64,
    /// Write-back: S3 writes are answered once durable here and uploaded
    /// in the background (else write-through: after the upstream's answer).
    pub write_back: bool,
}

impl UpstreamBinding {
    /// Checks the fields a namespace relies on.
    pub fn validate(&self) -> NsResult<()> {
        if !(self.prefix.is_empty() || self.prefix.ends_with('/')) || self.prefix.starts_with('/') {
            return Err(NsError::InvalidArgument(format!(
                "upstream prefix {:?} must be empty or end in '/' (and not start with it)",
                self.prefix
            )));
        }
        if self.bucket.is_empty() || self.endpoint.is_empty() {
            return Err(NsError::InvalidArgument("an upstream needs an endpoint and a bucket".into()));
        }
        Ok(())
    }
}

/// A bound bucket with its client (`None` until the gateway attaches one).
pub(crate) struct Attached {
    pub(crate) binding: UpstreamBinding,
    client: Option<Arc<dyn Upstream>>,
}

impl Attached {
    /// The client, or `UpstreamUnavailable` when none is attached.
    pub(crate) fn client(&self) -> NsResult<&dyn Upstream> {
        self.client
            .as_deref()
            .ok_or_else(|| NsError::UpstreamUnavailable("the bucket's upstream client is not attached".into()))
    }
}

/// The namespace's upstream state: bindings and clients by bucket,
/// listing freshness, in-flight fetches. Empty (and free) when no bucket
/// is bound.
#[derive(Default)]
pub(crate) struct Upstreams {
    /// Every bound bucket (loaded at open), attached or not.
    attached: RwLock<HashMap<u64, Arc<Attached>>>,
    /// `attached` is not empty.
    bound_any: std::sync::atomic::AtomicBool,
    /// Evictions queued chunks for GC that no pass has freed yet.
    pub(crate) gc_wanted: std::sync::atomic::AtomicBool,
    /// Directory inode -> until when its last upstream listing holds.
    fresh: Mutex<HashMap<u64, Nanos>>,
    /// One listing of a directory at a time (striped by inode).
    refresh_locks: [Mutex<()>; 32],
    pub(crate) fetches: Fetches,
    /// Which cached windows stay (`cache.rs`).
    pub(crate) cache: CachePolicy,
    /// Uploads running now (`queue.rs`).
    pub(crate) uploads: queue::InFlight,
    /// Local changes kept under a conflict name since start.
    pub(crate) conflicts: std::sync::atomic::AtomicU64,
    /// Per file: the window a sequential reader reads next, and its streak.
    pub(crate) sequential: Mutex<HashMap<u64, (u64, u32)>>,
    /// Hands readahead fetches to the readahead threads (when started).
    pub(crate) readahead: Mutex<Option<std::sync::mpsc::SyncSender<(u64, u64)>>>,
    /// Estimate of the queued files' bytes: recounted by every queue
    /// status, raised by every write that dirties a file in between.
    pub(crate) dirty_bytes: std::sync::atomic::AtomicU64,
}

impl Upstreams {
    /// Empty, with a cache of `capacity_bytes` (0: unbounded).
    pub(crate) fn with_capacity(capacity_bytes: u64) -> Self {
        let u = Upstreams::default();
        u.cache.capacity_bytes.store(capacity_bytes, std::sync::atomic::Ordering::Relaxed);
        u
    }

    /// Whether any bucket is bound: asked on every read, write and lookup,
    /// so it is one atomic load (bindings are only ever added).
    pub(crate) fn any(&self) -> bool {
        self.bound_any.load(std::sync::atomic::Ordering::Acquire)
    }

    fn get(&self, bucket: u64) -> Option<Arc<Attached>> {
        self.attached.read().unwrap_or_else(|p| p.into_inner()).get(&bucket).cloned()
    }

    /// The bound bucket `bucket` (a `remote` record named it).
    pub(crate) fn attached(&self, bucket: u64) -> NsResult<Arc<Attached>> {
        self.get(bucket).ok_or_else(|| NsError::Corrupt(format!("remote record names unbound bucket {bucket}")))
    }

    fn set(&self, bucket: u64, att: Attached) {
        self.attached.write().unwrap_or_else(|p| p.into_inner()).insert(bucket, Arc::new(att));
        self.bound_any.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Asks the readahead threads for window `w` of `ino` (dropped when
    /// none run or they are busy).
    pub(crate) fn prefetch(&self, ino: u64, w: u64) {
        if let Some(tx) = self.readahead.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.try_send((ino, w));
        }
    }

    /// Forgets every listing time: the next use of each directory lists it.
    pub(crate) fn forget_listings(&self) {
        self.fresh.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// A namespace-side error for an upstream failure.
pub(crate) fn ns_error(e: UpstreamError) -> NsError {
    match e {
        UpstreamError::Unavailable(m) => NsError::UpstreamUnavailable(m),
        UpstreamError::Changed | UpstreamError::NotFound => {
            NsError::UpstreamUnavailable("the object changed upstream; retry".into())
        }
        UpstreamError::Refused(m) => NsError::Internal(format!("upstream refused: {m}")),
    }
}

/// The full upstream key of `rel` (a key relative to the binding).
pub(crate) fn full_key(b: &UpstreamBinding, rel: &[u8]) -> NsResult<String> {
    let rel = std::str::from_utf8(rel)
        .map_err(|_| NsError::InvalidName("names in an upstream bucket must be UTF-8".into()))?;
    Ok(format!("{}{rel}", b.prefix))
}

impl Namespace {
    /// Binds the empty bucket `name` to an upstream: from now on its
    /// contents are the upstream's. The client is attached separately
    /// ([`Namespace::attach_upstream`]); until then the bucket reads as
    /// unavailable.
    pub fn bind_upstream(&self, name: &[u8], binding: &UpstreamBinding) -> NsResult<u64> {
        binding.validate()?;
        let b = self.bucket(name)?;
        self.txn(|tx| {
            let d = tx.dir(b.ino)?;
            if let Some(old) = tx.get::<UpstreamBinding>(Tree::Upstreams, &keys::id(b.ino))? {
                if old == *binding {
                    return Ok(());
                }
            } else if d.entries != 0 {
                return Err(NsError::NotEmpty);
            }
            tx.put(Tree::Upstreams, &keys::id(b.ino), binding)?;
            tx.put(Tree::Remote, &keys::id(b.ino), &Remote::Dir { bucket: b.ino, key: Vec::new() })
        })?;
        self.commit_barrier()?;
        let client = self.upstream.get(b.ino).and_then(|a| a.client.clone());
        self.upstream.set(b.ino, Attached { binding: binding.clone(), client });
        Ok(b.ino)
    }

    /// Every bound bucket: name, inode, binding.
    pub fn upstream_bindings(&self) -> NsResult<Vec<(Vec<u8>, u64, UpstreamBinding)>> {
        let mut out = Vec::new();
        for (name, inode) in self.list_buckets()? {
            if let Some(v) = self.meta.get(Tree::Upstreams, &keys::id(inode.ino))? {
                out.push((name, inode.ino, record::decode("upstream binding", &v)?));
            }
        }
        Ok(out)
    }

    /// Attaches the client of bound bucket `bucket` (an inode from
    /// [`Namespace::upstream_bindings`]).
    pub fn attach_upstream(&self, bucket: u64, client: Arc<dyn Upstream>) -> NsResult<()> {
        let v = self.meta.get(Tree::Upstreams, &keys::id(bucket))?.ok_or(NsError::NotFound)?;
        let binding: UpstreamBinding = record::decode("upstream binding", &v)?;
        self.upstream.set(bucket, Attached { binding, client: Some(client) });
        Ok(())
    }

    /// Loads every binding at open (clients come later).
    pub(crate) fn load_bindings(&self) -> NsResult<()> {
        crate::full_scan::scan_all(self, Tree::Upstreams, |k, v| {
            let bucket = u64::from_be_bytes(k.try_into().map_err(|_| NsError::Corrupt("upstreams key".into()))?);
            let binding: UpstreamBinding = record::decode("upstream binding", v)?;
            self.upstream.set(bucket, Attached { binding, client: None });
            Ok(())
        })
    }

    /// The `remote` record of `ino`, if any.
    pub(crate) fn remote(&self, ino: u64) -> NsResult<Option<Remote>> {
        if !self.upstream.any() {
            return Ok(None);
        }
        match self.meta.get(Tree::Remote, &keys::id(ino))? {
            Some(v) => Ok(Some(record::decode("remote", &v)?)),
            None => Ok(None),
        }
    }

    /// The remote file record of `ino` and its bucket.
    pub(crate) fn remote_file(&self, ino: u64) -> NsResult<Option<(RemoteFile, Arc<Attached>)>> {
        match self.remote(ino)? {
            Some(Remote::File(f)) => {
                let att = self.upstream.attached(f.bucket)?;
                Ok(Some((f, att)))
            }
            _ => Ok(None),
        }
    }

    /// The binding of bucket inode `bucket`, when it is bound.
    pub(crate) fn bound(&self, bucket: u64) -> Option<Arc<Attached>> {
        if !self.upstream.any() {
            return None;
        }
        self.upstream.get(bucket)
    }
}

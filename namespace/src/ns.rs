//! The [`Namespace`] handle: opening, recovery, time, ids.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chunkstore::{ChunkIo, ChunkStore, ChunkStoreConfig, RealIo};
use metastore::{MetaStore, SledConfig, SledStore};

use crate::clock::{Clock, Nanos, SystemClock};
use crate::keys;
use crate::locks::{ExtentLocks, UploadLocks};
use crate::record::{Inode, Kind};
use crate::tree::{Meta, Tree};
use crate::tx::{self, Tx};
use crate::{NsError, NsResult};

/// Inode id of the root directory (whose entries are the buckets).
pub const ROOT_INO: u64 = 1;
/// Ids below this are reserved; allocated ids start here.
const FIRST_ALLOCATED_ID: u64 = 16;
/// Format of the whole data directory, stored in `sys/format`.
const FORMAT_VERSION: u64 = 1;
/// Bytes of the data directory's secret.
pub const SECRET_BYTES: usize = 32;
/// Where the secret lives in the `sys` tree.
const SECRET_KEY: &[u8] = b"secret";

/// Settings of a [`Namespace`].
#[derive(Clone)]
pub struct NamespaceConfig {
    /// Data directory: `meta/` (sled) and `chunks/` live here.
    pub data_dir: PathBuf,
    /// Chunk size for new data.
    pub chunk_size_bytes: usize,
    /// Free space on the data volume that data writes leave for the
    /// metadata store (`ChunkStoreConfig::free_bytes_reserved`): a write
    /// that would eat into it fails with `NoSpace`; 0 turns it off.
    pub free_bytes_reserved: u64,
    /// sled page cache.
    pub meta_cache_bytes: u64,
    /// How long opening waits for the metadata store's lock (held by
    /// another open handle, e.g. a running gateway) before failing with
    /// `Unavailable`.
    pub meta_lock_wait: Duration,
    /// How long a chunk dropped from metadata survives before GC deletes it,
    /// so that readers that pinned the old extents can finish.
    pub gc_grace: Duration,
    /// How old an unreferenced chunk file must be before a periodic orphan
    /// scan deletes it (staging uploads are protected in memory as well).
    pub orphan_chunk_grace: Duration,
    /// Mode of files created by S3 PUTs (subject to nothing else).
    pub default_file_mode: u32,
    /// Mode of directories created implicitly by S3 PUTs.
    pub default_dir_mode: u32,
    /// Leave the start-up scan for unreferenced chunk files to the caller
    /// ([`Namespace::scan_orphan_chunks_from_before_start`], e.g. in the
    /// background once serving): it lists every chunk file, which takes
    /// seconds with millions of objects. Recovery is otherwise the same.
    pub defer_startup_orphan_scan: bool,
    /// Bytes of fetched upstream data the cache keeps (0: no limit but
    /// the disk's); clean windows beyond it are evicted.
    pub cache_capacity_bytes: u64,
    /// Free space the cache leaves on the data volume: below it, clean
    /// windows are evicted (0: off).
    pub cache_free_bytes_min: u64,
    /// Bytes of bound buckets' files not yet upstream past which writes to
    /// them fail with `NoSpace` until uploads drain (0: no limit).
    pub cache_dirty_bytes_max: u64,
    /// The I/O layer of the chunk store (tests inject faults here).
    pub chunk_io: Arc<dyn ChunkIo>,
    /// The clock (tests use a manual one).
    pub clock: Arc<dyn Clock>,
}

impl NamespaceConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NamespaceConfig {
            data_dir: data_dir.into(),
            chunk_size_bytes: chunkstore::DEFAULT_CHUNK_SIZE_BYTES,
            free_bytes_reserved: chunkstore::DEFAULT_FREE_BYTES_RESERVED,
            meta_cache_bytes: 256 << 20,
            meta_lock_wait: metastore::DEFAULT_LOCK_WAIT,
            gc_grace: Duration::from_secs(600),
            orphan_chunk_grace: Duration::from_secs(3600),
            default_file_mode: 0o644,
            default_dir_mode: 0o755,
            defer_startup_orphan_scan: false,
            cache_capacity_bytes: 0,
            cache_free_bytes_min: 0,
            cache_dirty_bytes_max: 0,
            chunk_io: Arc::new(RealIo),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What start-up recovery did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the data directory was new.
    pub created: bool,
    /// Boot epoch after this start (the NFS write verifier source).
    pub boot_epoch: u64,
    /// Unlinked inodes whose extents were freed.
    pub orphans_reaped: u64,
    /// Unreferenced chunk files (and stray temp files) deleted.
    pub orphan_chunks_deleted: u64,
    /// Chunks GC deleted because their grace period had passed.
    pub gc_chunks_deleted: u64,
}

/// The namespace. Cheap to share: wrap it in an `Arc`.
pub struct Namespace {
    pub(crate) meta: Meta,
    pub(crate) chunks: Arc<ChunkStore>,
    pub(crate) cfg: NamespaceConfig,
    pub(crate) fsid: u64,
    pub(crate) boot_epoch: u64,
    /// See [`Namespace::secret`].
    secret: [u8; SECRET_BYTES],
    last_time: AtomicI64,
    pub(crate) extent_locks: ExtentLocks,
    pub(crate) upload_locks: UploadLocks,
    /// Chunks pinned by open readers: GC leaves them alone.
    pub(crate) pins: Mutex<HashMap<u64, u32>>,
    /// Chunks written by writers still staging: the orphan scan skips them.
    pub(crate) staging: Mutex<HashSet<u64>>,
    /// Names skipped by S3 listings because they are not valid UTF-8.
    pub(crate) hidden_names: AtomicU64,
    /// Every id below this was allocated before this open: an unreferenced
    /// chunk below it is left over from an earlier run, whatever its age.
    pub(crate) start_id_floor: AtomicU64,
    /// Wall-clock time of this open: stray files older than it are left
    /// over from an earlier run.
    pub(crate) opened_at: std::time::SystemTime,
    /// Upstream bindings, clients and fetches (`upstream/`).
    pub(crate) upstream: crate::upstream::Upstreams,
}

impl Namespace {
    /// Opens the data directory with the sled engine and the chunk store,
    /// creating it if needed, and runs recovery.
    pub fn open(cfg: NamespaceConfig) -> NsResult<(Self, RecoveryReport)> {
        let (meta, chunks) = open_stores(&cfg)?;
        Self::with_stores(meta, chunks, cfg)
    }

    /// Opens an existing data directory for inspection (fsck): no recovery
    /// runs and nothing is written (the boot epoch is not bumped), so the
    /// state is seen exactly as a crash or a stop left it. Fails with
    /// `NotFound` when `cfg.data_dir` holds no data directory and with
    /// `Unavailable` when another process holds it (after
    /// `cfg.meta_lock_wait`). Mutating calls on the handle work, but
    /// callers should use it only for [`Namespace::fsck`].
    pub fn open_offline(cfg: NamespaceConfig) -> NsResult<Self> {
        if !cfg.data_dir.join("meta").is_dir() || !cfg.data_dir.join("chunks").is_dir() {
            return Err(NsError::NotFound);
        }
        let (meta, chunks) = open_stores(&cfg)?;
        let meta = Meta::new(meta);
        let read_u64 = |k: &[u8]| -> NsResult<u64> {
            let v = meta
                .get(Tree::Sys, k)?
                .ok_or_else(|| NsError::Corrupt(format!("sys/{} missing", String::from_utf8_lossy(k))))?;
            crate::record::decode("sys", &v)
        };
        let version = read_u64(b"format")?;
        if version != FORMAT_VERSION {
            return Err(NsError::Corrupt(format!("data directory format {version} is not {FORMAT_VERSION}")));
        }
        let fsid = read_u64(b"fsid")?;
        let boot_epoch = read_u64(b"boot_epoch")?;
        // Offline use writes nothing: a directory from before the secret
        // existed gets one at its next open; until then edges that need it
        // see zeros (fsck needs none).
        let secret = match meta.get(Tree::Sys, SECRET_KEY)? {
            Some(v) => crate::record::decode("sys", &v)?,
            None => [0; SECRET_BYTES],
        };
        let now = cfg.clock.now_ns();
        let ns = Self::assemble(meta, chunks, cfg, fsid, boot_epoch, secret, now);
        ns.load_bindings()?;
        Ok(ns)
    }

    fn assemble(
        meta: Meta,
        chunks: Arc<ChunkStore>,
        cfg: NamespaceConfig,
        fsid: u64,
        boot_epoch: u64,
        secret: [u8; SECRET_BYTES],
        now: Nanos,
    ) -> Self {
        Namespace {
            meta,
            chunks,
            fsid,
            boot_epoch,
            secret,
            last_time: AtomicI64::new(now),
            extent_locks: ExtentLocks::new(),
            upload_locks: UploadLocks::new(),
            pins: Mutex::new(HashMap::new()),
            staging: Mutex::new(HashSet::new()),
            hidden_names: AtomicU64::new(0),
            start_id_floor: AtomicU64::new(0),
            opened_at: std::time::SystemTime::now(),
            upstream: crate::upstream::Upstreams::with_capacity(cfg.cache_capacity_bytes),
            cfg,
        }
    }

    /// Opens over given stores (tests use the in-memory metastore); `meta`
    /// must have been opened with [`crate::tree::SCHEMA`].
    pub fn with_stores(
        meta: Arc<dyn MetaStore>,
        chunks: Arc<ChunkStore>,
        cfg: NamespaceConfig,
    ) -> NsResult<(Self, RecoveryReport)> {
        let meta = Meta::new(meta);
        let mut report = RecoveryReport::default();
        let now = cfg.clock.now_ns();
        let format = meta.get(Tree::Sys, b"format")?;
        if format.is_none() {
            report.created = true;
            let fsid: u64 = rand::random();
            tx::run(&*meta, |tx| {
                tx.put(Tree::Sys, b"format", &FORMAT_VERSION)?;
                tx.put(Tree::Sys, b"fsid", &fsid)?;
                tx.put(Tree::Sys, b"boot_epoch", &0u64)?;
                let mut root = new_inode(ROOT_INO, Kind::Dir, 0o755, 0, 0, now);
                root.nlink = 2;
                root.parent = ROOT_INO;
                tx.put_inode(&root)
            })?;
        }
        let read_u64 = |k: &[u8]| -> NsResult<u64> {
            let v = meta.get(Tree::Sys, k)?.ok_or_else(|| NsError::Corrupt(format!("sys/{:?} missing", k)))?;
            crate::record::decode("sys", &v)
        };
        let version = read_u64(b"format")?;
        if version != FORMAT_VERSION {
            return Err(NsError::Corrupt(format!("data directory format {version} is not {FORMAT_VERSION}")));
        }
        let fsid = read_u64(b"fsid")?;
        // The boot epoch changes on every start and is durable before any
        // write is answered, so NFS write verifiers never repeat.
        // The secret is made once per data directory (at creation, or at
        // the first open of a directory made before it existed) and made
        // durable with the boot epoch, before anything signed with it is
        // handed out.
        let (boot_epoch, secret) = tx::run(&*meta, |tx| {
            let e: u64 = tx.get(Tree::Sys, b"boot_epoch")?.unwrap_or(0) + 1;
            tx.put(Tree::Sys, b"boot_epoch", &e)?;
            let secret: [u8; SECRET_BYTES] = match tx.get(Tree::Sys, SECRET_KEY)? {
                Some(s) => s,
                None => {
                    let s: [u8; SECRET_BYTES] = rand::random();
                    tx.put(Tree::Sys, SECRET_KEY, &s)?;
                    s
                }
            };
            Ok((e, secret))
        })?;
        meta.sync()?;
        report.boot_epoch = boot_epoch;
        let ns = Self::assemble(meta, chunks, cfg, fsid, boot_epoch, secret, now);
        ns.load_bindings()?;
        ns.rebuild_cache_index()?;
        ns.start_id_floor.store(ns.alloc_id()?, Ordering::Relaxed);
        report.orphans_reaped = ns.reap_orphans()?;
        if !ns.cfg.defer_startup_orphan_scan {
            report.orphan_chunks_deleted = ns.scan_orphan_chunks_from_before_start()?;
        }
        report.gc_chunks_deleted = ns.run_gc()?.chunks_deleted;
        tracing::info!(?report, "namespace opened");
        Ok((ns, report))
    }

    /// The filesystem id (random, fixed at creation).
    pub fn fsid(&self) -> u64 {
        self.fsid
    }

    /// A random 256-bit secret made once per data directory and kept in its
    /// metadata (`sys/secret`). Edges derive keys from it to sign what
    /// they hand to clients and must get back unchanged (NFS file
    /// handles), so that a client cannot forge them; it survives restarts
    /// so signed values do too. Never logged, never sent.
    pub fn secret(&self) -> &[u8; SECRET_BYTES] {
        &self.secret
    }

    /// The boot epoch: increases on every open, durably.
    pub fn boot_epoch(&self) -> u64 {
        self.boot_epoch
    }

    /// The chunk store's chunk size.
    pub fn chunk_size_bytes(&self) -> usize {
        self.chunks.chunk_size_bytes()
    }

    /// How old an unreferenced chunk must be before a periodic orphan scan
    /// deletes it.
    pub fn orphan_chunk_grace(&self) -> Duration {
        self.cfg.orphan_chunk_grace
    }

    /// Names hidden from S3 listings because they are not valid UTF-8.
    pub fn hidden_name_count(&self) -> u64 {
        self.hidden_names.load(Ordering::Relaxed)
    }

    /// Which store a failed durability barrier poisoned, if any: the
    /// namespace then refuses writes (`Unavailable`) until the process is
    /// restarted, and the gateway's `/readyz` says so.
    pub fn poisoned(&self) -> Option<&'static str> {
        if self.meta.is_poisoned() {
            Some("metadata store")
        } else if self.chunks.is_poisoned() {
            Some("chunk store")
        } else {
            None
        }
    }

    /// Bytes the metastore occupies on disk (metrics).
    pub fn metastore_size_bytes(&self) -> NsResult<u64> {
        Ok(self.meta.size_on_disk_bytes()?)
    }

    /// Durability barrier for everything committed so far (NFS COMMIT).
    pub fn sync(&self) -> NsResult<()> {
        self.chunks.barrier()?;
        self.meta.sync()?;
        Ok(())
    }

    /// Space and file counts of the volume holding the data directory
    /// (NFS FSSTAT, metrics).
    pub fn fs_stats(&self) -> NsResult<FsStats> {
        let st = nix::sys::statvfs::statvfs(&self.cfg.data_dir)
            .map_err(|e| NsError::Internal(format!("statvfs {}: {e}", self.cfg.data_dir.display())))?;
        let frag = st.fragment_size() as u64;
        Ok(FsStats {
            total_bytes: st.blocks() as u64 * frag,
            free_bytes: st.blocks_free() as u64 * frag,
            avail_bytes: st.blocks_available() as u64 * frag,
            total_files: st.files() as u64,
            free_files: st.files_free() as u64,
            avail_files: st.files_available() as u64,
        })
    }

    /// A strictly increasing timestamp: wall time, or one nanosecond after
    /// the previous stamp if the wall clock has not moved (or went back), so
    /// every change moves mtime/ctime and client caches notice.
    pub(crate) fn now(&self) -> Nanos {
        let wall = self.cfg.clock.now_ns();
        let mut prev = self.last_time.load(Ordering::Acquire);
        loop {
            let next = wall.max(prev + 1);
            match self.last_time.compare_exchange(prev, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// Milliseconds after which a chunk dropped now may be deleted.
    pub(crate) fn gc_at_ms(&self, now: Nanos) -> u64 {
        (now.max(0) as u64 / 1_000_000) + self.cfg.gc_grace.as_millis() as u64
    }

    /// A fresh, never-reused id (inodes and chunks share the sequence).
    pub(crate) fn alloc_id(&self) -> NsResult<u64> {
        Ok(self.meta.next_id()? + FIRST_ALLOCATED_ID)
    }

    /// Runs a metadata transaction.
    pub(crate) fn txn<T>(&self, body: impl FnMut(&mut Tx<'_>) -> NsResult<T>) -> NsResult<T> {
        tx::run(&*self.meta, body)
    }

    /// Commits are made durable by this barrier before any reply.
    ///
    /// Invariant: metadata is only ever fsync'd here (and in
    /// [`Namespace::sync`]), always after the chunk barrier, so chunks
    /// written by unstable writes are durable before the extents that
    /// point at them. The chunk barrier is one lock and an empty swap when
    /// nothing is pending.
    pub(crate) fn commit_barrier(&self) -> NsResult<()> {
        self.chunks.barrier()?;
        Ok(self.meta.sync()?)
    }

    /// Reads an inode outside a transaction.
    pub fn getattr(&self, ino: u64) -> NsResult<Inode> {
        let v = self.meta.get(Tree::Inodes, &keys::id(ino))?.ok_or(NsError::Stale)?;
        let inode: Inode = crate::record::decode("inode", &v)?;
        if inode.ino != ino {
            return Err(NsError::Corrupt(format!("inode record {ino} names {}", inode.ino)));
        }
        if inode.has(crate::record::FLAG_STAGING) || (inode.nlink == 0 && inode.kind != Kind::Dir) {
            return Err(NsError::Stale);
        }
        Ok(inode)
    }
}

/// Opens the metadata store and the chunk store of `cfg.data_dir`.
fn open_stores(cfg: &NamespaceConfig) -> NsResult<(Arc<dyn MetaStore>, Arc<ChunkStore>)> {
    let mut sled_cfg = SledConfig::new(cfg.data_dir.join("meta"));
    sled_cfg.cache_capacity_bytes = cfg.meta_cache_bytes;
    sled_cfg.lock_wait = cfg.meta_lock_wait;
    let meta: Arc<dyn MetaStore> = Arc::new(SledStore::open(&sled_cfg, crate::tree::SCHEMA)?);
    let mut ccfg = ChunkStoreConfig::new(&cfg.data_dir);
    ccfg.chunk_size_bytes = cfg.chunk_size_bytes;
    ccfg.free_bytes_reserved = cfg.free_bytes_reserved;
    let chunks = Arc::new(ChunkStore::open(&ccfg, cfg.chunk_io.clone())?);
    Ok((meta, chunks))
}

/// Capacity of the data volume, from `statvfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    /// Size of the volume.
    pub total_bytes: u64,
    /// Free bytes (root included).
    pub free_bytes: u64,
    /// Bytes available to the gateway's user.
    pub avail_bytes: u64,
    /// File slots on the volume (each chunk is a file).
    pub total_files: u64,
    /// Free file slots.
    pub free_files: u64,
    /// File slots available to the gateway's user.
    pub avail_files: u64,
}

/// A fresh inode record.
pub(crate) fn new_inode(ino: u64, kind: Kind, mode: u32, uid: u32, gid: u32, now: Nanos) -> Inode {
    Inode {
        ino,
        kind,
        mode: mode & 0o7777,
        uid,
        gid,
        nlink: if kind == Kind::Dir { 2 } else { 1 },
        size: 0,
        atime: now,
        mtime: now,
        ctime: now,
        generation: rand::random(),
        parent: 0,
        entries: 0,
        // Cookies 1 and 2 stand for '.' and '..' in NFS listings.
        next_cookie: 3,
        content_gen: 1,
        flags: 0,
        target: Vec::new(),
        verifier: None,
    }
}

//! The sled 0.34.7 engine. Architecture invariant: this is the only file in
//! the workspace that imports `sled`.
//!
//! sled facts this module is built around (see ARCHITECTURE.md and
//! `shared/reference/metastore.md`):
//! - `Db::flush` writes and `sync_file_range`s the log but is not an fsync,
//!   so [`SledStore::sync`] follows it with `sync_all` on our own handle to
//!   the `db` file;
//! - transactions hold a process-wide lock, so bodies are short point
//!   operations and never touch a `Tree` directly (that would deadlock);
//! - values over ~128 KiB spill to unsynced blob files, so the namespace
//!   keeps every value far below that.

use std::cell::RefCell;
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::Transactional;

use crate::{Abort, Direction, Entry, MetaError, MetaStore, Result, Schema, TreeId, Txn, TxnBody};

/// How long an open waits by default for a previous instance's file lock
/// to go.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Explicit sled settings; nothing is left to sled's defaults.
#[derive(Clone, Debug)]
pub struct SledConfig {
    /// Directory holding sled's files.
    pub path: PathBuf,
    /// Page cache budget. sled's RSS runs 2-3x this, so budget accordingly.
    pub cache_capacity_bytes: u64,
    /// Period of sled's own background flush; `None` (the default) turns it
    /// off. Durability never depends on it (every acknowledgement waits for
    /// [`MetaStore::sync`]), and leaving it off means metadata is fsync'd
    /// only by our barrier, which the namespace runs after the chunk
    /// barrier: extents of unstable NFS writes never become durable
    /// before their chunks through a background flush.
    pub flush_every_ms: Option<u64>,
    /// How long an open waits for sled's file lock before failing with
    /// [`MetaError::Locked`]: long enough for a restart within one process
    /// (sled's flusher releases the lock a moment after the last handle
    /// goes); offline tools use a short wait to fail fast when a running
    /// gateway holds the directory.
    pub lock_wait: std::time::Duration,
}

impl SledConfig {
    /// Defaults sized for a storage node: 256 MiB cache, no background flush.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledConfig {
            path: path.into(),
            cache_capacity_bytes: 256 << 20,
            flush_every_ms: None,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

/// Metadata store on sled.
pub struct SledStore {
    db: sled::Db,
    /// One handle per tree of the schema, indexed by [`TreeId::index`].
    trees: Vec<sled::Tree>,
    /// Our own handle to sled's log file, used to fsync it after a flush.
    log_file: File,
    path: PathBuf,
    /// Group commit: number of barrier requests issued so far.
    sync_requested: AtomicU64,
    /// Group commit: every request numbered at or below this is durable.
    sync_completed: AtomicU64,
    sync_lock: Mutex<()>,
    /// Set when a flush or fsync failed: never retry an fsync.
    poisoned: AtomicBool,
}

impl SledStore {
    /// Opens (or creates) the store under `cfg.path`, holding the trees of
    /// `schema` (their names are part of the on-disk format).
    pub fn open(cfg: &SledConfig, schema: Schema) -> Result<Self> {
        crate::tree::assert_schema(schema);
        std::fs::create_dir_all(&cfg.path)?;
        let config = sled::Config::new()
            .path(&cfg.path)
            .cache_capacity(cfg.cache_capacity_bytes)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(cfg.flush_every_ms)
            .use_compression(false);
        // sled's flusher thread keeps the file lock for a moment after the
        // last handle of a previous open is dropped; wait for it (bounded)
        // instead of failing a restart within one process.
        let started = std::time::Instant::now();
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if is_lock_busy(&e) => {
                    if started.elapsed() >= cfg.lock_wait {
                        return Err(MetaError::Locked(cfg.path.clone()));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(engine(e)),
            }
        };
        let trees = schema.iter().map(|name| db.open_tree(name).map_err(engine)).collect::<Result<Vec<_>>>()?;
        let log_file = File::open(cfg.path.join("db"))?;
        // The directory entries of sled's files must themselves be durable.
        File::open(&cfg.path)?.sync_all()?;
        Ok(SledStore {
            db,
            trees,
            log_file,
            path: cfg.path.clone(),
            sync_requested: AtomicU64::new(0),
            sync_completed: AtomicU64::new(0),
            sync_lock: Mutex::new(()),
            poisoned: AtomicBool::new(false),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tree(&self, t: TreeId) -> &sled::Tree {
        &self.trees[t.index()]
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(MetaError::Poisoned);
        }
        Ok(())
    }
}

fn engine(e: sled::Error) -> MetaError {
    MetaError::Engine(e.to_string())
}

/// Point operations over sled's transactional trees. A read error is kept
/// here and handed back to sled when the body returns, so that sled can
/// retry (conflict) or fail (storage) the transaction as it must.
struct SledTxn<'a> {
    trees: &'a [TransactionalTree],
    interrupted: Option<UnabortableTransactionError>,
}

impl SledTxn<'_> {
    fn record(&mut self, e: UnabortableTransactionError) -> MetaError {
        self.interrupted = Some(e);
        MetaError::Interrupted
    }
}

impl Txn for SledTxn<'_> {
    fn get(&mut self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.trees[tree.index()].get(key) {
            Ok(v) => Ok(v.map(|v| v.to_vec())),
            Err(e) => Err(self.record(e)),
        }
    }
    fn put(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<()> {
        match self.trees[tree.index()].insert(key, value) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.record(e)),
        }
    }
    fn del(&mut self, tree: TreeId, key: &[u8]) -> Result<()> {
        match self.trees[tree.index()].remove(key) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.record(e)),
        }
    }
}

impl MetaStore for SledStore {
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_poison()?;
        Ok(self.tree(tree).get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: TreeId,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
        dir: Direction,
    ) -> Result<Vec<Entry>> {
        self.check_poison()?;
        if range_is_empty(&range) || limit == 0 {
            return Ok(Vec::new());
        }
        let owned = (range.0.map(|b| b.to_vec()), range.1.map(|b| b.to_vec()));
        let iter = self.tree(tree).range::<Vec<u8>, _>(owned);
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut push = |item: sled::Result<(sled::IVec, sled::IVec)>| -> Result<bool> {
            let (k, v) = item.map_err(engine)?;
            out.push((k.to_vec(), v.to_vec()));
            Ok(out.len() < limit)
        };
        match dir {
            Direction::Forward => {
                for item in iter {
                    if !push(item)? {
                        break;
                    }
                }
            }
            Direction::Reverse => {
                for item in iter.rev() {
                    if !push(item)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn transact(&self, body: &mut TxnBody<'_>) -> Result<()> {
        self.check_poison()?;
        let body = RefCell::new(body);
        let trees: &[sled::Tree] = &self.trees;
        let res = trees.transaction(|view: &Vec<TransactionalTree>| {
            let mut txn = SledTxn { trees: view, interrupted: None };
            let outcome = (body.borrow_mut())(&mut txn);
            if let Some(e) = txn.interrupted.take() {
                return Err(ConflictableTransactionError::from(e));
            }
            match outcome {
                Ok(()) => Ok(()),
                Err(Abort) => Err(ConflictableTransactionError::Abort(())),
            }
        });
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(MetaError::Aborted),
            Err(TransactionError::Storage(e)) => Err(engine(e)),
        }
    }

    fn sync(&self) -> Result<()> {
        self.check_poison()?;
        let ticket = self.sync_requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _guard = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.sync_completed.load(Ordering::Acquire) >= ticket {
            return Ok(()); // another caller's flush covered our commits
        }
        self.check_poison()?;
        // Every ticket issued so far belongs to a caller whose commits
        // happened before it asked; this flush covers all of them.
        let covered = self.sync_requested.load(Ordering::Acquire);
        let flushed = self.db.flush().map_err(engine).and_then(|_| self.log_file.sync_all().map_err(MetaError::from));
        if let Err(e) = flushed {
            self.poisoned.store(true, Ordering::Release);
            tracing::error!(error = %e, "metadata barrier failed; store poisoned");
            return Err(e);
        }
        self.sync_completed.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }

    fn next_id(&self) -> Result<u64> {
        self.check_poison()?;
        self.db.generate_id().map_err(engine)
    }

    fn size_on_disk_bytes(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(engine)
    }

    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
}

/// Whether an open failed because another handle still holds sled's file
/// lock. sled 0.34.7 rewraps the EWOULDBLOCK from `try_lock` as
/// `ErrorKind::Other` with this text, so the kind alone is not enough.
fn is_lock_busy(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

/// sled's range iterator misbehaves on inverted ranges; we answer them empty.
pub(crate) fn range_is_empty(r: &(Bound<&[u8]>, Bound<&[u8]>)) -> bool {
    match (r.0, r.1) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

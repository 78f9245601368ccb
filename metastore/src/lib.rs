//! Metadata behind a narrow, engine-neutral trait.
//!
//! The namespace stores every piece of metadata through [`MetaStore`]: opaque
//! named trees (its [`Schema`], given at open) of byte keys and byte values, point reads, ordered range scans, one
//! serializable transaction over all trees, a durability barrier and a source
//! of never-reused ids. Key and value encodings live above this trait, so
//! every engine stores the same logical schema.
//!
//! Engines: [`SledStore`] (sled 0.34.7, the product's engine; the only module
//! that imports sled) and [`MemStore`] (in memory, for tests and as proof that
//! the trait does not leak sled). The conformance suite in `tests/` runs the
//! same assertions against both.

mod error;
mod mem_store;
mod sled_store;
mod tree;

pub use error::MetaError;
pub use mem_store::MemStore;
pub use sled_store::{SledConfig, SledStore, DEFAULT_LOCK_WAIT};
pub use tree::{Schema, TreeId, SCHEMA_TREES_MAX};

use std::ops::Bound;

/// Result alias for metastore calls.
pub type Result<T> = std::result::Result<T, MetaError>;

/// A key-value pair returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Scan order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending byte order of keys.
    Forward,
    /// Descending byte order of keys.
    Reverse,
}

/// The returned marker of a transaction body that chose to abort.
///
/// The body keeps its own reason (the caller captures it); the engine only
/// needs to know that nothing must be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort;

/// Point operations available inside a transaction.
///
/// There is deliberately no range scan: sled cannot scan inside a
/// transaction, so every invariant the namespace checks in a transaction is a
/// point read (child counters, "name free", "upload exists").
pub trait Txn {
    /// Reads a key as of this transaction (including its own writes).
    fn get(&mut self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Writes a key; visible to later reads in this transaction.
    fn put(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<()>;
    /// Deletes a key; deleting an absent key is not an error.
    fn del(&mut self, tree: TreeId, key: &[u8]) -> Result<()>;
}

/// A body run inside [`MetaStore::transact`].
///
/// Architecture invariant: the body may be run more than once (an engine may
/// retry on conflict), so it must have no side effects outside the
/// transaction other than overwriting captured output slots.
pub type TxnBody<'a> = dyn FnMut(&mut dyn Txn) -> std::result::Result<(), Abort> + 'a;

/// The narrow metadata interface the namespace is written against.
pub trait MetaStore: Send + Sync {
    /// Point read outside any transaction; sees every committed transaction.
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Ordered scan of `range`, at most `limit` entries, in `dir` order.
    ///
    /// Scans are weakly consistent: a transaction may commit between two
    /// scans, and (with sled) between two steps of one scan.
    fn scan(
        &self,
        tree: TreeId,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
        dir: Direction,
    ) -> Result<Vec<Entry>>;

    /// Runs `body` as one atomic, serializable transaction over all trees.
    ///
    /// Returns [`MetaError::Aborted`] when the body returned [`Abort`]; then
    /// nothing it wrote is visible. A committed transaction is visible to
    /// every later read at once, but durable only after [`MetaStore::sync`].
    fn transact(&self, body: &mut TxnBody<'_>) -> Result<()>;

    /// Durability barrier: when it returns, every transaction that committed
    /// before the call is on stable storage (fsync'd, not just written).
    /// Concurrent callers share one flush (group commit).
    fn sync(&self) -> Result<()>;

    /// A fresh id, never returned before by this store, even across crashes.
    fn next_id(&self) -> Result<u64>;

    /// Bytes the engine occupies on disk (an estimate for metrics and FSSTAT).
    fn size_on_disk_bytes(&self) -> Result<u64>;

    /// Whether a failed durability barrier poisoned the store: every later
    /// call fails until the process reopens it (health checks report it).
    fn is_poisoned(&self) -> bool;
}

/// Owned bound helper: scans take borrowed bounds; this makes them from slices.
pub fn prefix_range(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (Bound::Included(prefix.to_vec()), prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded))
}

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when no such key exists (the prefix is all 0xFF bytes).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Borrows an owned bound pair for [`MetaStore::scan`].
pub fn as_ref_range(r: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (bound_ref(&r.0), bound_ref(&r.1))
}

fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

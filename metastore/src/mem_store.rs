//! An in-memory engine: the reference the conformance suite compares sled
//! with, and a fast store for unit tests. It keeps nothing across processes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::sled_store::range_is_empty;
use crate::{Abort, Direction, Entry, MetaError, MetaStore, Result, Schema, TreeId, Txn, TxnBody};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Metadata store held in memory.
pub struct MemStore {
    trees: Mutex<Vec<Map>>,
    next_id: AtomicU64,
}

impl MemStore {
    /// An empty store holding the trees of `schema`.
    pub fn new(schema: Schema) -> Self {
        crate::tree::assert_schema(schema);
        MemStore { trees: Mutex::new(vec![Map::new(); schema.len()]), next_id: AtomicU64::new(0) }
    }
}

/// Transaction over the locked maps: writes go to an overlay that is applied
/// only when the body succeeds.
struct MemTxn<'a> {
    base: &'a [Map],
    overlay: BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>,
}

impl Txn for MemTxn<'_> {
    fn get(&mut self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(&(tree.index(), key.to_vec())) {
            return Ok(v.clone());
        }
        Ok(self.base[tree.index()].get(key).cloned())
    }
    fn put(&mut self, tree: TreeId, key: &[u8], value: &[u8]) -> Result<()> {
        self.overlay.insert((tree.index(), key.to_vec()), Some(value.to_vec()));
        Ok(())
    }
    fn del(&mut self, tree: TreeId, key: &[u8]) -> Result<()> {
        self.overlay.insert((tree.index(), key.to_vec()), None);
        Ok(())
    }
}

impl MetaStore for MemStore {
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.trees.lock().unwrap_or_else(|p| p.into_inner())[tree.index()].get(key).cloned())
    }

    fn scan(
        &self,
        tree: TreeId,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        limit: usize,
        dir: Direction,
    ) -> Result<Vec<Entry>> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        let trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let iter = trees[tree.index()].range::<[u8], _>(range);
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(match dir {
            Direction::Forward => iter.take(limit).map(clone).collect(),
            Direction::Reverse => iter.rev().take(limit).map(clone).collect(),
        })
    }

    fn transact(&self, body: &mut TxnBody<'_>) -> Result<()> {
        let mut trees = self.trees.lock().unwrap_or_else(|p| p.into_inner());
        let mut txn = MemTxn { base: &trees, overlay: BTreeMap::new() };
        match body(&mut txn) {
            Err(Abort) => Err(MetaError::Aborted),
            Ok(()) => {
                let overlay = std::mem::take(&mut txn.overlay);
                for ((t, k), v) in overlay {
                    match v {
                        Some(v) => trees[t].insert(k, v),
                        None => trees[t].remove(&k),
                    };
                }
                Ok(())
            }
        }
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn next_id(&self) -> Result<u64> {
        Ok(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn size_on_disk_bytes(&self) -> Result<u64> {
        Ok(0)
    }

    fn is_poisoned(&self) -> bool {
        // Nothing here is ever flushed, so nothing can fail to be.
        false
    }
}

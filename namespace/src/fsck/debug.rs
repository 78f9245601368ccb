//! Raw record access for tests that damage metadata on purpose (feature
//! `fault-injection`; never enabled in the gateway's own build). Every
//! call here bypasses the namespace's invariants.

use std::path::PathBuf;

use crate::tree::Tree;

use crate::full_scan::scan_all;
use crate::{Namespace, NsResult};

/// Raw record access for tests that damage metadata on purpose (feature
/// `fault-injection`; never enabled in the gateway's own build).
impl Namespace {
    /// Every record of `tree`, in key order.
    #[doc(hidden)]
    pub fn debug_raw_scan(&self, tree: Tree) -> NsResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        scan_all(self, tree, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// One raw record.
    #[doc(hidden)]
    pub fn debug_raw_get(&self, tree: Tree, key: &[u8]) -> NsResult<Option<Vec<u8>>> {
        Ok(self.meta.get(tree, key)?)
    }

    /// Writes a raw record, bypassing every invariant, and syncs.
    #[doc(hidden)]
    pub fn debug_raw_put(&self, tree: Tree, key: &[u8], value: &[u8]) -> NsResult<()> {
        self.meta.transact(&mut |t| t.put(tree.id(), key, value).map_err(|_| metastore::Abort))?;
        Ok(self.meta.sync()?)
    }

    /// Deletes a raw record, bypassing every invariant, and syncs.
    #[doc(hidden)]
    pub fn debug_raw_del(&self, tree: Tree, key: &[u8]) -> NsResult<()> {
        self.txn(|tx| tx.del(tree, key))?;
        Ok(self.meta.sync()?)
    }

    /// The file of chunk `id`.
    #[doc(hidden)]
    pub fn debug_chunk_path(&self, id: u64) -> PathBuf {
        self.chunks.path_of(id)
    }
}

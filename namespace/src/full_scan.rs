//! The paged full-tree scan that GC, the reaper and fsck share.
//!
//! sled cannot scan inside a transaction and a whole tree may not fit in
//! memory, so a full scan reads [`SCAN_PAGE_ROWS`] rows at a time and
//! resumes after the last key it saw. It is not a snapshot: rows written
//! during the scan may or may not be seen.

use std::ops::Bound;

use metastore::Direction;

use crate::tree::Tree;

use crate::{Namespace, NsResult};

/// Rows fetched per scan step.
pub(crate) const SCAN_PAGE_ROWS: usize = 1024;

/// Calls `f` on every row of `tree`, in key order, a page at a time; stops
/// at the first error `f` returns.
pub(crate) fn scan_all(ns: &Namespace, tree: Tree, mut f: impl FnMut(&[u8], &[u8]) -> NsResult<()>) -> NsResult<()> {
    let mut from: Option<Vec<u8>> = None;
    loop {
        let lo = match &from {
            Some(k) => Bound::Excluded(k.as_slice()),
            None => Bound::Unbounded,
        };
        let rows = ns.meta.scan(tree, (lo, Bound::Unbounded), SCAN_PAGE_ROWS, Direction::Forward)?;
        let n = rows.len();
        for (k, v) in &rows {
            f(k, v)?;
        }
        match rows.into_iter().last() {
            Some((k, _)) if n == SCAN_PAGE_ROWS => from = Some(k),
            _ => return Ok(()),
        }
    }
}

//! Reclaiming space, and checking that metadata and chunks agree.
//!
//! Deletes drop metadata first and reclaim later:
//! - an unlinked inode goes to `orphans`; the reaper frees its extents in
//!   batches (each chunk reference dropped; a chunk at zero references is
//!   queued in `gc_chunks` with a not-before time of now + grace);
//! - GC deletes a queued chunk only after its grace period, only when no
//!   reader pins it, and only after a metadata barrier, so the transaction
//!   that dropped the last reference is durable before the file goes;
//! - the orphan scan deletes chunk files that no metadata references at all
//!   (left by a crash between writing data and committing metadata).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::time::{Duration, SystemTime};

use metastore::{Direction, Tree};

use crate::limits::{COMPLETED_UPLOAD_RETENTION_NS, REAP_BATCH_EXTENTS};
use crate::ns::ROOT_INO;
use crate::record::{ChunkRef, Dentry, Extent, Inode, Kind, Upload, UploadState, FLAG_HAS_OBJMETA, FLAG_STAGING};
use crate::{keys, Namespace, NsError, NsResult};

/// Rows fetched per scan step.
const SCAN_PAGE_ROWS: usize = 1024;

/// What a GC pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Chunk files deleted.
    pub chunks_deleted: u64,
    /// Chunks skipped because a reader pins them.
    pub chunks_pinned: u64,
    /// Completed-upload records expired.
    pub uploads_expired: u64,
}

/// Findings of [`Namespace::check_integrity`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Inodes checked.
    pub inodes: u64,
    /// Extents checked.
    pub extents: u64,
    /// Distinct chunks referenced (each read and verified).
    pub chunks_referenced: u64,
    /// Chunk files no metadata references (allowed: crash leftovers).
    pub chunks_unreferenced: u64,
    /// Files under `chunks/` that are not chunks (allowed: temp files).
    pub stray_files: u64,
    /// Every inconsistency found; empty means healthy.
    pub problems: Vec<String>,
}

fn scan_all(ns: &Namespace, tree: Tree, mut f: impl FnMut(&[u8], &[u8]) -> NsResult<()>) -> NsResult<()> {
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

impl Namespace {
    /// Frees the extents of every unlinked inode, then its records.
    /// Returns how many inodes were reaped.
    pub fn reap_orphans(&self) -> NsResult<u64> {
        let mut inos = Vec::new();
        scan_all(self, Tree::Orphans, |k, _| {
            inos.push(u64::from_be_bytes(k.try_into().map_err(|_| NsError::Corrupt("orphan key".into()))?));
            Ok(())
        })?;
        for &ino in &inos {
            let _lock = self.extent_locks.get(ino).write().unwrap_or_else(|p| p.into_inner());
            loop {
                let lo = keys::pair(ino, 0);
                let hi = keys::pair(ino, u64::MAX);
                let rows = self.meta.scan(
                    Tree::Extents,
                    (Bound::Included(&lo), Bound::Included(&hi)),
                    REAP_BATCH_EXTENTS,
                    Direction::Forward,
                )?;
                let now = self.now();
                let gc_at = self.gc_at_ms(now);
                if rows.is_empty() {
                    self.txn(|tx| {
                        tx.del(Tree::Inodes, &keys::id(ino))?;
                        tx.del(Tree::ObjMeta, &keys::id(ino))?;
                        tx.del(Tree::Orphans, &keys::id(ino))
                    })?;
                    break;
                }
                self.txn(|tx| {
                    for (k, v) in &rows {
                        let e: Extent = crate::record::decode("extent", v)?;
                        tx.del(Tree::Extents, k)?;
                        tx.ref_chunk(e.chunk, -1, gc_at)?;
                    }
                    Ok(())
                })?;
            }
        }
        if !inos.is_empty() {
            self.commit_barrier()?;
        }
        Ok(inos.len() as u64)
    }

    /// Deletes queued chunks whose grace period has passed and that no
    /// reader pins; expires old completed-upload records.
    pub fn run_gc(&self) -> NsResult<GcReport> {
        let mut report = GcReport::default();
        // Everything queued so far must be durable before its chunk goes.
        self.commit_barrier()?;
        let now_ms = (self.cfg.clock.now_ns().max(0) / 1_000_000) as u64;
        let hi = keys::pair(now_ms, u64::MAX);
        let mut due = Vec::new();
        scan_all(self, Tree::GcChunks, |k, _| {
            if k > &hi[..] {
                return Ok(());
            }
            due.push(k.to_vec());
            Ok(())
        })?;
        for k in due {
            let (_, chunk) = keys::unpair(&k);
            // Order matters: references first, then pins. A chunk at zero
            // references can only be pinned by a reader that pinned it
            // before the count reached zero, so a pin seen now is real, and
            // none can appear after this check.
            let refs = match self.meta.get(Tree::ChunkRefs, &keys::id(chunk))? {
                Some(v) => crate::record::decode::<ChunkRef>("chunk_ref", &v)?.count,
                None => 0,
            };
            if refs > 0 {
                // Referenced again (a copy shared it): keep it, drop the entry.
                self.txn(|tx| tx.del(Tree::GcChunks, &k))?;
                continue;
            }
            if self.pins.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&chunk) {
                report.chunks_pinned += 1;
                continue;
            }
            // The file first, then the queue entry: a crash in between
            // leaves an entry whose delete is simply repeated.
            self.chunks.delete(chunk)?;
            self.txn(|tx| {
                tx.del(Tree::GcChunks, &k)?;
                if let Some(r) = tx.get::<ChunkRef>(Tree::ChunkRefs, &keys::id(chunk))? {
                    if r.count == 0 {
                        tx.del(Tree::ChunkRefs, &keys::id(chunk))?;
                    }
                }
                Ok(())
            })?;
            report.chunks_deleted += 1;
        }
        let now = self.cfg.clock.now_ns();
        let mut expired = Vec::new();
        scan_all(self, Tree::MpuUploads, |k, v| {
            let up: Upload = crate::record::decode("upload", v)?;
            if matches!(up.state, UploadState::Completed { .. }) && now - up.created > COMPLETED_UPLOAD_RETENTION_NS {
                expired.push(k.to_vec());
            }
            Ok(())
        })?;
        for k in &expired {
            self.txn(|tx| tx.del(Tree::MpuUploads, k))?;
        }
        report.uploads_expired = expired.len() as u64;
        self.commit_barrier()?;
        Ok(report)
    }

    /// Deletes chunk files no metadata references and stray files, when
    /// older than `min_age`; chunks being staged right now are skipped.
    pub fn scan_orphan_chunks(&self, min_age: Duration) -> NsResult<u64> {
        let now = SystemTime::now();
        let mut deleted = 0;
        for c in self.chunks.list()? {
            let old_enough = now.duration_since(c.modified).map(|age| age >= min_age).unwrap_or(false);
            if !old_enough {
                continue;
            }
            let garbage = match c.id {
                None => true,
                Some(id) => {
                    !self.staging.lock().unwrap_or_else(|p| p.into_inner()).contains(&id)
                        && self.meta.get(Tree::ChunkRefs, &keys::id(id))?.is_none()
                }
            };
            if garbage && self.chunks.remove_path(&c.path)? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Checks that metadata and chunks agree: every extent's chunk exists
    /// and verifies, reference counts match the extents, directory counts
    /// and link counts add up, every dentry names a live inode. Reads every
    /// referenced chunk once.
    pub fn check_integrity(&self) -> NsResult<IntegrityReport> {
        let mut r = IntegrityReport::default();
        let mut inodes: HashMap<u64, Inode> = HashMap::new();
        scan_all(self, Tree::Inodes, |k, v| {
            let n: Inode = crate::record::decode("inode", v)?;
            if k != keys::id(n.ino) {
                r.problems.push(format!("inode record under key {k:?} names {}", n.ino));
            }
            inodes.insert(n.ino, n);
            Ok(())
        })?;
        r.inodes = inodes.len() as u64;
        scan_all(self, Tree::ObjMeta, |k, _| {
            let ino = u64::from_be_bytes(k.try_into().map_err(|_| NsError::Corrupt("objmeta key".into()))?);
            match inodes.get(&ino) {
                Some(n) if !n.has(FLAG_HAS_OBJMETA) => {
                    r.problems.push(format!("inode {ino} has object metadata but not the flag"))
                }
                None => r.problems.push(format!("object metadata of missing inode {ino}")),
                Some(_) => {}
            }
            Ok(())
        })?;
        let mut entries: HashMap<u64, u64> = HashMap::new();
        let mut subdirs: HashMap<u64, u32> = HashMap::new();
        let mut links: HashMap<u64, u32> = HashMap::new();
        scan_all(self, Tree::Dentries, |k, v| {
            let parent = u64::from_be_bytes(k[..8].try_into().expect("8"));
            let d: Dentry = crate::record::decode("dentry", v)?;
            *entries.entry(parent).or_default() += 1;
            match inodes.get(&d.ino) {
                None => r.problems.push(format!("dentry {k:?} names missing inode {}", d.ino)),
                Some(n) if n.kind != d.kind => r.problems.push(format!("dentry {k:?} kind disagrees with inode")),
                Some(n) if n.kind == Kind::Dir => {
                    *subdirs.entry(parent).or_default() += 1;
                    if n.parent != parent {
                        r.problems.push(format!("directory {} parent {} but listed in {parent}", n.ino, n.parent));
                    }
                }
                Some(_) => *links.entry(d.ino).or_default() += 1,
            }
            Ok(())
        })?;
        let mut orphans = std::collections::HashSet::new();
        scan_all(self, Tree::Orphans, |k, _| {
            orphans.insert(u64::from_be_bytes(k.try_into().expect("8")));
            Ok(())
        })?;
        for n in inodes.values() {
            match n.kind {
                Kind::Dir => {
                    let e = entries.get(&n.ino).copied().unwrap_or(0);
                    if e != n.entries {
                        r.problems.push(format!("directory {} counts {} entries, has {e}", n.ino, n.entries));
                    }
                    let want = 2 + subdirs.get(&n.ino).copied().unwrap_or(0);
                    if n.nlink != want {
                        r.problems.push(format!("directory {} nlink {} should be {want}", n.ino, n.nlink));
                    }
                    if n.ino != ROOT_INO && !inodes.contains_key(&n.parent) {
                        r.problems.push(format!("directory {} has missing parent {}", n.ino, n.parent));
                    }
                }
                Kind::File | Kind::Symlink => {
                    let l = links.get(&n.ino).copied().unwrap_or(0);
                    if n.has(FLAG_STAGING) {
                        continue;
                    }
                    if l != n.nlink {
                        r.problems.push(format!("inode {} nlink {} but {l} names", n.ino, n.nlink));
                    }
                    if l == 0 && !orphans.contains(&n.ino) {
                        r.problems.push(format!("inode {} has no name and is not an orphan", n.ino));
                    }
                }
            }
        }
        let mut refs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut last_end: HashMap<u64, u64> = HashMap::new();
        scan_all(self, Tree::Extents, |k, v| {
            let (ino, off) = keys::unpair(k);
            let e: Extent = crate::record::decode("extent", v)?;
            r.extents += 1;
            match inodes.get(&ino) {
                None => r.problems.push(format!("extent {ino}@{off} of missing inode")),
                Some(n) if off + e.len as u64 > n.size && !n.has(FLAG_STAGING) && n.nlink > 0 => {
                    r.problems.push(format!("extent {ino}@{off}+{} beyond size {}", e.len, n.size))
                }
                Some(_) => {}
            }
            if last_end.get(&ino).is_some_and(|&end| end > off) {
                r.problems.push(format!("extent {ino}@{off} overlaps the previous one"));
            }
            last_end.insert(ino, off + e.len as u64);
            *refs.entry(e.chunk).or_default() += 1;
            Ok(())
        })?;
        let mut counted: HashMap<u64, u64> = HashMap::new();
        scan_all(self, Tree::ChunkRefs, |k, v| {
            let c: ChunkRef = crate::record::decode("chunk_ref", v)?;
            counted.insert(u64::from_be_bytes(k.try_into().expect("8")), c.count);
            Ok(())
        })?;
        for (&chunk, &n) in &refs {
            if counted.get(&chunk) != Some(&n) {
                r.problems.push(format!("chunk {chunk:016x} has {n} extents, count says {:?}", counted.get(&chunk)));
            }
            if let Err(e) = self.chunks.verify(chunk) {
                r.problems.push(format!("chunk {chunk:016x}: {e}"));
            }
        }
        for (&chunk, &n) in &counted {
            if n > 0 && !refs.contains_key(&chunk) {
                r.problems.push(format!("chunk {chunk:016x} counted {n} but no extent uses it"));
            }
        }
        r.chunks_referenced = refs.len() as u64;
        for c in self.chunks.list()? {
            match c.id {
                None => r.stray_files += 1,
                Some(id) if !refs.contains_key(&id) => r.chunks_unreferenced += 1,
                Some(_) => {}
            }
        }
        Ok(r)
    }
}

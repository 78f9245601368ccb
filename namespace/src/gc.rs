//! Reclaiming space.
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
//!
//! Checking that metadata and chunks agree (`check_integrity`) is fsck's
//! job and lives in `fsck/integrity.rs`; GC imports nothing from fsck.

use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use metastore::Direction;

use crate::tree::Tree;

use crate::full_scan::scan_all;
use crate::limits::{COMPLETED_UPLOAD_RETENTION_NS, REAP_BATCH_EXTENTS};
use crate::record::{ChunkRef, Extent, Upload, UploadState};
use crate::{keys, Namespace, NsError, NsResult};

/// Stray files (no chunk id in their name) count as left by an earlier run
/// only when older than the open by this much; younger ones wait for the
/// periodic scan.
const STRAY_MTIME_SLACK: Duration = Duration::from_secs(2);

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
                        tx.del(Tree::Remote, &keys::id(ino))?;
                        tx.del(Tree::Orphans, &keys::id(ino))
                    })?;
                    self.upstream.cache.forget(ino);
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
        self.delete_unreferenced_chunks(|c| now.duration_since(c.modified).map(|age| age >= min_age).unwrap_or(false))
    }

    /// The start-up orphan scan: deletes every unreferenced chunk file left
    /// by an earlier run (an id allocated before this open, or a stray file
    /// older than this open), whatever its age, since nothing of an earlier
    /// run is still in flight. Safe while serving: new writes use ids above
    /// the floor. `Namespace::open` runs it unless
    /// `defer_startup_orphan_scan` is set.
    pub fn scan_orphan_chunks_from_before_start(&self) -> NsResult<u64> {
        let floor = self.start_id_floor.load(Ordering::Relaxed);
        // File times come from the kernel's coarse clock, which may lag the
        // precise one: a stray made just after the open could look older.
        let strays_before = self.opened_at - STRAY_MTIME_SLACK;
        self.delete_unreferenced_chunks(|c| match c.id {
            Some(id) => id < floor,
            None => c.modified < strays_before,
        })
    }

    fn delete_unreferenced_chunks(&self, eligible: impl Fn(&chunkstore::StoredChunk) -> bool) -> NsResult<u64> {
        let mut deleted = 0;
        for c in self.chunks.list()? {
            if !eligible(&c) {
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
}

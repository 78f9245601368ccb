//! `check_integrity`: fsck as the crash and model tests use it (no grace,
//! no repair, leftovers counted rather than reported). It lives with fsck
//! so that GC never imports fsck.

use std::time::Duration;

use super::report::{FsckOptions, FsckReport};
use super::scan::Depth;
use crate::{Namespace, NsResult};

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

impl Namespace {
    /// Checks that metadata and chunks agree: every extent's chunk exists
    /// and verifies, reference counts match the extents, directory counts
    /// and link counts add up, every dentry names a live inode. Reads every
    /// referenced chunk once. Leftovers of interrupted work (unreferenced
    /// chunks, stray files, unlinked inodes not yet reaped) are counted, not
    /// problems. This is [`Namespace::fsck`] without a grace or repair.
    pub fn check_integrity(&self) -> NsResult<IntegrityReport> {
        let opts = FsckOptions { repair: false, grace: Duration::MAX, online: false };
        let (report, unreferenced, stray) = self.fsck_check_only(&opts)?;
        Ok(IntegrityReport {
            inodes: report.inodes,
            extents: report.extents,
            chunks_referenced: report.chunks_referenced,
            chunks_unreferenced: unreferenced,
            stray_files: stray,
            problems: report.problems.iter().filter(|p| !p.kind.is_leftover()).map(|p| p.to_string()).collect(),
        })
    }

    /// The check alone, with the old integrity report's extra figures
    /// (chunk files no extent references, stray files).
    fn fsck_check_only(&self, opts: &FsckOptions) -> NsResult<(FsckReport, u64, u64)> {
        let s = self.fsck_scan(opts, Depth { verify: true, list_files: true }, &mut |_| {})?;
        Ok((s.report, s.unreferenced_files, s.stray_files))
    }
}

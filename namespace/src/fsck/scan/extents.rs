//! The `extents` tree: each file's data, as (inode, offset) -> chunk range.
//!
//! Checks: every extent decodes and belongs to a live inode; none is empty,
//! reaches past its file's size (live, non-staging files), or overlaps the
//! one before it. Tallies, per chunk, how many extents reference it and how
//! many bytes they need it to hold, for the reference-count and chunk
//! checks. An undecodable or overlapping extent marks its inode's data as
//! damaged (repair round 3).

use crate::tree::Tree;

use super::state::ScanState;
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{self, Extent, FLAG_STAGING};
use crate::{keys, Namespace, NsResult};

impl ScanState<'_> {
    /// Every extent, against its inode and the extent before it.
    pub(super) fn scan_extents(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        let mut last_end: Option<(u64, u64)> = None;
        scan_all(ns, Tree::Extents, |k, v| {
            self.tick(progress);
            if k.len() != 16 {
                let fix = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
                self.problem(ProblemKind::UndecodableRecord, format!("extent key {}", hex::encode(k)), None, None, fix);
                return Ok(());
            }
            let (ino, off) = keys::unpair(k);
            let e: Extent = match record::decode("extent", v) {
                Ok(e) => e,
                Err(err) => {
                    self.found.bad_inodes.entry(ino).or_insert_with(|| format!("undecodable extent at offset {off}"));
                    let fix = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
                    self.problem(
                        ProblemKind::UndecodableRecord,
                        format!("extent {ino}@{off}: {err}"),
                        Some(ino),
                        None,
                        fix,
                    );
                    return Ok(());
                }
            };
            self.found.report.extents += 1;
            if e.is_remote() {
                self.remote_extents.insert(ino);
            } else {
                // Remote extents hold no chunk (their bytes are upstream).
                *self.found.refs.entry(e.chunk).or_default() += 1;
                let end = e.chunk_off as u64 + e.len as u64;
                let nd = self.need.entry(e.chunk).or_default();
                *nd = (*nd).max(end);
            }
            let del = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
            match self.found.inodes.get(&ino).copied() {
                None => self.problem(
                    ProblemKind::BadExtent,
                    format!("extent {ino}@{off} of missing inode"),
                    Some(ino),
                    Some(e.chunk),
                    del,
                ),
                Some(_) if e.len == 0 => self.problem(
                    ProblemKind::BadExtent,
                    format!("extent {ino}@{off} is empty"),
                    Some(ino),
                    Some(e.chunk),
                    del,
                ),
                Some(n) if off + e.len as u64 > n.size && !n.has(FLAG_STAGING) && n.nlink > 0 => self.problem(
                    ProblemKind::BadExtent,
                    format!("extent {ino}@{off}+{} beyond size {}", e.len, n.size),
                    Some(ino),
                    Some(e.chunk),
                    None,
                ),
                Some(_) => {}
            }
            if let Some((prev_ino, prev_end)) = last_end {
                if prev_ino == ino && prev_end > off {
                    self.found.bad_inodes.entry(ino).or_insert_with(|| format!("overlapping extents at offset {off}"));
                    self.problem(
                        ProblemKind::BadExtent,
                        format!("extent {ino}@{off} overlaps the previous one"),
                        Some(ino),
                        Some(e.chunk),
                        Some(Fix::Quarantine),
                    );
                }
            }
            last_end = Some((ino, off + e.len as u64));
            Ok(())
        })?;
        self.found.report.chunks_referenced = self.found.refs.len() as u64;
        Ok(())
    }
}

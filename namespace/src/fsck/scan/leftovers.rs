//! Leftovers of interrupted work: the `orphans` tree (unlinked inodes
//! being reaped) and the files under `chunks/` (chunks nothing references
//! yet, stray files).
//!
//! Checks: an `orphans` record decodes and names neither a directory nor a
//! file that still has names; a leftover older than the grace
//! (`FsckOptions::grace`) is a problem, a younger one is work in flight
//! and only counted. A chunk file that a `chunk_refs` record names, or
//! that a writer is staging, is never a leftover.

use std::time::{Duration, SystemTime};

use crate::tree::Tree;

use super::state::{be_u64, ScanState};
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{self, Kind, Orphan, FLAG_STAGING};
use crate::{Namespace, NsResult};

impl ScanState<'_> {
    /// Every `orphans` record, against the inodes and their names.
    pub(super) fn scan_orphans(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::Orphans, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::Orphans, k.to_vec()));
            let (Some(ino), Ok(o)) = (be_u64(k), record::decode::<Orphan>("orphan", v)) else {
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("orphans record {}", hex::encode(k)),
                    None,
                    None,
                    del,
                );
                return Ok(());
            };
            match self.found.inodes.get(&ino).copied() {
                Some(n) if n.kind == Kind::Dir => self.problem(
                    ProblemKind::BadOrphanRecord,
                    format!("directory {ino} is queued for reaping"),
                    Some(ino),
                    None,
                    del,
                ),
                Some(n) if !n.has(FLAG_STAGING) && self.links.get(&ino).copied().unwrap_or(0) > 0 => self.problem(
                    ProblemKind::BadOrphanRecord,
                    format!("inode {ino} is queued for reaping but still has names"),
                    Some(ino),
                    None,
                    del,
                ),
                _ => {
                    self.orphans.insert(ino);
                    let age_ns = self.now_ns.saturating_sub(o.since).max(0) as u128;
                    if age_ns >= self.opts.grace.as_nanos() {
                        self.problem(
                            ProblemKind::OrphanInode,
                            format!("unlinked inode {ino} not reaped for {} s", age_ns / 1_000_000_000),
                            Some(ino),
                            None,
                            Some(Fix::Reap),
                        );
                    } else {
                        self.found.report.orphan_inodes_in_grace += 1;
                    }
                }
            }
            Ok(())
        })
    }

    /// Every file under `chunks/`: sizes for the verification phase, and
    /// files no extent references.
    pub(super) fn scan_chunk_files(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        progress(FsckProgress::Phase { name: "chunk files", total: 0, unit: "files" });
        let now = SystemTime::now();
        let listing = ns.chunks.list()?;
        for c in listing {
            progress(FsckProgress::Advance(1));
            self.found.report.chunk_files += 1;
            self.found.report.chunk_file_bytes += c.size_bytes;
            let age = now.duration_since(c.modified).unwrap_or(Duration::ZERO);
            let old = age >= self.opts.grace;
            match c.id {
                None => {
                    self.found.stray_files += 1;
                    if old {
                        self.problem(
                            ProblemKind::StrayFile,
                            format!("{} is not a chunk ({} s old)", c.path.display(), age.as_secs()),
                            None,
                            None,
                            Some(Fix::DelFile { path: c.path.clone(), chunk: None }),
                        );
                    } else {
                        self.found.report.chunks_unreferenced_ok += 1;
                    }
                }
                Some(id) => {
                    self.sizes.insert(id, c.size_bytes);
                    if self.found.refs.contains_key(&id) {
                        continue;
                    }
                    self.found.unreferenced_files += 1;
                    let staging = ns.staging.lock().unwrap_or_else(|p| p.into_inner()).contains(&id);
                    if self.counted.contains_key(&id) || staging || !old {
                        self.found.report.chunks_unreferenced_ok += 1;
                    } else {
                        self.problem(
                            ProblemKind::OrphanChunk,
                            format!(
                                "chunk {id:016x} ({} bytes, {} s old) is referenced by nothing",
                                c.size_bytes,
                                age.as_secs()
                            ),
                            None,
                            Some(id),
                            Some(Fix::DelFile { path: c.path.clone(), chunk: Some(id) }),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

//! Chunks as the metadata sees them: `gc_chunks` (the GC queue),
//! `chunk_refs` (reference counts), and the referenced chunk files
//! themselves.
//!
//! Checks: every record decodes; each chunk's stored count equals the
//! extents that reference it, and a count of 0 is queued for GC; every
//! referenced chunk's file exists and (with `Depth::verify`) verifies
//! whole (header, block CRC32Cs, CRC64NVME) and holds the bytes its
//! extents need. A damaged chunk marks its files' data as damaged (repair
//! round 3).

use crate::tree::Tree;

use super::state::{be_u64, ScanState};
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{self, ChunkRef};
use crate::{keys, Namespace, NsResult};

impl ScanState<'_> {
    /// The GC queue's keys decode; remembers the chunks queued.
    pub(super) fn scan_gc_queue(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::GcChunks, |k, _| {
            self.tick(progress);
            if k.len() == 16 {
                self.gc_queued.insert(keys::unpair(k).1);
            } else {
                let fix = Some(Fix::DelRecord(Tree::GcChunks, k.to_vec()));
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("gc_chunks key {}", hex::encode(k)),
                    None,
                    None,
                    fix,
                );
            }
            Ok(())
        })
    }

    /// Reads every stored reference count.
    pub(super) fn scan_chunk_refs(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::ChunkRefs, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::ChunkRefs, k.to_vec()));
            match (be_u64(k), record::decode::<ChunkRef>("chunk_ref", v)) {
                (Some(c), Ok(r)) => {
                    self.counted.insert(c, r.count);
                }
                (c, Err(e)) => self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("chunk_refs {}: {e}", hex::encode(k)),
                    None,
                    c,
                    del,
                ),
                (None, Ok(_)) => self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("chunk_refs key {}", hex::encode(k)),
                    None,
                    None,
                    del,
                ),
            }
            Ok(())
        })
    }

    /// Stored counts against the extents counted, in chunk order: first
    /// the referenced chunks, then the counted ones no extent uses.
    pub(super) fn check_refcounts(&mut self) {
        let refs = self.found.refs.clone();
        for (&chunk, &n) in &refs {
            if self.counted.get(&chunk) != Some(&n) {
                let says = self.counted.get(&chunk).map_or("no count".to_string(), |c| format!("a count of {c}"));
                self.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} is used by {n} extents but has {says}"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: n }),
                );
            }
        }
        let mut counted_sorted: Vec<(u64, u64)> = self.counted.iter().map(|(&c, &n)| (c, n)).collect();
        counted_sorted.sort_unstable();
        for (chunk, n) in counted_sorted {
            if refs.contains_key(&chunk) {
                continue;
            }
            if n > 0 {
                self.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} has a count of {n} but no extent uses it"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: 0 }),
                );
            } else if !self.gc_queued.contains(&chunk) {
                self.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} has a count of 0 but is not queued for GC"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: 0 }),
                );
            }
        }
    }

    /// Verifies (or, without `Depth::verify`, at least finds) every
    /// referenced chunk, in chunk order.
    pub(super) fn check_referenced_chunks(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) {
        let verify = self.depth.verify;
        let chunks: Vec<u64> = self.found.refs.keys().copied().collect();
        let total: u64 = chunks.iter().map(|c| self.sizes.get(c).copied().unwrap_or(0)).sum();
        progress(FsckProgress::Phase {
            name: if verify { "verifying chunks" } else { "finding chunks" },
            total,
            unit: "bytes",
        });
        for chunk in chunks {
            let res = if verify {
                ns.chunks.verify(chunk).map(|info| Some(info.len))
            } else if ns.chunks.path_of(chunk).exists() {
                Ok(None)
            } else {
                Err(chunkstore::ChunkError::NotFound(chunk))
            };
            progress(FsckProgress::Advance(self.sizes.get(&chunk).copied().unwrap_or(0)));
            let why = match res {
                Ok(Some(len)) => {
                    self.found.report.chunks_verified += 1;
                    self.found.report.bytes_verified += len;
                    let needed = self.need.get(&chunk).copied().unwrap_or(0);
                    if needed > len {
                        Some((
                            ProblemKind::ChunkCorrupt,
                            format!("chunk {chunk:016x} holds {len} bytes, its extents need {needed}"),
                        ))
                    } else {
                        None
                    }
                }
                Ok(None) => None,
                Err(chunkstore::ChunkError::NotFound(_)) => Some((
                    ProblemKind::ChunkMissing,
                    format!("chunk {chunk:016x} is referenced but its file is missing"),
                )),
                Err(e) => Some((ProblemKind::ChunkCorrupt, e.to_string())),
            };
            if let Some((kind, detail)) = why {
                self.found.bad_chunks.insert(chunk, detail.clone());
                self.problem(kind, detail, None, Some(chunk), Some(Fix::Quarantine));
            }
        }
    }
}

//! fsck: checking (and optionally repairing) a whole data directory.
//!
//! [`Namespace::fsck`] reads every metadata record and every referenced
//! chunk and reports what disagrees, as typed [`FsckProblem`]s:
//!
//! - every record decodes (inodes, dentries, extents, ...);
//! - every extent's chunk exists, verifies (header, block CRC32Cs, whole
//!   CRC64NVME) and is long enough for the extent;
//! - `chunk_refs` counts match the extents; a count of 0 is queued for GC;
//! - dentries and `dirscan` agree; every dentry names a live inode of its
//!   kind in a live directory; directory entry counts, sizes, link counts
//!   and cookies add up; files' link counts equal their names;
//! - no leftovers older than the grace: unreferenced chunk files, stray
//!   files under `chunks/`, unlinked inodes whose reaping never finished.
//!
//! Repair (offline only: it assumes nothing else changes the namespace)
//! runs in rounds, each from a fresh scan, so that a fix never relies on a
//! count that an earlier fix changed:
//! 1. records: undecodable or dangling records are deleted (their bytes
//!    saved in the quarantine report), `dirscan` is rebuilt from dentries,
//!    wrong `orphans` records (a named or directory inode) are dropped;
//! 2. counts: directory entries/nlink/size/cookie, file nlink and chunk
//!    reference counts are set to what the records say; an unnamed file
//!    that still has data is copied to `<data>/quarantine/lost/<ino>`
//!    before it is queued for reaping;
//! 3. data: a file whose bytes are damaged (a missing, corrupt or short
//!    chunk, an undecodable or overlapping extent) is unlinked from every
//!    name and recorded in `<data>/quarantine/quarantine.jsonl` (path,
//!    inode, what was wrong); damaged chunk files move to
//!    `<data>/quarantine/chunks/`; unlinked inodes are reaped; unreferenced
//!    chunk files and stray files older than the grace are deleted.
//!
//! Repair never deletes intact, referenced data: a chunk file is deleted
//! only when no extent and no `chunk_refs` record names it, and a file is
//! unlinked only when its own bytes are damaged. What it cannot decide (a
//! directory that no entry names, a dentry whose kind disagrees with its
//! inode, an extent past the size) is reported and left alone.
//!
//! Online (a serving gateway): the scan is not a snapshot, so problems are
//! confirmed by a second look and only those seen twice are reported;
//! repair is refused.
//!
//! Layout (each module's job and invariants are in its own documentation):
//! - `report`: the public types (options, progress, problem kinds,
//!   problems, the report) and the repair action a problem carries;
//! - `scan/`: one pass over the ten metadata trees and the chunk files,
//!   one module per tree or family of trees, all filling one scan state;
//! - `names`: the paths of damaged files;
//! - `repair`: the three rounds;
//! - `quarantine`: the quarantine directory and its report (file I/O);
//! - `integrity`: `check_integrity`, the crash and model tests' check;
//! - `debug`: raw record access for tests (feature `fault-injection`).
//!
//! Modules depend one way only: this entry point on the rest; `repair` on
//! `scan`, `names` and `quarantine`; everything on `report`; `report` on
//! `quarantine` for the record type alone. None imports `gc` but to call
//! the reaper, and `gc` imports nothing from fsck.

use std::collections::{BTreeSet, HashSet};

use crate::tree::Tree;

mod integrity;
mod names;
mod quarantine;
mod repair;
mod report;
mod scan;

#[cfg(feature = "fault-injection")]
mod debug;

pub use integrity::IntegrityReport;
pub use quarantine::{QuarantineRecord, QUARANTINE_DIR, QUARANTINE_RECORD_VERSION, QUARANTINE_REPORT};
pub use report::{FsckOptions, FsckProblem, FsckProgress, FsckReport, ProblemKind};

use quarantine::read_quarantine;
use scan::{Depth, Scan};

use crate::record::{self, ChunkRef};
use crate::{keys, Namespace, NsError, NsResult};

impl Namespace {
    /// Checks the whole data directory and, with `opts.repair`, fixes what
    /// it can and quarantines what it cannot (see the `fsck` module
    /// documentation). Without repair nothing is written. `progress` is
    /// called as phases start and advance. Errors are operating errors
    /// (I/O); damage is reported in the [`FsckReport`].
    pub fn fsck(&self, opts: &FsckOptions, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<FsckReport> {
        if opts.repair && opts.online {
            return Err(NsError::InvalidArgument(
                "fsck repair needs exclusive access: stop the gateway and run it offline".into(),
            ));
        }
        let full = Depth { verify: true, list_files: true };
        let mut first = self.fsck_scan(opts, full, progress)?;
        if opts.online && !first.report.problems.is_empty() {
            self.fsck_confirm_online(opts, &mut first)?;
        }
        self.fsck_name_damage(&mut first)?;
        let mut report = if opts.repair { self.fsck_repair(opts, first, progress)? } else { first.report };
        let (records, omitted) = read_quarantine(&self.quarantine_dir())?;
        report.quarantined = records;
        report.quarantined_omitted = omitted;
        Ok(report)
    }

    /// Online, the scan is not a snapshot: keeps only the problems of
    /// `first` that a second look confirms.
    fn fsck_confirm_online(&self, opts: &FsckOptions, first: &mut Scan) -> NsResult<()> {
        let again = self.fsck_scan(opts, Depth { verify: false, list_files: true }, &mut |_| {})?;
        // Leftovers are matched by what they are (their age moves);
        // anything else by its whole description, so a count that
        // merely moved under concurrent changes is not confirmed.
        let identity = |p: &FsckProblem| {
            (p.kind, p.ino, p.chunk, if p.kind.is_leftover() { String::new() } else { p.detail.clone() })
        };
        let seen: HashSet<_> = again.report.problems.iter().map(identity).collect();
        let mut still_bad = BTreeSet::new();
        for (&chunk, why) in &first.bad_chunks {
            let referenced = match self.meta.get(Tree::ChunkRefs, &keys::id(chunk))? {
                Some(v) => record::decode::<ChunkRef>("chunk_ref", &v).map(|r| r.count > 0).unwrap_or(true),
                None => false,
            };
            let short = why.contains("its extents need");
            if referenced && (short || self.chunks.verify(chunk).is_err()) {
                still_bad.insert(chunk);
            }
        }
        first.report.problems.retain(|p| match p.kind {
            ProblemKind::ChunkMissing | ProblemKind::ChunkCorrupt => p.chunk.is_some_and(|c| still_bad.contains(&c)),
            _ => seen.contains(&identity(p)),
        });
        first.bad_chunks.retain(|c, _| still_bad.contains(c));
        let confirmed: HashSet<u64> = first.report.problems.iter().filter_map(|p| p.ino).collect();
        first.bad_inodes.retain(|i, _| confirmed.contains(i));
        Ok(())
    }
}

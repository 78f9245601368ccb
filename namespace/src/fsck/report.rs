//! The public vocabulary of fsck: options, progress, problem kinds, the
//! problems found and the report, plus the repair action ([`Fix`]) each
//! problem carries from the scan that found it to the repair round that
//! applies it.
//!
//! This module imports nothing else from fsck but the quarantine record
//! type, so every other fsck module may use it without a circle.

use std::path::PathBuf;
use std::time::Duration;

use crate::tree::Tree;
use serde::{Deserialize, Serialize};

use super::quarantine::QuarantineRecord;
use crate::record::DirScan;

/// Problems kept in a report; more are counted in `problems_omitted`, so a
/// badly damaged directory cannot make the report unbounded.
pub(super) const PROBLEMS_MAX: usize = 100_000;

/// Options of [`Namespace::fsck`].
#[derive(Clone, Debug)]
pub struct FsckOptions {
    /// Fix what can be fixed and quarantine what cannot (see the module
    /// documentation). Needs exclusive access: refused when `online`.
    pub repair: bool,
    /// Unreferenced chunk files, stray files and unlinked inodes younger
    /// than this are work in flight, not problems (the gateway's
    /// `gc_grace`, 600 s by default).
    pub grace: Duration,
    /// Other callers may change the namespace during the check (a serving
    /// gateway): problems are confirmed by a second look.
    pub online: bool,
}

impl Default for FsckOptions {
    fn default() -> Self {
        FsckOptions { repair: false, grace: Duration::from_secs(600), online: false }
    }
}

/// Progress of a check, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsckProgress {
    /// A phase starts; `total` is in `unit`s, 0 when unknown.
    Phase {
        /// What is being done.
        name: &'static str,
        /// Expected amount, 0 when unknown.
        total: u64,
        /// `"records"`, `"files"`, `"bytes"` or `"fixes"`.
        unit: &'static str,
    },
    /// This much more of the current phase is done.
    Advance(u64),
}

/// What kind of inconsistency a [`FsckProblem`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A record whose key or value does not decode.
    UndecodableRecord,
    /// The root directory is missing, or is not a directory.
    BadRoot,
    /// An inode record stored under another inode's key.
    MisfiledInode,
    /// An extent names a chunk whose file does not exist.
    ChunkMissing,
    /// A referenced chunk fails its checksums, is truncated, or is shorter
    /// than its extents need.
    ChunkCorrupt,
    /// An extent of a missing inode, of length 0, past the file's size or
    /// overlapping the previous one.
    BadExtent,
    /// `chunk_refs` disagrees with the extents (or a count of 0 is not
    /// queued for GC).
    RefcountMismatch,
    /// A dentry naming a missing inode, or in a missing or non-directory
    /// parent.
    DanglingDentry,
    /// A dentry whose kind or parent disagrees with its inode, or a
    /// directory with more than one name.
    DentryMismatch,
    /// `dentries` and `dirscan` (the readdir index) disagree.
    DirscanMismatch,
    /// A directory's entry count (or size, or next cookie) disagrees with
    /// its entries.
    ChildCount,
    /// A link count disagrees with the names (files) or subdirectories
    /// (directories).
    LinkCount,
    /// An inode no dentry names that is not queued for reaping.
    UnnamedInode,
    /// An unlinked inode whose reaping has not finished, older than the
    /// grace.
    OrphanInode,
    /// An `orphans` record for an inode that still has names, or a
    /// directory.
    BadOrphanRecord,
    /// A chunk file nothing references, older than the grace.
    OrphanChunk,
    /// A file under `chunks/` that is not a chunk, older than the grace.
    StrayFile,
    /// Object metadata of a missing inode, or a flag without its record.
    BadObjectMetadata,
    /// A multipart part whose staging inode is missing, or a staging inode
    /// no part uses.
    BadUpload,
    /// An upstream binding, `remote` or `upload_queue` record of a missing
    /// inode, of the wrong kind or in an unbound bucket; or a file with
    /// remote extents and no `remote` record to fetch them with.
    BadUpstreamRecord,
}

impl ProblemKind {
    /// Leftovers of interrupted work (crash debris), as opposed to damage.
    pub fn is_leftover(self) -> bool {
        matches!(self, ProblemKind::OrphanChunk | ProblemKind::StrayFile | ProblemKind::OrphanInode)
    }
}

/// Internal repair action attached to a problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Fix {
    /// Round 1: delete a record (raw bytes saved in the quarantine report).
    DelRecord(Tree, Vec<u8>),
    /// Round 1: delete a dentry and the `dirscan` row that mirrors it.
    DelDentry { key: Vec<u8>, parent: u64, cookie: Option<u64>, name: Vec<u8> },
    /// Round 1: recreate a missing `dirscan` row.
    PutDirscan { parent: u64, cookie: u64, scan: DirScan },
    /// Round 1: set or clear `FLAG_HAS_OBJMETA`.
    ObjmetaFlag { ino: u64, set: bool },
    /// Round 2: directory counters.
    DirCounts { ino: u64, entries: u64, nlink: u32, next_cookie: u64 },
    /// Round 2: a file's link count.
    Nlink { ino: u64, nlink: u32 },
    /// Round 2: a chunk's reference count (0 also queues it for GC).
    Refcount { chunk: u64, count: u64 },
    /// Round 2: queue an unlinked inode for reaping.
    Orphanize { ino: u64 },
    /// Round 2: copy an unnamed inode's bytes to `quarantine/lost/`, then
    /// queue it for reaping.
    Salvage { ino: u64 },
    /// Round 3: damaged data (the chunk or inode is in the damage sets).
    Quarantine,
    /// Round 3: reap unlinked inodes.
    Reap,
    /// Round 3: delete an unreferenced file under `chunks/`.
    DelFile { path: PathBuf, chunk: Option<u64> },
}

impl Fix {
    pub(super) fn round(&self) -> u8 {
        match self {
            Fix::DelRecord(..) | Fix::DelDentry { .. } | Fix::PutDirscan { .. } | Fix::ObjmetaFlag { .. } => 1,
            Fix::DirCounts { .. }
            | Fix::Nlink { .. }
            | Fix::Refcount { .. }
            | Fix::Orphanize { .. }
            | Fix::Salvage { .. } => 2,
            Fix::Quarantine | Fix::Reap | Fix::DelFile { .. } => 3,
        }
    }
}

/// One inconsistency found by [`Namespace::fsck`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FsckProblem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What and where, for a human.
    pub detail: String,
    /// The inode concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// The chunk concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u64>,
    /// Paths (`bucket/key`) of the files concerned, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// What repair did about it; `None` when not repaired (or not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
    /// The repair action, from the scan that found the problem (not
    /// serialized: a report read back cannot be repaired from).
    #[serde(skip)]
    pub(super) fix: Option<Fix>,
}

impl std::fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)?;
        if !self.paths.is_empty() {
            write!(f, " [{}]", self.paths.join(", "))?;
        }
        Ok(())
    }
}

/// What [`Namespace::fsck`] found (and, with repair, did). Serializes to
/// JSON and back, so a running gateway can send it to the CLI.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FsckReport {
    /// Checked while a gateway was serving.
    pub online: bool,
    /// Repair was asked.
    pub repair: bool,
    /// The grace applied to leftovers, in seconds.
    pub grace_secs: u64,
    /// Inode records.
    pub inodes: u64,
    /// Regular files (staging inodes of multipart parts excluded).
    pub files: u64,
    /// Directories (the root included).
    pub directories: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hidden inodes holding multipart parts.
    pub staging_inodes: u64,
    /// Directory entries.
    pub dentries: u64,
    /// Extents.
    pub extents: u64,
    /// Distinct chunks extents reference.
    pub chunks_referenced: u64,
    /// Referenced chunks read and verified whole.
    pub chunks_verified: u64,
    /// Data bytes verified.
    pub bytes_verified: u64,
    /// Files under `chunks/`.
    pub chunk_files: u64,
    /// Bytes of files under `chunks/`.
    pub chunk_file_bytes: u64,
    /// Chunk files no extent references yet, younger than the grace (in
    /// flight) or queued for GC: not problems.
    pub chunks_unreferenced_ok: u64,
    /// Unlinked inodes waiting to be reaped, younger than the grace.
    pub orphan_inodes_in_grace: u64,
    /// Every problem found (at most 100 000).
    pub problems: Vec<FsckProblem>,
    /// Problems beyond the limit, counted only.
    pub problems_omitted: u64,
    /// After a repair: what a final check still finds.
    pub remaining: Vec<FsckProblem>,
    /// The quarantine report (this run's records and earlier ones; the
    /// newest 10 000).
    pub quarantined: Vec<QuarantineRecord>,
    /// Older quarantine records not listed.
    pub quarantined_omitted: u64,
}

impl FsckReport {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

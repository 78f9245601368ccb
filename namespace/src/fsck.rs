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
//!    reference counts are set to what the records say;
//! 3. data: a file whose bytes are damaged (a missing, corrupt or short
//!    chunk, an undecodable or overlapping extent) is unlinked from every
//!    name and recorded in `<data>/quarantine/quarantine.jsonl` (path,
//!    inode, what was wrong); damaged chunk files move to
//!    `<data>/quarantine/chunks/`; unlinked inodes are reaped; unreferenced
//!    chunk files and stray files older than the grace are deleted.
//!
//! Repair never deletes intact, referenced data: a chunk file is deleted
//! only when no extent and no `chunk_refs` record names it, and a file is
//! unlinked only when its own bytes are damaged. What it cannot decide (an
//! unnamed inode that still holds data, a directory that no entry names, a
//! dentry whose kind disagrees) is reported and left alone.
//!
//! Online (a serving gateway): the scan is not a snapshot, so problems are
//! confirmed by a second look and only those seen twice are reported;
//! repair is refused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::ops::Bound;

use metastore::Direction;

use crate::tree::Tree;
use serde::{Deserialize, Serialize};

use crate::clock::Nanos;
use crate::gc::{scan_all, SCAN_PAGE_ROWS};
use crate::ns::ROOT_INO;
use crate::record::{
    self, ChunkRef, Dentry, DirScan, Extent, Inode, Kind, ObjMeta, Orphan, Part, Upload, FLAG_HAS_OBJMETA, FLAG_STAGING,
};
use crate::{keys, Namespace, NsError, NsResult};

/// Problems kept in a report; more are counted in `problems_omitted`, so a
/// badly damaged directory cannot make the report unbounded.
const PROBLEMS_MAX: usize = 100_000;
/// Quarantine records read back into a report (the newest ones).
const QUARANTINE_RECORDS_MAX: usize = 10_000;
/// Raw record bytes saved per quarantined record.
const RAW_RECORD_BYTES_MAX: usize = 4096;
/// Directory depth walked when naming a path (deeper than the 512 limit).
const PATH_DEPTH_MAX: usize = 1024;
/// Files named per damaged chunk in its problem's text.
const NAMES_PER_CHUNK_MAX: usize = 8;
/// Version of a quarantine report line.
pub const QUARANTINE_RECORD_VERSION: u8 = 1;
/// Name of the quarantine directory inside the data directory.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Name of the quarantine report inside [`QUARANTINE_DIR`].
pub const QUARANTINE_REPORT: &str = "quarantine.jsonl";

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
}

impl ProblemKind {
    /// Leftovers of interrupted work (crash debris), as opposed to damage.
    pub fn is_leftover(self) -> bool {
        matches!(self, ProblemKind::OrphanChunk | ProblemKind::StrayFile | ProblemKind::OrphanInode)
    }
}

/// Internal repair action attached to a problem.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fix {
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
    fn round(&self) -> u8 {
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
    #[serde(skip)]
    fix: Option<Fix>,
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

/// A line of the quarantine report, `<data>/quarantine/quarantine.jsonl`:
/// what repair took out of the namespace, so an operator can find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// Record version ([`QUARANTINE_RECORD_VERSION`]).
    pub v: u8,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
    /// `"file"` (unlinked), `"part"` (a multipart part dropped), `"chunk"`
    /// (moved into `quarantine/chunks/`) or `"record"` (a metadata record
    /// deleted; `raw_hex` holds its bytes).
    pub what: String,
    /// The file's former paths (`bucket/key`), when it had names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The inode, for files and parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// The chunk, for chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u64>,
    /// Where the bytes went (a quarantined chunk file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// The metadata tree and key (hex) of a deleted record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The deleted record's value (hex, at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    /// What was wrong.
    pub problem: String,
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

/// Compact per-inode facts kept during a scan.
#[derive(Clone, Copy, Debug)]
struct InodeSum {
    kind: Kind,
    nlink: u32,
    size: u64,
    parent: u64,
    entries: u64,
    next_cookie: u64,
    flags: u8,
}

impl InodeSum {
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// How deep a scan goes.
#[derive(Clone, Copy)]
struct Depth {
    /// Read and verify every referenced chunk (else only check existence).
    verify: bool,
    /// List `chunks/` for leftovers.
    list_files: bool,
}

/// Everything one scan learnt.
#[derive(Default)]
struct Scan {
    report: FsckReport,
    inodes: HashMap<u64, InodeSum>,
    /// Directory ino -> (parent, name), for paths.
    dir_names: HashMap<u64, (u64, Vec<u8>)>,
    /// Chunk -> extents referencing it.
    refs: BTreeMap<u64, u64>,
    /// Damaged chunks -> why.
    bad_chunks: BTreeMap<u64, String>,
    /// Inodes whose data is damaged -> why.
    bad_inodes: BTreeMap<u64, String>,
    /// Chunk files that no extent references (the old integrity report's
    /// figure), and stray files.
    unreferenced_files: u64,
    stray_files: u64,
}

impl Scan {
    fn problem(&mut self, kind: ProblemKind, detail: String, ino: Option<u64>, chunk: Option<u64>, fix: Option<Fix>) {
        if self.report.problems.len() >= PROBLEMS_MAX {
            self.report.problems_omitted += 1;
            return;
        }
        self.report.problems.push(FsckProblem { kind, detail, ino, chunk, paths: Vec::new(), repair: None, fix });
    }
}

fn be_u64(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

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
            // Not a snapshot: keep only what a second look confirms.
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
                ProblemKind::ChunkMissing | ProblemKind::ChunkCorrupt => {
                    p.chunk.is_some_and(|c| still_bad.contains(&c))
                }
                _ => seen.contains(&identity(p)),
            });
            first.bad_chunks.retain(|c, _| still_bad.contains(c));
            let confirmed: HashSet<u64> = first.report.problems.iter().filter_map(|p| p.ino).collect();
            first.bad_inodes.retain(|i, _| confirmed.contains(i));
        }
        self.fsck_name_damage(&mut first)?;
        let mut report = if opts.repair { self.fsck_repair(opts, first, progress)? } else { first.report };
        let (records, omitted) = read_quarantine(&self.quarantine_dir())?;
        report.quarantined = records;
        report.quarantined_omitted = omitted;
        Ok(report)
    }

    /// The check alone, with the old integrity report's extra figures
    /// (chunk files no extent references, stray files).
    pub(crate) fn fsck_check_only(&self, opts: &FsckOptions) -> NsResult<(FsckReport, u64, u64)> {
        let s = self.fsck_scan(opts, Depth { verify: true, list_files: true }, &mut |_| {})?;
        Ok((s.report, s.unreferenced_files, s.stray_files))
    }

    /// `<data>/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.cfg.data_dir.join(QUARANTINE_DIR)
    }

    /// One pass over the metadata (and, per `depth`, the chunks).
    fn fsck_scan(&self, opts: &FsckOptions, depth: Depth, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<Scan> {
        let mut s = Scan::default();
        s.report.online = opts.online;
        s.report.repair = opts.repair;
        s.report.grace_secs = opts.grace.as_secs();
        let now_ns = self.cfg.clock.now_ns();
        progress(FsckProgress::Phase { name: "metadata", total: 0, unit: "records" });
        let tick = |p: &mut dyn FnMut(FsckProgress), n: &mut u64| {
            *n += 1;
            if (*n).is_multiple_of(1024) {
                p(FsckProgress::Advance(1024));
            }
        };
        let mut seen_rows = 0u64;

        // Inodes.
        scan_all(self, Tree::Inodes, |k, v| {
            tick(progress, &mut seen_rows);
            let key_ino = be_u64(k);
            match record::decode::<Inode>("inode", v) {
                Ok(n) if key_ino == Some(n.ino) => {
                    s.inodes.insert(
                        n.ino,
                        InodeSum {
                            kind: n.kind,
                            nlink: n.nlink,
                            size: n.size,
                            parent: n.parent,
                            entries: n.entries,
                            next_cookie: n.next_cookie,
                            flags: n.flags,
                        },
                    );
                }
                Ok(n) => s.problem(
                    ProblemKind::MisfiledInode,
                    format!("inode record under key {} names inode {}", hex::encode(k), n.ino),
                    key_ino,
                    None,
                    None,
                ),
                Err(e) => s.problem(
                    ProblemKind::UndecodableRecord,
                    format!("inode {}: {e}", key_ino.map_or(hex::encode(k), |i| i.to_string())),
                    key_ino,
                    None,
                    Some(Fix::DelRecord(Tree::Inodes, k.to_vec())),
                ),
            }
            Ok(())
        })?;
        s.report.inodes = s.inodes.len() as u64;
        for n in s.inodes.values() {
            match n.kind {
                Kind::Dir => s.report.directories += 1,
                Kind::Symlink => s.report.symlinks += 1,
                Kind::File if n.has(FLAG_STAGING) => s.report.staging_inodes += 1,
                Kind::File => s.report.files += 1,
            }
        }
        match s.inodes.get(&ROOT_INO) {
            Some(r) if r.kind == Kind::Dir => {}
            _ => s.problem(
                ProblemKind::BadRoot,
                "the root directory is missing or not a directory".into(),
                Some(ROOT_INO),
                None,
                None,
            ),
        }

        // Dentries, against inodes and dirscan.
        let mut entries: HashMap<u64, u64> = HashMap::new();
        let mut subdirs: HashMap<u64, u32> = HashMap::new();
        let mut max_cookie: HashMap<u64, u64> = HashMap::new();
        let mut links: HashMap<u64, u32> = HashMap::new();
        scan_all(self, Tree::Dentries, |k, v| {
            tick(progress, &mut seen_rows);
            s.report.dentries += 1;
            if k.len() < 9 {
                s.problem(
                    ProblemKind::UndecodableRecord,
                    format!("dentry key {} too short", hex::encode(k)),
                    None,
                    None,
                    Some(Fix::DelRecord(Tree::Dentries, k.to_vec())),
                );
                return Ok(());
            }
            let parent = be_u64(&k[..8]).expect("8 bytes");
            let d: Dentry = match record::decode("dentry", v) {
                Ok(d) => d,
                Err(e) => {
                    *entries.entry(parent).or_default() += 1;
                    s.problem(
                        ProblemKind::UndecodableRecord,
                        format!("dentry {:?} in directory {parent}: {e}", show(&k[8..])),
                        None,
                        None,
                        Some(Fix::DelDentry { key: k.to_vec(), parent, cookie: None, name: Vec::new() }),
                    );
                    return Ok(());
                }
            };
            let is_dir = d.kind == Kind::Dir;
            let name = if is_dir {
                if k.last() != Some(&b'/') {
                    s.problem(
                        ProblemKind::DentryMismatch,
                        format!("directory entry {:?} in {parent} lacks its '/' key suffix", show(&k[8..])),
                        Some(d.ino),
                        None,
                        None,
                    );
                    &k[8..]
                } else {
                    &k[8..k.len() - 1]
                }
            } else {
                &k[8..]
            };
            *entries.entry(parent).or_default() += 1;
            if is_dir {
                *subdirs.entry(parent).or_default() += 1;
            }
            let mc = max_cookie.entry(parent).or_default();
            *mc = (*mc).max(d.cookie);
            let del = Fix::DelDentry { key: k.to_vec(), parent, cookie: Some(d.cookie), name: name.to_vec() };
            match s.inodes.get(&parent) {
                Some(p) if p.kind == Kind::Dir => {}
                Some(_) => {
                    s.problem(
                        ProblemKind::DanglingDentry,
                        format!("entry {:?} -> {} in {parent}, which is not a directory", show(name), d.ino),
                        Some(d.ino),
                        None,
                        Some(del),
                    );
                    return Ok(());
                }
                None => {
                    s.problem(
                        ProblemKind::DanglingDentry,
                        format!("entry {:?} -> {} in missing directory {parent}", show(name), d.ino),
                        Some(d.ino),
                        None,
                        Some(del),
                    );
                    return Ok(());
                }
            }
            match s.inodes.get(&d.ino).copied() {
                None => {
                    s.problem(
                        ProblemKind::DanglingDentry,
                        format!("entry {:?} in directory {parent} names missing inode {}", show(name), d.ino),
                        Some(d.ino),
                        None,
                        Some(del),
                    );
                    return Ok(());
                }
                Some(n) if n.kind != d.kind => s.problem(
                    ProblemKind::DentryMismatch,
                    format!("entry {:?} in {parent} says {:?}, inode {} is {:?}", show(name), d.kind, d.ino, n.kind),
                    Some(d.ino),
                    None,
                    None,
                ),
                Some(n) if n.kind == Kind::Dir => {
                    if n.parent != parent {
                        s.problem(
                            ProblemKind::DentryMismatch,
                            format!("directory {} has parent {} but is listed in {parent}", d.ino, n.parent),
                            Some(d.ino),
                            None,
                            None,
                        );
                    }
                    if s.dir_names.insert(d.ino, (parent, name.to_vec())).is_some() {
                        s.problem(
                            ProblemKind::DentryMismatch,
                            format!("directory {} has more than one name", d.ino),
                            Some(d.ino),
                            None,
                            None,
                        );
                    }
                }
                Some(_) => *links.entry(d.ino).or_default() += 1,
            }
            // The readdir index must mirror the entry.
            let want = DirScan { name: name.to_vec(), ino: d.ino, kind: d.kind };
            let row = self.meta.get(Tree::Dirscan, &keys::pair(parent, d.cookie))?;
            let ok = match &row {
                Some(v) => record::decode::<DirScan>("dirscan", v).ok().as_ref() == Some(&want),
                None => false,
            };
            if !ok {
                let fix = row.is_none().then_some(Fix::PutDirscan { parent, cookie: d.cookie, scan: want });
                s.problem(
                    ProblemKind::DirscanMismatch,
                    format!("entry {:?} in {parent} (cookie {}) has no matching readdir row", show(name), d.cookie),
                    Some(d.ino),
                    None,
                    fix,
                );
            }
            Ok(())
        })?;
        scan_all(self, Tree::Dirscan, |k, v| {
            tick(progress, &mut seen_rows);
            let del = Some(Fix::DelRecord(Tree::Dirscan, k.to_vec()));
            if k.len() != 16 {
                s.problem(ProblemKind::UndecodableRecord, format!("dirscan key {}", hex::encode(k)), None, None, del);
                return Ok(());
            }
            let (parent, cookie) = keys::unpair(k);
            let row: DirScan = match record::decode("dirscan", v) {
                Ok(r) => r,
                Err(e) => {
                    s.problem(
                        ProblemKind::UndecodableRecord,
                        format!("dirscan {parent}/{cookie}: {e}"),
                        None,
                        None,
                        del,
                    );
                    return Ok(());
                }
            };
            let dk = keys::dentry(parent, &row.name, row.kind == Kind::Dir);
            let matches = match self.meta.get(Tree::Dentries, &dk)? {
                Some(v) => record::decode::<Dentry>("dentry", &v).is_ok_and(|d| d.ino == row.ino && d.cookie == cookie),
                None => false,
            };
            if !matches {
                s.problem(
                    ProblemKind::DirscanMismatch,
                    format!(
                        "readdir row {parent}/{cookie} ({:?} -> {}) has no matching entry",
                        show(&row.name),
                        row.ino
                    ),
                    Some(row.ino),
                    None,
                    del,
                );
            }
            Ok(())
        })?;

        // Orphans (unlinked inodes being reaped).
        let mut orphans: HashSet<u64> = HashSet::new();
        scan_all(self, Tree::Orphans, |k, v| {
            tick(progress, &mut seen_rows);
            let del = Some(Fix::DelRecord(Tree::Orphans, k.to_vec()));
            let (Some(ino), Ok(o)) = (be_u64(k), record::decode::<Orphan>("orphan", v)) else {
                s.problem(
                    ProblemKind::UndecodableRecord,
                    format!("orphans record {}", hex::encode(k)),
                    None,
                    None,
                    del,
                );
                return Ok(());
            };
            match s.inodes.get(&ino).copied() {
                Some(n) if n.kind == Kind::Dir => s.problem(
                    ProblemKind::BadOrphanRecord,
                    format!("directory {ino} is queued for reaping"),
                    Some(ino),
                    None,
                    del,
                ),
                Some(n) if !n.has(FLAG_STAGING) && links.get(&ino).copied().unwrap_or(0) > 0 => s.problem(
                    ProblemKind::BadOrphanRecord,
                    format!("inode {ino} is queued for reaping but still has names"),
                    Some(ino),
                    None,
                    del,
                ),
                _ => {
                    orphans.insert(ino);
                    let age_ns = now_ns.saturating_sub(o.since).max(0) as u128;
                    if age_ns >= opts.grace.as_nanos() {
                        s.problem(
                            ProblemKind::OrphanInode,
                            format!("unlinked inode {ino} not reaped for {} s", age_ns / 1_000_000_000),
                            Some(ino),
                            None,
                            Some(Fix::Reap),
                        );
                    } else {
                        s.report.orphan_inodes_in_grace += 1;
                    }
                }
            }
            Ok(())
        })?;

        // Multipart parts name their staging inodes.
        let mut part_inodes: HashSet<u64> = HashSet::new();
        scan_all(self, Tree::MpuParts, |k, v| {
            tick(progress, &mut seen_rows);
            let del = Some(Fix::DelRecord(Tree::MpuParts, k.to_vec()));
            match record::decode::<Part>("part", v) {
                Ok(p) => {
                    part_inodes.insert(p.staging_ino);
                    if !s.inodes.get(&p.staging_ino).is_some_and(|n| n.has(FLAG_STAGING)) {
                        s.problem(
                            ProblemKind::BadUpload,
                            format!("multipart part {} names missing staging inode {}", hex::encode(k), p.staging_ino),
                            Some(p.staging_ino),
                            None,
                            del,
                        );
                    }
                }
                Err(e) => {
                    s.problem(ProblemKind::UndecodableRecord, format!("part {}: {e}", hex::encode(k)), None, None, del)
                }
            }
            Ok(())
        })?;
        scan_all(self, Tree::MpuUploads, |k, v| {
            tick(progress, &mut seen_rows);
            if let Err(e) = record::decode::<Upload>("upload", v) {
                let fix = Some(Fix::DelRecord(Tree::MpuUploads, k.to_vec()));
                s.problem(ProblemKind::UndecodableRecord, format!("upload {}: {e}", hex::encode(k)), None, None, fix);
            }
            Ok(())
        })?;

        // Object metadata.
        let mut objmeta: HashSet<u64> = HashSet::new();
        scan_all(self, Tree::ObjMeta, |k, v| {
            tick(progress, &mut seen_rows);
            let del = Some(Fix::DelRecord(Tree::ObjMeta, k.to_vec()));
            let Some(ino) = be_u64(k) else {
                s.problem(ProblemKind::UndecodableRecord, format!("objmeta key {}", hex::encode(k)), None, None, del);
                return Ok(());
            };
            if let Err(e) = record::decode::<ObjMeta>("objmeta", v) {
                s.problem(ProblemKind::UndecodableRecord, format!("objmeta of inode {ino}: {e}"), Some(ino), None, del);
                return Ok(());
            }
            objmeta.insert(ino);
            match s.inodes.get(&ino) {
                None => s.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("object metadata of missing inode {ino}"),
                    Some(ino),
                    None,
                    del,
                ),
                Some(n) if !n.has(FLAG_HAS_OBJMETA) => s.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("inode {ino} has object metadata but not the flag"),
                    Some(ino),
                    None,
                    Some(Fix::ObjmetaFlag { ino, set: true }),
                ),
                Some(_) => {}
            }
            Ok(())
        })?;

        // Per-inode counts.
        let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let n = s.inodes[&ino];
            if n.has(FLAG_HAS_OBJMETA) && !objmeta.contains(&ino) {
                s.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("inode {ino} is flagged with object metadata it does not have"),
                    Some(ino),
                    None,
                    Some(Fix::ObjmetaFlag { ino, set: false }),
                );
            }
            match n.kind {
                Kind::Dir => {
                    let e = entries.get(&ino).copied().unwrap_or(0);
                    let nlink = 2 + subdirs.get(&ino).copied().unwrap_or(0);
                    let next_cookie = n.next_cookie.max(max_cookie.get(&ino).map_or(3, |c| c + 1));
                    let fix = Fix::DirCounts { ino, entries: e, nlink, next_cookie };
                    if e != n.entries || n.size != n.entries {
                        s.problem(
                            ProblemKind::ChildCount,
                            format!("directory {ino} counts {} entries (size {}), has {e}", n.entries, n.size),
                            Some(ino),
                            None,
                            Some(fix.clone()),
                        );
                    }
                    if n.nlink != nlink {
                        s.problem(
                            ProblemKind::LinkCount,
                            format!("directory {ino} nlink {} should be {nlink}", n.nlink),
                            Some(ino),
                            None,
                            Some(fix.clone()),
                        );
                    }
                    if next_cookie != n.next_cookie {
                        s.problem(
                            ProblemKind::ChildCount,
                            format!("directory {ino} next cookie {} is not past its entries' cookies", n.next_cookie),
                            Some(ino),
                            None,
                            Some(fix),
                        );
                    }
                    if ino != ROOT_INO {
                        if !s.inodes.contains_key(&n.parent) {
                            s.problem(
                                ProblemKind::DentryMismatch,
                                format!("directory {ino} has missing parent {}", n.parent),
                                Some(ino),
                                None,
                                None,
                            );
                        }
                        if !s.dir_names.contains_key(&ino) {
                            s.problem(
                                ProblemKind::UnnamedInode,
                                format!("directory {ino} is not named by any entry"),
                                Some(ino),
                                None,
                                None,
                            );
                        }
                    }
                }
                Kind::File | Kind::Symlink if n.has(FLAG_STAGING) => {
                    if !part_inodes.contains(&ino) && !orphans.contains(&ino) {
                        s.problem(
                            ProblemKind::BadUpload,
                            format!("staging inode {ino} is used by no multipart part"),
                            Some(ino),
                            None,
                            Some(Fix::Orphanize { ino }),
                        );
                    }
                }
                Kind::File | Kind::Symlink => {
                    let l = links.get(&ino).copied().unwrap_or(0);
                    if l > 0 && l != n.nlink {
                        s.problem(
                            ProblemKind::LinkCount,
                            format!("inode {ino} nlink {} but {l} names", n.nlink),
                            Some(ino),
                            None,
                            Some(Fix::Nlink { ino, nlink: l }),
                        );
                    } else if l == 0 && !orphans.contains(&ino) {
                        // nlink 0: an unlink whose orphan record is lost; the
                        // file was meant to go. Otherwise its data is kept.
                        let fix = if n.nlink == 0 { Fix::Orphanize { ino } } else { Fix::Salvage { ino } };
                        s.problem(
                            ProblemKind::UnnamedInode,
                            format!(
                                "inode {ino} (nlink {}, {} bytes) has no name and is not being reaped",
                                n.nlink, n.size
                            ),
                            Some(ino),
                            None,
                            Some(fix),
                        );
                    }
                }
            }
        }

        // Extents.
        let mut need: HashMap<u64, u64> = HashMap::new();
        let mut last_end: Option<(u64, u64)> = None;
        scan_all(self, Tree::Extents, |k, v| {
            tick(progress, &mut seen_rows);
            if k.len() != 16 {
                let fix = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
                s.problem(ProblemKind::UndecodableRecord, format!("extent key {}", hex::encode(k)), None, None, fix);
                return Ok(());
            }
            let (ino, off) = keys::unpair(k);
            let e: Extent = match record::decode("extent", v) {
                Ok(e) => e,
                Err(err) => {
                    s.bad_inodes.entry(ino).or_insert_with(|| format!("undecodable extent at offset {off}"));
                    let fix = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
                    s.problem(
                        ProblemKind::UndecodableRecord,
                        format!("extent {ino}@{off}: {err}"),
                        Some(ino),
                        None,
                        fix,
                    );
                    return Ok(());
                }
            };
            s.report.extents += 1;
            *s.refs.entry(e.chunk).or_default() += 1;
            let end = e.chunk_off as u64 + e.len as u64;
            let nd = need.entry(e.chunk).or_default();
            *nd = (*nd).max(end);
            let del = Some(Fix::DelRecord(Tree::Extents, k.to_vec()));
            match s.inodes.get(&ino).copied() {
                None => s.problem(
                    ProblemKind::BadExtent,
                    format!("extent {ino}@{off} of missing inode"),
                    Some(ino),
                    Some(e.chunk),
                    del,
                ),
                Some(_) if e.len == 0 => s.problem(
                    ProblemKind::BadExtent,
                    format!("extent {ino}@{off} is empty"),
                    Some(ino),
                    Some(e.chunk),
                    del,
                ),
                Some(n) if off + e.len as u64 > n.size && !n.has(FLAG_STAGING) && n.nlink > 0 => s.problem(
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
                    s.bad_inodes.entry(ino).or_insert_with(|| format!("overlapping extents at offset {off}"));
                    s.problem(
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
        s.report.chunks_referenced = s.refs.len() as u64;

        // Reference counts and the GC queue.
        let mut gc_queued: HashSet<u64> = HashSet::new();
        scan_all(self, Tree::GcChunks, |k, _| {
            tick(progress, &mut seen_rows);
            if k.len() == 16 {
                gc_queued.insert(keys::unpair(k).1);
            } else {
                let fix = Some(Fix::DelRecord(Tree::GcChunks, k.to_vec()));
                s.problem(ProblemKind::UndecodableRecord, format!("gc_chunks key {}", hex::encode(k)), None, None, fix);
            }
            Ok(())
        })?;
        let mut counted: HashMap<u64, u64> = HashMap::new();
        scan_all(self, Tree::ChunkRefs, |k, v| {
            tick(progress, &mut seen_rows);
            let del = Some(Fix::DelRecord(Tree::ChunkRefs, k.to_vec()));
            match (be_u64(k), record::decode::<ChunkRef>("chunk_ref", v)) {
                (Some(c), Ok(r)) => {
                    counted.insert(c, r.count);
                }
                (c, Err(e)) => s.problem(
                    ProblemKind::UndecodableRecord,
                    format!("chunk_refs {}: {e}", hex::encode(k)),
                    None,
                    c,
                    del,
                ),
                (None, Ok(_)) => s.problem(
                    ProblemKind::UndecodableRecord,
                    format!("chunk_refs key {}", hex::encode(k)),
                    None,
                    None,
                    del,
                ),
            }
            Ok(())
        })?;
        let refs = s.refs.clone();
        for (&chunk, &n) in &refs {
            if counted.get(&chunk) != Some(&n) {
                let says = counted.get(&chunk).map_or("no count".to_string(), |c| format!("a count of {c}"));
                s.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} is used by {n} extents but has {says}"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: n }),
                );
            }
        }
        let mut counted_sorted: Vec<(u64, u64)> = counted.iter().map(|(&c, &n)| (c, n)).collect();
        counted_sorted.sort_unstable();
        for (chunk, n) in counted_sorted {
            if refs.contains_key(&chunk) {
                continue;
            }
            if n > 0 {
                s.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} has a count of {n} but no extent uses it"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: 0 }),
                );
            } else if !gc_queued.contains(&chunk) {
                s.problem(
                    ProblemKind::RefcountMismatch,
                    format!("chunk {chunk:016x} has a count of 0 but is not queued for GC"),
                    None,
                    Some(chunk),
                    Some(Fix::Refcount { chunk, count: 0 }),
                );
            }
        }

        // Files under chunks/.
        let mut sizes: HashMap<u64, u64> = HashMap::new();
        if depth.list_files {
            progress(FsckProgress::Phase { name: "chunk files", total: 0, unit: "files" });
            let now = SystemTime::now();
            let listing = self.chunks.list()?;
            for c in listing {
                progress(FsckProgress::Advance(1));
                s.report.chunk_files += 1;
                s.report.chunk_file_bytes += c.size_bytes;
                let age = now.duration_since(c.modified).unwrap_or(Duration::ZERO);
                let old = age >= opts.grace;
                match c.id {
                    None => {
                        s.stray_files += 1;
                        if old {
                            s.problem(
                                ProblemKind::StrayFile,
                                format!("{} is not a chunk ({} s old)", c.path.display(), age.as_secs()),
                                None,
                                None,
                                Some(Fix::DelFile { path: c.path.clone(), chunk: None }),
                            );
                        } else {
                            s.report.chunks_unreferenced_ok += 1;
                        }
                    }
                    Some(id) => {
                        sizes.insert(id, c.size_bytes);
                        if refs.contains_key(&id) {
                            continue;
                        }
                        s.unreferenced_files += 1;
                        let staging = self.staging.lock().unwrap_or_else(|p| p.into_inner()).contains(&id);
                        if counted.contains_key(&id) || staging || !old {
                            s.report.chunks_unreferenced_ok += 1;
                        } else {
                            s.problem(
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
        }

        // Referenced chunks: verify (or at least find) each.
        let total: u64 = refs.keys().map(|c| sizes.get(c).copied().unwrap_or(0)).sum();
        progress(FsckProgress::Phase {
            name: if depth.verify { "verifying chunks" } else { "finding chunks" },
            total,
            unit: "bytes",
        });
        for &chunk in refs.keys() {
            let res = if depth.verify {
                self.chunks.verify(chunk).map(|info| Some(info.len))
            } else if self.chunks.path_of(chunk).exists() {
                Ok(None)
            } else {
                Err(chunkstore::ChunkError::NotFound(chunk))
            };
            progress(FsckProgress::Advance(sizes.get(&chunk).copied().unwrap_or(0)));
            let why = match res {
                Ok(Some(len)) => {
                    s.report.chunks_verified += 1;
                    s.report.bytes_verified += len;
                    let needed = need.get(&chunk).copied().unwrap_or(0);
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
                s.bad_chunks.insert(chunk, detail.clone());
                s.problem(kind, detail, None, Some(chunk), Some(Fix::Quarantine));
            }
        }
        Ok(s)
    }

    /// Finds the files that damaged chunks belong to, and names every
    /// damaged inode in its problems.
    fn fsck_name_damage(&self, s: &mut Scan) -> NsResult<()> {
        if !s.bad_chunks.is_empty() {
            let bad = &s.bad_chunks;
            let mut found: Vec<(u64, u64)> = Vec::new();
            scan_all(self, Tree::Extents, |k, v| {
                if k.len() == 16 {
                    if let Ok(e) = record::decode::<Extent>("extent", v) {
                        if bad.contains_key(&e.chunk) {
                            found.push((keys::unpair(k).0, e.chunk));
                        }
                    }
                }
                Ok(())
            })?;
            for (ino, chunk) in found {
                let why = s.bad_chunks[&chunk].clone();
                s.bad_inodes.entry(ino).or_insert(why);
            }
        }
        if s.bad_inodes.is_empty() {
            return Ok(());
        }
        let names = self.fsck_names(&s.bad_inodes.keys().copied().collect(), &s.dir_names)?;
        let mut chunk_files: HashMap<u64, Vec<String>> = HashMap::new();
        if !s.bad_chunks.is_empty() {
            let bad = &s.bad_chunks;
            scan_all(self, Tree::Extents, |k, v| {
                if k.len() == 16 {
                    if let Ok(e) = record::decode::<Extent>("extent", v) {
                        if bad.contains_key(&e.chunk) {
                            let ino = keys::unpair(k).0;
                            let list = chunk_files.entry(e.chunk).or_default();
                            let label =
                                names.get(&ino).and_then(|n| n.first().cloned()).unwrap_or(format!("inode {ino}"));
                            if list.len() < NAMES_PER_CHUNK_MAX && !list.contains(&label) {
                                list.push(label);
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }
        for p in &mut s.report.problems {
            if let Some(ino) = p.ino.filter(|i| s.bad_inodes.contains_key(i)) {
                p.paths = names.get(&ino).cloned().unwrap_or_default();
            }
            if let Some(c) = p.chunk.filter(|c| s.bad_chunks.contains_key(c)) {
                if matches!(p.kind, ProblemKind::ChunkMissing | ProblemKind::ChunkCorrupt) {
                    p.paths = chunk_files.get(&c).cloned().unwrap_or_default();
                }
            }
        }
        Ok(())
    }

    /// Paths (`bucket/dir/name`) of the given non-directory inodes.
    fn fsck_names(
        &self,
        wanted: &HashSet<u64>,
        dir_names: &HashMap<u64, (u64, Vec<u8>)>,
    ) -> NsResult<HashMap<u64, Vec<String>>> {
        let mut out: HashMap<u64, Vec<String>> = HashMap::new();
        scan_all(self, Tree::Dentries, |k, v| {
            if k.len() < 9 {
                return Ok(());
            }
            if let Ok(d) = record::decode::<Dentry>("dentry", v) {
                if wanted.contains(&d.ino) && d.kind != Kind::Dir {
                    let parent = be_u64(&k[..8]).expect("8 bytes");
                    let mut path = dir_path(parent, dir_names);
                    path.push(show(&k[8..]));
                    out.entry(d.ino).or_default().push(path.join("/"));
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Applies the fixes of `first` in three rounds (see the module
    /// documentation) and checks again.
    fn fsck_repair(
        &self,
        opts: &FsckOptions,
        first: Scan,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<FsckReport> {
        let qdir = self.quarantine_dir();
        let mut report = first.report;
        let light = Depth { verify: false, list_files: false };
        // Round 1: records.
        progress(FsckProgress::Phase { name: "repairing records", total: 0, unit: "fixes" });
        for p in report.problems.iter_mut() {
            let Some(fix) = p.fix.clone().filter(|f| f.round() == 1) else { continue };
            p.repair = Some(self.fsck_fix_record(&qdir, &fix, &p.detail)?);
            progress(FsckProgress::Advance(1));
        }
        self.commit_barrier()?;
        // Round 2: counts, from a fresh scan of the fixed records.
        progress(FsckProgress::Phase { name: "repairing counts", total: 0, unit: "fixes" });
        let second = self.fsck_scan(opts, light, &mut |_| {})?;
        let gc_at = self.gc_at_ms(self.now());
        let mut done: HashMap<(ProblemKind, Option<u64>, Option<u64>), String> = HashMap::new();
        let mut salvaged: HashSet<u64> = HashSet::new();
        for p in &second.report.problems {
            let Some(fix) = p.fix.clone().filter(|f| f.round() == 2) else { continue };
            let what = match fix {
                Fix::Salvage { ino } => {
                    salvaged.insert(ino);
                    self.fsck_salvage(&qdir, ino, &p.detail)?
                }
                Fix::Orphanize { .. } => {
                    self.fsck_fix_count(&fix, gc_at)?;
                    "queued for reaping".into()
                }
                _ => {
                    self.fsck_fix_count(&fix, gc_at)?;
                    "recounted".into()
                }
            };
            done.insert((p.kind, p.ino, p.chunk), what);
            progress(FsckProgress::Advance(1));
        }
        for p in report.problems.iter_mut() {
            if p.repair.is_none() && p.fix.as_ref().is_some_and(|f| f.round() == 2) {
                p.repair = done.get(&(p.kind, p.ino, p.chunk)).cloned();
            }
        }
        // Problems the round-1 fixes made appear (an entry deleted leaves
        // its file unnamed): reported with what was done.
        let known: HashSet<(ProblemKind, Option<u64>, Option<u64>)> =
            report.problems.iter().map(|p| (p.kind, p.ino, p.chunk)).collect();
        for p in &second.report.problems {
            if let Some(what) = done.get(&(p.kind, p.ino, p.chunk)) {
                if !known.contains(&(p.kind, p.ino, p.chunk)) && report.problems.len() < PROBLEMS_MAX {
                    let mut found = p.clone();
                    found.detail = format!("{} (after the record repairs)", found.detail);
                    found.repair = Some(what.clone());
                    report.problems.push(found);
                }
            }
        }
        // Count problems the round-1 fixes already resolved.
        let still: HashSet<(ProblemKind, Option<u64>, Option<u64>)> =
            second.report.problems.iter().map(|p| (p.kind, p.ino, p.chunk)).collect();
        for p in report.problems.iter_mut() {
            if p.repair.is_none()
                && p.fix.as_ref().is_some_and(|f| f.round() == 2)
                && !still.contains(&(p.kind, p.ino, p.chunk))
            {
                p.repair = Some("resolved by the record repairs".into());
            }
        }
        self.commit_barrier()?;
        // Round 3: damaged data, then leftovers.
        progress(FsckProgress::Phase { name: "quarantining", total: 0, unit: "fixes" });
        let mut outcome: HashMap<u64, String> = HashMap::new();
        let names = self.fsck_names(&first.bad_inodes.keys().copied().collect(), &first.dir_names)?;
        for (&ino, why) in first.bad_inodes.iter().filter(|(i, _)| !salvaged.contains(i)) {
            let done = self.fsck_quarantine_inode(&qdir, ino, why, names.get(&ino).cloned().unwrap_or_default())?;
            outcome.insert(ino, done);
            progress(FsckProgress::Advance(1));
        }
        let mut moved: HashMap<u64, String> = HashMap::new();
        for (&chunk, why) in &first.bad_chunks {
            let dest = self.chunks.quarantine(chunk, &qdir.join("chunks"))?;
            let rec = QuarantineRecord {
                what: "chunk".into(),
                chunk: Some(chunk),
                moved_to: dest.as_ref().map(|d| d.display().to_string()),
                ..QuarantineRecord::new(why)
            };
            append_quarantine(&qdir, &rec)?;
            moved.insert(
                chunk,
                match dest {
                    Some(d) => format!("moved to {}", d.display()),
                    None => "no file to move".into(),
                },
            );
            progress(FsckProgress::Advance(1));
        }
        self.commit_barrier()?;
        let reaped = self.reap_orphans()?;
        let mut deleted: HashSet<PathBuf> = HashSet::new();
        for p in &report.problems {
            if let Some(Fix::DelFile { path, chunk }) = &p.fix {
                // Re-check: never delete a chunk something now references.
                let referenced = match chunk {
                    Some(c) => self.meta.get(Tree::ChunkRefs, &keys::id(*c))?.is_some() || first.refs.contains_key(c),
                    None => false,
                };
                if !referenced && self.chunks.remove_path(path)? {
                    deleted.insert(path.clone());
                }
            }
        }
        for p in report.problems.iter_mut() {
            match p.fix.as_ref() {
                Some(Fix::Reap) => p.repair = Some(format!("reaped ({reaped} unlinked inodes reaped)")),
                Some(Fix::DelFile { path, .. }) if deleted.contains(path) => p.repair = Some("deleted".into()),
                Some(Fix::Quarantine) => {
                    let mut parts = Vec::new();
                    if let Some(c) = p.chunk {
                        if let Some(m) = moved.get(&c) {
                            parts.push(format!("chunk {m}"));
                        }
                        let files: Vec<&String> = first
                            .bad_inodes
                            .iter()
                            .filter(|(_, w)| first.bad_chunks.get(&c) == Some(*w))
                            .map(|(i, _)| &outcome[i])
                            .collect();
                        if !files.is_empty() {
                            parts.push(format!(
                                "{} file(s): {}",
                                files.len(),
                                files.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
                            ));
                        }
                    } else if let Some(i) = p.ino {
                        if let Some(o) = outcome.get(&i) {
                            parts.push(o.clone());
                        }
                    }
                    p.repair = Some(if parts.is_empty() { "quarantined".into() } else { parts.join("; ") });
                }
                _ => {}
            }
            if p.repair.is_none() {
                if let Some(ino) = p.ino.filter(|i| outcome.contains_key(i)) {
                    p.repair = Some(outcome[&ino].clone());
                }
            }
        }
        self.commit_barrier()?;
        // Final look (chunks were verified by the first scan).
        let last = self.fsck_scan(opts, Depth { verify: false, list_files: true }, &mut |_| {})?;
        report.remaining = last.report.problems;
        Ok(report)
    }

    /// Round 1 fix; returns what was done.
    fn fsck_fix_record(&self, qdir: &Path, fix: &Fix, why: &str) -> NsResult<String> {
        match fix {
            Fix::DelRecord(tree, key) => {
                let raw = self.meta.get(*tree, key)?;
                if let Some(raw) = &raw {
                    let rec = QuarantineRecord {
                        what: "record".into(),
                        record: Some(format!("{}/{}", tree.name(), hex::encode(key))),
                        raw_hex: Some(hex::encode(&raw[..raw.len().min(RAW_RECORD_BYTES_MAX)])),
                        ..QuarantineRecord::new(why)
                    };
                    append_quarantine(qdir, &rec)?;
                }
                self.txn(|tx| tx.del(*tree, key))?;
                Ok(format!("deleted the {} record (saved in the quarantine report)", tree.name()))
            }
            Fix::DelDentry { key, parent, cookie, name } => {
                if let Some(raw) = self.meta.get(Tree::Dentries, key)? {
                    let rec = QuarantineRecord {
                        what: "record".into(),
                        record: Some(format!("dentries/{}", hex::encode(key))),
                        raw_hex: Some(hex::encode(&raw)),
                        ..QuarantineRecord::new(why)
                    };
                    append_quarantine(qdir, &rec)?;
                }
                self.txn(|tx| {
                    tx.del(Tree::Dentries, key)?;
                    if let Some(c) = cookie {
                        let sk = keys::pair(*parent, *c);
                        if tx.get::<DirScan>(Tree::Dirscan, &sk).ok().flatten().is_some_and(|r| &r.name == name) {
                            tx.del(Tree::Dirscan, &sk)?;
                        }
                    }
                    Ok(())
                })?;
                Ok("deleted the entry".into())
            }
            Fix::PutDirscan { parent, cookie, scan } => {
                self.txn(|tx| {
                    let k = keys::pair(*parent, *cookie);
                    if tx.get::<DirScan>(Tree::Dirscan, &k).ok().flatten().is_none() {
                        tx.put(Tree::Dirscan, &k, scan)?;
                    }
                    Ok(())
                })?;
                Ok("rebuilt the readdir row".into())
            }
            Fix::ObjmetaFlag { ino, set } => {
                self.txn(|tx| {
                    if let Some(mut n) = tx.get::<Inode>(Tree::Inodes, &keys::id(*ino))? {
                        if *set {
                            n.flags |= FLAG_HAS_OBJMETA;
                        } else {
                            n.flags &= !FLAG_HAS_OBJMETA;
                        }
                        tx.put_inode(&n)?;
                    }
                    Ok(())
                })?;
                Ok(if *set { "flag set" } else { "flag cleared" }.into())
            }
            _ => unreachable!("round 1 fixes only"),
        }
    }

    /// Round 2 fix.
    fn fsck_fix_count(&self, fix: &Fix, gc_at_ms: u64) -> NsResult<()> {
        match *fix {
            Fix::DirCounts { ino, entries, nlink, next_cookie } => self.txn(|tx| {
                if let Some(mut n) = tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? {
                    n.entries = entries;
                    n.size = entries;
                    n.nlink = nlink;
                    n.next_cookie = next_cookie;
                    tx.put_inode(&n)?;
                }
                Ok(())
            }),
            Fix::Nlink { ino, nlink } => self.txn(|tx| {
                if let Some(mut n) = tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? {
                    n.nlink = nlink;
                    tx.put_inode(&n)?;
                }
                Ok(())
            }),
            Fix::Refcount { chunk, count } => self.txn(|tx| {
                tx.put(Tree::ChunkRefs, &keys::id(chunk), &ChunkRef { count })?;
                if count == 0 {
                    tx.put(Tree::GcChunks, &keys::pair(gc_at_ms, chunk), &())?;
                }
                Ok(())
            }),
            Fix::Orphanize { ino } => {
                let since: Nanos = self.now();
                self.txn(|tx| {
                    if let Some(mut n) = tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? {
                        n.nlink = 0;
                        tx.put_inode(&n)?;
                        tx.put(Tree::Orphans, &keys::id(ino), &Orphan { since })?;
                    }
                    Ok(())
                })
            }
            _ => unreachable!("round 2 fixes only"),
        }
    }

    /// Copies the bytes of an inode no entry names (a file, or a symlink's
    /// target) into `quarantine/lost/<ino>`, as far as its chunks verify,
    /// records it in the quarantine report and queues the inode for
    /// reaping. Returns what was done.
    fn fsck_salvage(&self, qdir: &Path, ino: u64, why: &str) -> NsResult<String> {
        use std::os::unix::fs::FileExt;
        let Some(v) = self.meta.get(Tree::Inodes, &keys::id(ino))? else {
            return Ok(format!("inode {ino} already gone"));
        };
        let inode: Inode = record::decode("inode", &v)?;
        let io = |e: std::io::Error| NsError::Internal(format!("salvaging inode {ino} into {}: {e}", qdir.display()));
        let lost = qdir.join("lost");
        std::fs::create_dir_all(&lost).map_err(io)?;
        let mut dest = lost.join(ino.to_string());
        if inode.kind == Kind::Symlink {
            dest.set_extension("symlink-target");
        }
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&dest).map_err(io)?;
        let mut unreadable = Vec::new();
        if inode.kind == Kind::Symlink {
            f.write_all_at(&inode.target, 0).map_err(io)?;
        } else {
            let mut from = keys::pair(ino, 0).to_vec();
            let hi = keys::pair(ino, u64::MAX);
            let mut first = true;
            loop {
                let lo = if first { Bound::Included(&from[..]) } else { Bound::Excluded(&from[..]) };
                let rows = self.meta.scan(
                    Tree::Extents,
                    (lo, Bound::Included(&hi[..])),
                    SCAN_PAGE_ROWS,
                    Direction::Forward,
                )?;
                first = false;
                for (k, v) in &rows {
                    let (_, off) = keys::unpair(k);
                    let Ok(e) = record::decode::<Extent>("extent", v) else {
                        unreadable.push(off);
                        continue;
                    };
                    let mut buf = vec![0u8; e.len as usize];
                    match self.chunks.read(e.chunk, e.chunk_off as u64, &mut buf) {
                        Ok(()) => f.write_all_at(&buf, off).map_err(io)?,
                        Err(_) => unreadable.push(off),
                    }
                }
                match rows.last() {
                    Some((k, _)) if rows.len() == SCAN_PAGE_ROWS => from = k.clone(),
                    _ => break,
                }
            }
            f.set_len(inode.size).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        std::fs::File::open(&lost).and_then(|d| d.sync_all()).map_err(io)?;
        let note = if unreadable.is_empty() {
            String::new()
        } else {
            format!("; extents at offsets {unreadable:?} could not be read and are zeros")
        };
        let rec = QuarantineRecord {
            what: "lost".into(),
            ino: Some(ino),
            moved_to: Some(dest.display().to_string()),
            ..QuarantineRecord::new(&format!("{why}{note}"))
        };
        append_quarantine(qdir, &rec)?;
        self.fsck_fix_count(&Fix::Orphanize { ino }, 0)?;
        Ok(format!("bytes copied to {}{note}; inode queued for reaping", dest.display()))
    }

    /// Unlinks a file whose data is damaged from every name (or drops the
    /// multipart parts of a staging inode), records it in the quarantine
    /// report first, and queues it for reaping. Returns what was done.
    fn fsck_quarantine_inode(&self, qdir: &Path, ino: u64, why: &str, paths: Vec<String>) -> NsResult<String> {
        let Some(v) = self.meta.get(Tree::Inodes, &keys::id(ino))? else {
            return Ok(format!("inode {ino} already gone"));
        };
        let Ok(inode) = record::decode::<Inode>("inode", &v) else {
            return Ok(format!("inode {ino} does not decode"));
        };
        if inode.kind == Kind::Dir {
            return Ok(format!("inode {ino} is a directory; left alone"));
        }
        let staging = inode.has(FLAG_STAGING);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut dentries: Vec<(u64, Vec<u8>, Dentry)> = Vec::new();
        if staging {
            scan_all(self, Tree::MpuParts, |k, v| {
                if record::decode::<Part>("part", v).is_ok_and(|p| p.staging_ino == ino) {
                    parts.push(k.to_vec());
                }
                Ok(())
            })?;
        } else {
            scan_all(self, Tree::Dentries, |k, v| {
                if k.len() >= 9 {
                    if let Ok(d) = record::decode::<Dentry>("dentry", v) {
                        if d.ino == ino && d.kind != Kind::Dir {
                            dentries.push((be_u64(&k[..8]).expect("8"), k[8..].to_vec(), d));
                        }
                    }
                }
                Ok(())
            })?;
        }
        let rec = QuarantineRecord {
            what: if staging { "part" } else { "file" }.into(),
            paths: paths.clone(),
            ino: Some(ino),
            record: (!parts.is_empty()).then(|| parts.iter().map(hex::encode).collect::<Vec<_>>().join(",")),
            ..QuarantineRecord::new(why)
        };
        append_quarantine(qdir, &rec)?;
        let now = self.now();
        self.txn(|tx| {
            for k in &parts {
                tx.del(Tree::MpuParts, k)?;
            }
            for (parent, name, d) in &dentries {
                if let Some(mut dir) = tx.get::<Inode>(Tree::Inodes, &keys::id(*parent))? {
                    if dir.entries > 0 {
                        tx.remove_entry(&mut dir, name, d, now)?;
                        tx.put_inode(&dir)?;
                        continue;
                    }
                }
                tx.del(Tree::Dentries, &keys::dentry(*parent, name, false))?;
                tx.del(Tree::Dirscan, &keys::pair(*parent, d.cookie))?;
            }
            if let Some(mut n) = tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? {
                n.nlink = 0;
                n.ctime = now;
                tx.put_inode(&n)?;
                tx.put(Tree::Orphans, &keys::id(ino), &Orphan { since: now })?;
            }
            Ok(())
        })?;
        Ok(if staging {
            format!("multipart part inode {ino} dropped ({} part record(s)) and quarantined", parts.len())
        } else if paths.is_empty() {
            format!("inode {ino} unlinked and quarantined")
        } else {
            format!("{} (inode {ino}) unlinked and quarantined", paths.join(", "))
        })
    }
}

impl QuarantineRecord {
    fn new(problem: &str) -> Self {
        let at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        QuarantineRecord {
            v: QUARANTINE_RECORD_VERSION,
            at_unix_secs: at,
            what: String::new(),
            paths: Vec::new(),
            ino: None,
            chunk: None,
            moved_to: None,
            record: None,
            raw_hex: None,
            problem: problem.to_string(),
        }
    }
}

/// `bucket/dir/...` components of a directory, from the names collected.
fn dir_path(mut dir: u64, dir_names: &HashMap<u64, (u64, Vec<u8>)>) -> Vec<String> {
    let mut parts = Vec::new();
    while dir != ROOT_INO && parts.len() < PATH_DEPTH_MAX {
        match dir_names.get(&dir) {
            Some((parent, name)) => {
                parts.push(show(name));
                dir = *parent;
            }
            None => {
                parts.push(format!("<directory {dir}>"));
                break;
            }
        }
    }
    parts.reverse();
    parts
}

/// Appends one line to the quarantine report and fsyncs it, before the
/// action it describes, so an interrupted repair is never silent.
fn append_quarantine(qdir: &Path, rec: &QuarantineRecord) -> NsResult<()> {
    let io = |e: std::io::Error| NsError::Internal(format!("quarantine report in {}: {e}", qdir.display()));
    std::fs::create_dir_all(qdir).map_err(io)?;
    let path = qdir.join(QUARANTINE_REPORT);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    let mut line = serde_json::to_vec(rec).map_err(|e| NsError::Internal(e.to_string()))?;
    line.push(b'\n');
    f.write_all(&line).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::File::open(qdir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// The newest quarantine records (lines that do not parse are skipped).
fn read_quarantine(qdir: &Path) -> NsResult<(Vec<QuarantineRecord>, u64)> {
    let path = qdir.join(QUARANTINE_REPORT);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(NsError::Internal(format!("reading {}: {e}", path.display()))),
    };
    let mut out = std::collections::VecDeque::new();
    let mut omitted = 0;
    for line in std::io::BufReader::new(f).split(b'\n') {
        let line = line.map_err(|e| NsError::Internal(format!("reading {}: {e}", path.display())))?;
        if let Ok(r) = serde_json::from_slice::<QuarantineRecord>(&line) {
            out.push_back(r);
            if out.len() > QUARANTINE_RECORDS_MAX {
                out.pop_front();
                omitted += 1;
            }
        }
    }
    Ok((out.into(), omitted))
}

/// Raw record access for tests that damage metadata on purpose (feature
/// `fault-injection`; never enabled in the gateway's own build).
#[cfg(feature = "fault-injection")]
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

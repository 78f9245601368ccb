//! The one state every scan module fills: what a scan learnt ([`Scan`],
//! kept for naming and repair) and the tallies the later trees are checked
//! against ([`ScanState`], dropped when the scan ends).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::clock::Nanos;
use crate::fsck::report::{Fix, FsckOptions, FsckProblem, FsckProgress, FsckReport, ProblemKind, PROBLEMS_MAX};
use crate::record::Kind;

/// Compact per-inode facts kept during a scan.
#[derive(Clone, Copy, Debug)]
pub(in crate::fsck) struct InodeSum {
    pub(in crate::fsck) kind: Kind,
    pub(in crate::fsck) nlink: u32,
    pub(in crate::fsck) size: u64,
    pub(in crate::fsck) parent: u64,
    pub(in crate::fsck) entries: u64,
    pub(in crate::fsck) next_cookie: u64,
    pub(in crate::fsck) flags: u8,
}

impl InodeSum {
    pub(in crate::fsck) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// How deep a scan goes.
#[derive(Clone, Copy)]
pub(in crate::fsck) struct Depth {
    /// Read and verify every referenced chunk (else only check existence).
    pub(in crate::fsck) verify: bool,
    /// List `chunks/` for leftovers.
    pub(in crate::fsck) list_files: bool,
}

/// Everything one scan learnt.
#[derive(Default)]
pub(in crate::fsck) struct Scan {
    pub(in crate::fsck) report: FsckReport,
    pub(in crate::fsck) inodes: HashMap<u64, InodeSum>,
    /// Directory ino -> (parent, name), for paths.
    pub(in crate::fsck) dir_names: HashMap<u64, (u64, Vec<u8>)>,
    /// Chunk -> extents referencing it.
    pub(in crate::fsck) refs: BTreeMap<u64, u64>,
    /// Damaged chunks -> why.
    pub(in crate::fsck) bad_chunks: BTreeMap<u64, String>,
    /// Inodes whose data is damaged -> why.
    pub(in crate::fsck) bad_inodes: BTreeMap<u64, String>,
    /// Chunk files that no extent references (the old integrity report's
    /// figure), and stray files.
    pub(in crate::fsck) unreferenced_files: u64,
    pub(in crate::fsck) stray_files: u64,
}

/// A scan in progress: the options, what it has learnt so far, and the
/// tallies one tree's scan leaves for a later one's checks. The scan
/// modules run in a fixed order (see `scan/mod.rs`); each field says which
/// one fills it.
pub(super) struct ScanState<'a> {
    pub(super) opts: &'a FsckOptions,
    pub(super) depth: Depth,
    /// The clock's time when the scan started (orphan ages).
    pub(super) now_ns: Nanos,
    /// Metadata rows seen, for progress.
    pub(super) seen_rows: u64,
    pub(super) found: Scan,
    /// dentries: directory -> entries found in it.
    pub(super) entries: HashMap<u64, u64>,
    /// dentries: directory -> subdirectories found in it.
    pub(super) subdirs: HashMap<u64, u32>,
    /// dentries: directory -> highest cookie of its entries.
    pub(super) max_cookie: HashMap<u64, u64>,
    /// dentries: non-directory inode -> names found.
    pub(super) links: HashMap<u64, u32>,
    /// orphans: inodes queued for reaping.
    pub(super) orphans: HashSet<u64>,
    /// mpu_parts: staging inodes some part names.
    pub(super) part_inodes: HashSet<u64>,
    /// objmeta: inodes with an object metadata record.
    pub(super) objmeta: HashSet<u64>,
    /// extents: chunk -> bytes its extents need it to hold.
    pub(super) need: HashMap<u64, u64>,
    /// extents: files with remote extents (bytes only the upstream holds).
    pub(super) remote_extents: HashSet<u64>,
    /// gc_chunks: chunks queued for GC.
    pub(super) gc_queued: HashSet<u64>,
    /// chunk_refs: chunk -> stored reference count.
    pub(super) counted: HashMap<u64, u64>,
    /// chunk files: chunk -> file size in bytes.
    pub(super) sizes: HashMap<u64, u64>,
}

impl<'a> ScanState<'a> {
    pub(super) fn new(opts: &'a FsckOptions, depth: Depth, now_ns: Nanos) -> Self {
        let mut found = Scan::default();
        found.report.online = opts.online;
        found.report.repair = opts.repair;
        found.report.grace_secs = opts.grace.as_secs();
        ScanState {
            opts,
            depth,
            now_ns,
            seen_rows: 0,
            found,
            entries: HashMap::new(),
            subdirs: HashMap::new(),
            max_cookie: HashMap::new(),
            links: HashMap::new(),
            orphans: HashSet::new(),
            part_inodes: HashSet::new(),
            objmeta: HashSet::new(),
            need: HashMap::new(),
            remote_extents: HashSet::new(),
            gc_queued: HashSet::new(),
            counted: HashMap::new(),
            sizes: HashMap::new(),
        }
    }

    /// Records a problem (counted only beyond [`PROBLEMS_MAX`]).
    pub(super) fn problem(
        &mut self,
        kind: ProblemKind,
        detail: String,
        ino: Option<u64>,
        chunk: Option<u64>,
        fix: Option<Fix>,
    ) {
        let report = &mut self.found.report;
        if report.problems.len() >= PROBLEMS_MAX {
            report.problems_omitted += 1;
            return;
        }
        report.problems.push(FsckProblem { kind, detail, ino, chunk, paths: Vec::new(), repair: None, fix });
    }

    /// Record `k`/`v` of `tree` keyed by an inode number, decoded as a
    /// `what`; `None` (an undecodable record reported, deleted by repair)
    /// when either does not decode.
    pub(super) fn keyed_record<T: serde::de::DeserializeOwned>(
        &mut self,
        tree: crate::tree::Tree,
        what: &str,
        k: &[u8],
        v: &[u8],
    ) -> Option<(u64, T)> {
        match (be_u64(k), crate::record::decode::<T>(what, v)) {
            (Some(ino), Ok(r)) => Some((ino, r)),
            _ => {
                let fix = Some(Fix::DelRecord(tree, k.to_vec()));
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("{what} record {}", hex::encode(k)),
                    None,
                    None,
                    fix,
                );
                None
            }
        }
    }

    /// One more metadata row seen; progress advances every 1024.
    pub(super) fn tick(&mut self, progress: &mut dyn FnMut(FsckProgress)) {
        self.seen_rows += 1;
        if self.seen_rows.is_multiple_of(1024) {
            progress(FsckProgress::Advance(1024));
        }
    }
}

/// A big-endian u64 key, if it is 8 bytes.
pub(in crate::fsck) fn be_u64(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.try_into().ok()?))
}

/// A name for a human (lossy UTF-8).
pub(in crate::fsck) fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

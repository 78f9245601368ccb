//! Repair (offline only): applies the [`Fix`] each problem carries, in
//! three rounds, each from a fresh scan so that no fix relies on a count
//! an earlier fix changed (see the `fsck` module documentation):
//! 1. records: undecodable or dangling records deleted (bytes saved in the
//!    quarantine report), `dirscan` rows rebuilt, objmeta flags set;
//! 2. counts: directory and file link counts, entry counts and chunk
//!    reference counts set to what the records say; unnamed files
//!    salvaged into `quarantine/lost/` or queued for reaping;
//! 3. data: files whose bytes are damaged unlinked and recorded, damaged
//!    chunk files moved into the quarantine; then unlinked inodes reaped
//!    and old unreferenced files deleted.
//!
//! Invariant: repair never deletes intact, referenced data. A chunk file
//! goes only when neither an extent (first scan) nor a `chunk_refs` record
//! (read again just before) names it; a file is unlinked only when its
//! own bytes are damaged; each quarantine line is written before the
//! change it describes. A commit barrier ends every round.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::tree::Tree;

use super::quarantine::{append_quarantine, QuarantineRecord};
use super::report::{Fix, FsckOptions, FsckProgress, FsckReport, ProblemKind, PROBLEMS_MAX};
use super::scan::{be_u64, Depth, Scan};
use crate::clock::Nanos;
use crate::full_scan::scan_all;
use crate::record::{self, ChunkRef, Dentry, DirScan, Inode, Kind, Orphan, Part, FLAG_HAS_OBJMETA, FLAG_STAGING};
use crate::{keys, Namespace, NsResult};

/// Raw record bytes saved per quarantined record.
const RAW_RECORD_BYTES_MAX: usize = 4096;

/// A problem's identity across scans (its text may differ).
type ProblemId = (ProblemKind, Option<u64>, Option<u64>);

impl Namespace {
    /// Applies the fixes of `first` in three rounds (see the module
    /// documentation) and checks again.
    pub(super) fn fsck_repair(
        &self,
        opts: &FsckOptions,
        mut first: Scan,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<FsckReport> {
        let qdir = self.quarantine_dir();
        let mut report = std::mem::take(&mut first.report);
        self.repair_records(&qdir, &mut report, progress)?;
        let salvaged = self.repair_counts(opts, &qdir, &mut report, progress)?;
        self.repair_data(&qdir, &mut report, &first, &salvaged, progress)?;
        // Final look (chunks were verified by the first scan).
        let last = self.fsck_scan(opts, Depth { verify: false, list_files: true }, &mut |_| {})?;
        report.remaining = last.report.problems;
        Ok(report)
    }

    /// Round 1: records.
    fn repair_records(
        &self,
        qdir: &Path,
        report: &mut FsckReport,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<()> {
        progress(FsckProgress::Phase { name: "repairing records", total: 0, unit: "fixes" });
        for p in report.problems.iter_mut() {
            let Some(fix) = p.fix.clone().filter(|f| f.round() == 1) else { continue };
            p.repair = Some(self.fsck_fix_record(qdir, &fix, &p.detail)?);
            progress(FsckProgress::Advance(1));
        }
        self.commit_barrier()
    }

    /// Round 2: counts, from a fresh scan of the fixed records. Returns the
    /// inodes salvaged (round 3 leaves them alone).
    fn repair_counts(
        &self,
        opts: &FsckOptions,
        qdir: &Path,
        report: &mut FsckReport,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<HashSet<u64>> {
        progress(FsckProgress::Phase { name: "repairing counts", total: 0, unit: "fixes" });
        let light = Depth { verify: false, list_files: false };
        let second = self.fsck_scan(opts, light, &mut |_| {})?;
        let gc_at = self.gc_at_ms(self.now());
        let mut done: HashMap<ProblemId, String> = HashMap::new();
        let mut salvaged: HashSet<u64> = HashSet::new();
        for p in &second.report.problems {
            let Some(fix) = p.fix.clone().filter(|f| f.round() == 2) else { continue };
            let what = match fix {
                Fix::Salvage { ino } => {
                    salvaged.insert(ino);
                    self.fsck_salvage(qdir, ino, &p.detail)?
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
        let known: HashSet<ProblemId> = report.problems.iter().map(|p| (p.kind, p.ino, p.chunk)).collect();
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
        let still: HashSet<ProblemId> = second.report.problems.iter().map(|p| (p.kind, p.ino, p.chunk)).collect();
        for p in report.problems.iter_mut() {
            if p.repair.is_none()
                && p.fix.as_ref().is_some_and(|f| f.round() == 2)
                && !still.contains(&(p.kind, p.ino, p.chunk))
            {
                p.repair = Some("resolved by the record repairs".into());
            }
        }
        self.commit_barrier()?;
        Ok(salvaged)
    }

    /// Round 3: damaged data (first scan's damage sets), then leftovers.
    fn repair_data(
        &self,
        qdir: &Path,
        report: &mut FsckReport,
        first: &Scan,
        salvaged: &HashSet<u64>,
        progress: &mut dyn FnMut(FsckProgress),
    ) -> NsResult<()> {
        progress(FsckProgress::Phase { name: "quarantining", total: 0, unit: "fixes" });
        let mut outcome: HashMap<u64, String> = HashMap::new();
        let names = self.fsck_names(&first.bad_inodes.keys().copied().collect(), &first.dir_names)?;
        for (&ino, why) in first.bad_inodes.iter().filter(|(i, _)| !salvaged.contains(i)) {
            let done = self.fsck_quarantine_inode(qdir, ino, why, names.get(&ino).cloned().unwrap_or_default())?;
            outcome.insert(ino, done);
            progress(FsckProgress::Advance(1));
        }
        let mut moved: HashMap<u64, String> = HashMap::new();
        for (&chunk, why) in &first.bad_chunks {
            moved.insert(chunk, self.quarantine_chunk(qdir, chunk, why)?);
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
        label_round3(report, first, &Round3 { outcome, moved, reaped, deleted });
        self.commit_barrier()
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
        let Some(v) = self.meta.get(Tree::Inodes, &keys::id(ino))? else {
            return Ok(format!("inode {ino} already gone"));
        };
        let inode: Inode = record::decode("inode", &v)?;
        let (dest, unreadable) = self.copy_to_lost(qdir, ino, &inode)?;
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

/// What round 3 did, for the problems' `repair` text.
struct Round3 {
    /// Damaged inode -> what was done to it.
    outcome: HashMap<u64, String>,
    /// Damaged chunk -> where its file went.
    moved: HashMap<u64, String>,
    /// Unlinked inodes reaped.
    reaped: u64,
    /// Files under `chunks/` deleted.
    deleted: HashSet<PathBuf>,
}

/// Says on each problem what round 3 did about it.
fn label_round3(report: &mut FsckReport, first: &Scan, done: &Round3) {
    let Round3 { outcome, moved, reaped, deleted } = done;
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
}

//! The namespace tree: `dentries` (name -> inode) and `dirscan` (the
//! readdir index, cookie -> name), each checked against the other.
//!
//! Checks: a dentry's key and value decode; it sits in a live directory
//! and names a live inode of its kind (a directory's key ends in '/'); a
//! directory has one name and that name's parent is its parent; every
//! dentry has the `dirscan` row that mirrors it and every `dirscan` row
//! the dentry it mirrors. Tallies per directory (entries, subdirectories,
//! highest cookie) and per file (names) for the per-inode check.

use crate::tree::Tree;

use super::state::{be_u64, show, ScanState};
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{self, Dentry, DirScan, Kind};
use crate::{keys, Namespace, NsResult};

impl ScanState<'_> {
    /// Every dentry, against the inodes and `dirscan`.
    pub(super) fn scan_dentries(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::Dentries, |k, v| {
            self.tick(progress);
            self.found.report.dentries += 1;
            self.check_dentry(ns, k, v)
        })
    }

    fn check_dentry(&mut self, ns: &Namespace, k: &[u8], v: &[u8]) -> NsResult<()> {
        if k.len() < 9 {
            self.problem(
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
                *self.entries.entry(parent).or_default() += 1;
                self.problem(
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
                self.problem(
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
        *self.entries.entry(parent).or_default() += 1;
        if is_dir {
            *self.subdirs.entry(parent).or_default() += 1;
        }
        let mc = self.max_cookie.entry(parent).or_default();
        *mc = (*mc).max(d.cookie);
        if !self.check_dentry_target(parent, name, &d, k) {
            return Ok(());
        }
        // The readdir index must mirror the entry.
        let want = DirScan { name: name.to_vec(), ino: d.ino, kind: d.kind };
        let row = ns.meta.get(Tree::Dirscan, &keys::pair(parent, d.cookie))?;
        let ok = match &row {
            Some(v) => record::decode::<DirScan>("dirscan", v).ok().as_ref() == Some(&want),
            None => false,
        };
        if !ok {
            let fix = row.is_none().then_some(Fix::PutDirscan { parent, cookie: d.cookie, scan: want });
            self.problem(
                ProblemKind::DirscanMismatch,
                format!("entry {:?} in {parent} (cookie {}) has no matching readdir row", show(name), d.cookie),
                Some(d.ino),
                None,
                fix,
            );
        }
        Ok(())
    }

    /// The entry's directory and inode. Returns false when the entry is
    /// dangling (reported; its readdir row is not checked).
    fn check_dentry_target(&mut self, parent: u64, name: &[u8], d: &Dentry, k: &[u8]) -> bool {
        let del = Fix::DelDentry { key: k.to_vec(), parent, cookie: Some(d.cookie), name: name.to_vec() };
        match self.found.inodes.get(&parent) {
            Some(p) if p.kind == Kind::Dir => {}
            Some(_) => {
                self.problem(
                    ProblemKind::DanglingDentry,
                    format!("entry {:?} -> {} in {parent}, which is not a directory", show(name), d.ino),
                    Some(d.ino),
                    None,
                    Some(del),
                );
                return false;
            }
            None => {
                self.problem(
                    ProblemKind::DanglingDentry,
                    format!("entry {:?} -> {} in missing directory {parent}", show(name), d.ino),
                    Some(d.ino),
                    None,
                    Some(del),
                );
                return false;
            }
        }
        match self.found.inodes.get(&d.ino).copied() {
            None => {
                self.problem(
                    ProblemKind::DanglingDentry,
                    format!("entry {:?} in directory {parent} names missing inode {}", show(name), d.ino),
                    Some(d.ino),
                    None,
                    Some(del),
                );
                return false;
            }
            Some(n) if n.kind != d.kind => self.problem(
                ProblemKind::DentryMismatch,
                format!("entry {:?} in {parent} says {:?}, inode {} is {:?}", show(name), d.kind, d.ino, n.kind),
                Some(d.ino),
                None,
                None,
            ),
            Some(n) if n.kind == Kind::Dir => {
                if n.parent != parent {
                    self.problem(
                        ProblemKind::DentryMismatch,
                        format!("directory {} has parent {} but is listed in {parent}", d.ino, n.parent),
                        Some(d.ino),
                        None,
                        None,
                    );
                }
                if self.found.dir_names.insert(d.ino, (parent, name.to_vec())).is_some() {
                    self.problem(
                        ProblemKind::DentryMismatch,
                        format!("directory {} has more than one name", d.ino),
                        Some(d.ino),
                        None,
                        None,
                    );
                }
            }
            Some(_) => *self.links.entry(d.ino).or_default() += 1,
        }
        true
    }

    /// Every `dirscan` row, against the dentry it mirrors.
    pub(super) fn scan_dirscan(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::Dirscan, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::Dirscan, k.to_vec()));
            if k.len() != 16 {
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("dirscan key {}", hex::encode(k)),
                    None,
                    None,
                    del,
                );
                return Ok(());
            }
            let (parent, cookie) = keys::unpair(k);
            let row: DirScan = match record::decode("dirscan", v) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(
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
            let matches = match ns.meta.get(Tree::Dentries, &dk)? {
                Some(v) => record::decode::<Dentry>("dentry", &v).is_ok_and(|d| d.ino == row.ino && d.cookie == cookie),
                None => false,
            };
            if !matches {
                self.problem(
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
        })
    }
}

//! The `inodes` tree, and the per-inode cross-check that runs once the
//! trees that name inodes (dentries, orphans, parts, objmeta) are tallied.
//!
//! Checks: every inode record decodes and sits under its own key; the root
//! is a directory; a directory's entry count, size and next cookie match
//! its entries, its nlink is 2 + its subdirectories, and it has a live
//! parent and exactly one name; a file's nlink equals its names; every
//! inode is named, queued for reaping, or (staging inodes) used by a part;
//! the object-metadata flag matches the objmeta record.

use crate::tree::Tree;

use super::state::{be_u64, InodeSum, ScanState};
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::ns::ROOT_INO;
use crate::record::{self, Inode, Kind, FLAG_HAS_OBJMETA, FLAG_STAGING};
use crate::{Namespace, NsResult};

impl ScanState<'_> {
    /// Reads every inode record into a compact summary.
    pub(super) fn scan_inodes(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::Inodes, |k, v| {
            self.tick(progress);
            let key_ino = be_u64(k);
            match record::decode::<Inode>("inode", v) {
                Ok(n) if key_ino == Some(n.ino) => {
                    self.found.inodes.insert(
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
                Ok(n) => self.problem(
                    ProblemKind::MisfiledInode,
                    format!("inode record under key {} names inode {}", hex::encode(k), n.ino),
                    key_ino,
                    None,
                    None,
                ),
                Err(e) => self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("inode {}: {e}", key_ino.map_or(hex::encode(k), |i| i.to_string())),
                    key_ino,
                    None,
                    Some(Fix::DelRecord(Tree::Inodes, k.to_vec())),
                ),
            }
            Ok(())
        })?;
        let report = &mut self.found.report;
        report.inodes = self.found.inodes.len() as u64;
        for n in self.found.inodes.values() {
            match n.kind {
                Kind::Dir => report.directories += 1,
                Kind::Symlink => report.symlinks += 1,
                Kind::File if n.has(FLAG_STAGING) => report.staging_inodes += 1,
                Kind::File => report.files += 1,
            }
        }
        match self.found.inodes.get(&ROOT_INO) {
            Some(r) if r.kind == Kind::Dir => {}
            _ => self.problem(
                ProblemKind::BadRoot,
                "the root directory is missing or not a directory".into(),
                Some(ROOT_INO),
                None,
                None,
            ),
        }
        Ok(())
    }

    /// Checks every inode, in id order, against the tallies of the trees
    /// that name it.
    pub(super) fn check_inodes(&mut self) {
        let mut inos: Vec<u64> = self.found.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let n = self.found.inodes[&ino];
            if n.has(FLAG_HAS_OBJMETA) && !self.objmeta.contains(&ino) {
                self.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("inode {ino} is flagged with object metadata it does not have"),
                    Some(ino),
                    None,
                    Some(Fix::ObjmetaFlag { ino, set: false }),
                );
            }
            match n.kind {
                Kind::Dir => self.check_dir(ino, n),
                Kind::File | Kind::Symlink if n.has(FLAG_STAGING) => {
                    if !self.part_inodes.contains(&ino) && !self.orphans.contains(&ino) {
                        self.problem(
                            ProblemKind::BadUpload,
                            format!("staging inode {ino} is used by no multipart part"),
                            Some(ino),
                            None,
                            Some(Fix::Orphanize { ino }),
                        );
                    }
                }
                Kind::File | Kind::Symlink => self.check_file(ino, n),
            }
        }
    }

    /// A directory's counters, parent and name.
    fn check_dir(&mut self, ino: u64, n: InodeSum) {
        let e = self.entries.get(&ino).copied().unwrap_or(0);
        let nlink = 2 + self.subdirs.get(&ino).copied().unwrap_or(0);
        let next_cookie = n.next_cookie.max(self.max_cookie.get(&ino).map_or(3, |c| c + 1));
        let fix = Fix::DirCounts { ino, entries: e, nlink, next_cookie };
        if e != n.entries || n.size != n.entries {
            self.problem(
                ProblemKind::ChildCount,
                format!("directory {ino} counts {} entries (size {}), has {e}", n.entries, n.size),
                Some(ino),
                None,
                Some(fix.clone()),
            );
        }
        if n.nlink != nlink {
            self.problem(
                ProblemKind::LinkCount,
                format!("directory {ino} nlink {} should be {nlink}", n.nlink),
                Some(ino),
                None,
                Some(fix.clone()),
            );
        }
        if next_cookie != n.next_cookie {
            self.problem(
                ProblemKind::ChildCount,
                format!("directory {ino} next cookie {} is not past its entries' cookies", n.next_cookie),
                Some(ino),
                None,
                Some(fix),
            );
        }
        if ino != ROOT_INO {
            if !self.found.inodes.contains_key(&n.parent) {
                self.problem(
                    ProblemKind::DentryMismatch,
                    format!("directory {ino} has missing parent {}", n.parent),
                    Some(ino),
                    None,
                    None,
                );
            }
            if !self.found.dir_names.contains_key(&ino) {
                self.problem(
                    ProblemKind::UnnamedInode,
                    format!("directory {ino} is not named by any entry"),
                    Some(ino),
                    None,
                    None,
                );
            }
        }
    }

    /// A file's (or symlink's) link count against its names.
    fn check_file(&mut self, ino: u64, n: InodeSum) {
        let l = self.links.get(&ino).copied().unwrap_or(0);
        if l > 0 && l != n.nlink {
            self.problem(
                ProblemKind::LinkCount,
                format!("inode {ino} nlink {} but {l} names", n.nlink),
                Some(ino),
                None,
                Some(Fix::Nlink { ino, nlink: l }),
            );
        } else if l == 0 && !self.orphans.contains(&ino) {
            // nlink 0: an unlink whose orphan record is lost; the
            // file was meant to go. Otherwise its data is kept.
            let fix = if n.nlink == 0 { Fix::Orphanize { ino } } else { Fix::Salvage { ino } };
            self.problem(
                ProblemKind::UnnamedInode,
                format!("inode {ino} (nlink {}, {} bytes) has no name and is not being reaped", n.nlink, n.size),
                Some(ino),
                None,
                Some(fix),
            );
        }
    }
}

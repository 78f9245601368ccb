//! The upstream records: `upstreams` (bucket bindings), `remote` (what a
//! file or directory is upstream) and `upload_queue` (changes not yet
//! upstream).
//!
//! Checks: every record decodes; a binding belongs to a live directory; a
//! `remote` record belongs to a live inode of its kind, in a bound bucket;
//! a queued upload belongs to a live file of a bound bucket; and a file with
//! remote extents (bytes only the upstream holds) has a `remote` file
//! record to fetch them with. Records of missing inodes are deleted by
//! repair (their inode is gone: nothing can use them); a file whose remote
//! extents cannot be fetched is reported only (its bytes are upstream,
//! and no local fix brings them back).

use std::collections::HashSet;

use crate::tree::Tree;

use super::state::ScanState;
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{Kind, QueuedUpload, Remote};
use crate::upstream::UpstreamBinding;
use crate::{Namespace, NsResult};

impl ScanState<'_> {
    /// Every upstream record against the inodes, and the files with remote
    /// extents against the `remote` records (after `scan_extents`).
    pub(super) fn scan_upstream(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        let mut bound = HashSet::new();
        scan_all(ns, Tree::Upstreams, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::Upstreams, k.to_vec()));
            let Some((ino, _)) = self.keyed_record::<UpstreamBinding>(Tree::Upstreams, "upstream binding", k, v) else {
                return Ok(());
            };
            match self.found.inodes.get(&ino) {
                Some(n) if n.kind == Kind::Dir => {
                    bound.insert(ino);
                }
                _ => self.problem(
                    ProblemKind::BadUpstreamRecord,
                    format!("upstream binding of {ino}, which is not a live directory"),
                    Some(ino),
                    None,
                    del,
                ),
            }
            Ok(())
        })?;
        let mut remote_files = HashSet::new();
        scan_all(ns, Tree::Remote, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::Remote, k.to_vec()));
            let Some((ino, r)) = self.keyed_record::<Remote>(Tree::Remote, "remote", k, v) else { return Ok(()) };
            let (want, bucket) = match &r {
                Remote::File(f) => (Kind::File, f.bucket),
                Remote::Dir { bucket, .. } => (Kind::Dir, *bucket),
            };
            let detail = match self.found.inodes.get(&ino) {
                None => Some((format!("remote record of missing inode {ino}"), del)),
                Some(n) if n.kind != want => {
                    Some((format!("remote record of {ino} is for a {want:?}, the inode is a {:?}", n.kind), del))
                }
                Some(_) if !bound.contains(&bucket) => {
                    Some((format!("remote record of {ino} names bucket {bucket}, which is not bound"), None))
                }
                Some(_) => None,
            };
            match detail {
                Some((d, fix)) => self.problem(ProblemKind::BadUpstreamRecord, d, Some(ino), None, fix),
                None if want == Kind::File => {
                    remote_files.insert(ino);
                }
                None => {}
            }
            Ok(())
        })?;
        scan_all(ns, Tree::UploadQueue, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::UploadQueue, k.to_vec()));
            let Some((ino, q)) = self.keyed_record::<QueuedUpload>(Tree::UploadQueue, "upload_queue", k, v) else {
                return Ok(());
            };
            let detail = match self.found.inodes.get(&ino) {
                None => Some((format!("queued upload of missing inode {ino}"), del)),
                Some(n) if n.kind != Kind::File => Some((format!("queued upload of {ino}, a {:?}", n.kind), del)),
                Some(_) if !bound.contains(&q.bucket) => {
                    Some((format!("queued upload of {ino} to bucket {}, which is not bound", q.bucket), None))
                }
                Some(_) => None,
            };
            if let Some((d, fix)) = detail {
                self.problem(ProblemKind::BadUpstreamRecord, d, Some(ino), None, fix);
            }
            Ok(())
        })?;
        let mut unfetchable: Vec<u64> = self.remote_extents.difference(&remote_files).copied().collect();
        unfetchable.sort_unstable();
        for ino in unfetchable {
            if self.found.inodes.contains_key(&ino) {
                self.problem(
                    ProblemKind::BadUpstreamRecord,
                    format!("file {ino} has remote extents but no remote record to fetch them with"),
                    Some(ino),
                    None,
                    None,
                );
            }
        }
        Ok(())
    }
}

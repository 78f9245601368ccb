//! The S3 records: `mpu_parts` and `mpu_uploads` (multipart uploads) and
//! `objmeta` (object metadata).
//!
//! Checks: every record decodes; a part names a staging inode (and the
//! per-inode check, later, that every staging inode is used by a part); an
//! objmeta record belongs to a live inode flagged as having one (the
//! converse, a flag without its record, is checked per inode).

use crate::tree::Tree;

use super::state::{be_u64, ScanState};
use crate::fsck::report::{Fix, FsckProgress, ProblemKind};
use crate::full_scan::scan_all;
use crate::record::{self, ObjMeta, Part, Upload, FLAG_HAS_OBJMETA, FLAG_STAGING};
use crate::{Namespace, NsResult};

impl ScanState<'_> {
    /// Multipart parts name their staging inodes.
    pub(super) fn scan_parts(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::MpuParts, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::MpuParts, k.to_vec()));
            match record::decode::<Part>("part", v) {
                Ok(p) => {
                    self.part_inodes.insert(p.staging_ino);
                    if !self.found.inodes.get(&p.staging_ino).is_some_and(|n| n.has(FLAG_STAGING)) {
                        self.problem(
                            ProblemKind::BadUpload,
                            format!("multipart part {} names missing staging inode {}", hex::encode(k), p.staging_ino),
                            Some(p.staging_ino),
                            None,
                            del,
                        );
                    }
                }
                Err(e) => self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("part {}: {e}", hex::encode(k)),
                    None,
                    None,
                    del,
                ),
            }
            Ok(())
        })
    }

    /// Upload records decode.
    pub(super) fn scan_uploads(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::MpuUploads, |k, v| {
            self.tick(progress);
            if let Err(e) = record::decode::<Upload>("upload", v) {
                let fix = Some(Fix::DelRecord(Tree::MpuUploads, k.to_vec()));
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("upload {}: {e}", hex::encode(k)),
                    None,
                    None,
                    fix,
                );
            }
            Ok(())
        })
    }

    /// Object metadata belongs to a live inode that has the flag.
    pub(super) fn scan_objmeta(&mut self, ns: &Namespace, progress: &mut dyn FnMut(FsckProgress)) -> NsResult<()> {
        scan_all(ns, Tree::ObjMeta, |k, v| {
            self.tick(progress);
            let del = Some(Fix::DelRecord(Tree::ObjMeta, k.to_vec()));
            let Some(ino) = be_u64(k) else {
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("objmeta key {}", hex::encode(k)),
                    None,
                    None,
                    del,
                );
                return Ok(());
            };
            if let Err(e) = record::decode::<ObjMeta>("objmeta", v) {
                self.problem(
                    ProblemKind::UndecodableRecord,
                    format!("objmeta of inode {ino}: {e}"),
                    Some(ino),
                    None,
                    del,
                );
                return Ok(());
            }
            self.objmeta.insert(ino);
            match self.found.inodes.get(&ino) {
                None => self.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("object metadata of missing inode {ino}"),
                    Some(ino),
                    None,
                    del,
                ),
                Some(n) if !n.has(FLAG_HAS_OBJMETA) => self.problem(
                    ProblemKind::BadObjectMetadata,
                    format!("inode {ino} has object metadata but not the flag"),
                    Some(ino),
                    None,
                    Some(Fix::ObjmetaFlag { ino, set: true }),
                ),
                Some(_) => {}
            }
            Ok(())
        })
    }
}

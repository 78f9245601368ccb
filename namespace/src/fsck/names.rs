//! Naming the damage: the paths (`bucket/dir/name`) of the files whose
//! data a scan found damaged, for the report and the quarantine records.
//!
//! Paths come from the directory names the scan collected and one more
//! pass over `dentries` (and `extents`, to find the files of a damaged
//! chunk). Reads only.

use std::collections::{HashMap, HashSet};

use crate::tree::Tree;

use super::report::ProblemKind;
use super::scan::{be_u64, show, Scan};
use crate::full_scan::scan_all;
use crate::ns::ROOT_INO;
use crate::record::{self, Dentry, Extent, Kind};
use crate::{keys, Namespace, NsResult};

/// Directory depth walked when naming a path (deeper than the 512 limit).
const PATH_DEPTH_MAX: usize = 1024;
/// Files named per damaged chunk in its problem's text.
const NAMES_PER_CHUNK_MAX: usize = 8;

impl Namespace {
    /// Finds the files that damaged chunks belong to, and names every
    /// damaged inode in its problems.
    pub(super) fn fsck_name_damage(&self, s: &mut Scan) -> NsResult<()> {
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
    pub(super) fn fsck_names(
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

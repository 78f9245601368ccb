//! Directories of bound buckets are listed upstream (one level, with
//! delimiter '/') on first use and again once the binding's revalidation
//! time has passed, and the listing is merged into the local directory:
//!
//! - an upstream object with no local name becomes a file of remote
//!   extents (no data is fetched);
//! - a common prefix with no local name becomes a directory;
//! - a *clean* local file (its content generation is the one uploaded or
//!   listed) whose upstream ETag changed is replaced by a new inode (as an
//!   S3 overwrite does: NFS handles of the old one go stale), and one whose
//!   object is gone upstream is removed;
//! - local changes not yet upstream (dirty or local-only files) are never
//!   replaced or removed by a listing.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use metastore::Direction;

use super::{full_key, ns_error, RemoteObject, UpstreamListing};
use crate::dirops::DirEntry;
use crate::limits::{
    DIR_DEPTH_MAX, PAGE_ENTRIES_MAX, UPSTREAM_DIR_ENTRIES_MAX, UPSTREAM_DOWN_RETRY_NS, UPSTREAM_FRESH_DIRS_MAX,
    UPSTREAM_MERGE_BATCH_ENTRIES,
};
use crate::ns::{new_inode, ROOT_INO};
use crate::path::validate_name;
use crate::record::{DirScan, Extent, Inode, Kind, ObjMeta, Remote, RemoteFile, FLAG_AUTO_CREATED, FLAG_HAS_OBJMETA};
use crate::tree::Tree;
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// What a merge does to one name.
enum Step {
    NewFile(RemoteObject),
    NewDir(String),
    /// A clean file whose object changed (`Some`) or vanished (`None`).
    Drop {
        name: String,
        ino: u64,
        then: Option<RemoteObject>,
    },
}

impl Namespace {
    /// Where directory `dir` lives upstream: its bucket and key prefix
    /// (relative to the binding, ending in '/', empty for the bucket), or
    /// `None` outside bound buckets.
    pub(crate) fn dir_remote(&self, dir: &Inode) -> NsResult<Option<(u64, Vec<u8>)>> {
        self.dir_remote_at(dir, 0)
    }

    fn dir_remote_at(&self, dir: &Inode, depth: usize) -> NsResult<Option<(u64, Vec<u8>)>> {
        if dir.ino == ROOT_INO || depth > DIR_DEPTH_MAX {
            return Ok(None);
        }
        match self.remote(dir.ino)? {
            Some(Remote::Dir { bucket, key }) => return Ok(Some((bucket, key))),
            Some(Remote::File(_)) => {
                return Err(NsError::Corrupt(format!("directory {} has a file's remote", dir.ino)))
            }
            None => {}
        }
        if dir.parent == ROOT_INO {
            return Ok(None); // an unbound bucket (binding writes the bucket's record)
        }
        let parent = self.getattr(dir.parent)?;
        let Some((bucket, pkey)) = self.dir_remote_at(&parent, depth + 1)? else { return Ok(None) };
        // A directory made locally (mkdir, an S3 PUT of a deeper key): find
        // its name once and remember its key.
        let name = self.name_in(parent.ino, dir.ino)?.ok_or(NsError::Stale)?;
        let mut key = pkey;
        key.extend_from_slice(&name);
        key.push(b'/');
        let rec = Remote::Dir { bucket, key: key.clone() };
        self.txn(|tx| tx.put(Tree::Remote, &keys::id(dir.ino), &rec))?;
        Ok(Some((bucket, key)))
    }

    /// The name of `child` in directory `dir`, by a scan of its entries.
    fn name_in(&self, dir: u64, child: u64) -> NsResult<Option<Vec<u8>>> {
        Ok(self.all_entries(dir)?.into_iter().find(|e| e.ino == child).map(|e| e.name))
    }

    /// Every entry of `dir`.
    fn all_entries(&self, dir: u64) -> NsResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        let mut from = keys::pair(dir, 0);
        let end = keys::pair(dir, u64::MAX);
        loop {
            let rows = self.meta.scan(
                Tree::Dirscan,
                (Bound::Excluded(&from[..]), Bound::Included(&end[..])),
                PAGE_ENTRIES_MAX,
                Direction::Forward,
            )?;
            let n = rows.len();
            for (k, v) in rows {
                let (_, cookie) = keys::unpair(&k);
                let s: DirScan = crate::record::decode("dirscan", &v)?;
                out.push(DirEntry { name: s.name, ino: s.ino, kind: s.kind, cookie });
                from = keys::pair(dir, cookie);
            }
            if n < PAGE_ENTRIES_MAX {
                return Ok(out);
            }
        }
    }

    /// Lists `dir` upstream and merges the listing, unless it was listed
    /// within the binding's revalidation time. A no-op outside bound
    /// buckets; `UpstreamUnavailable` when the upstream cannot answer.
    pub(crate) fn refresh_dir(&self, dir: &Inode) -> NsResult<()> {
        if !self.upstream.any() || dir.kind != Kind::Dir {
            return Ok(());
        }
        let Some((bucket, key)) = self.dir_remote(dir)? else { return Ok(()) };
        let att = self.upstream.attached(bucket)?;
        let ttl_ns = (att.binding.revalidate_secs as i64).saturating_mul(1_000_000_000);
        if self.listed_within(dir.ino) {
            return Ok(());
        }
        let _one = self.upstream.refresh_locks[(dir.ino % 32) as usize].lock().unwrap_or_else(|p| p.into_inner());
        if self.listed_within(dir.ino) {
            return Ok(()); // listed by the caller we waited for
        }
        let started = self.cfg.clock.now_ns();
        let prefix = full_key(&att.binding, &key)?;
        let listing = att.client().and_then(|c| c.list_dir(&prefix, UPSTREAM_DIR_ENTRIES_MAX).map_err(ns_error));
        match listing {
            Ok(listing) => {
                self.merge_listing(bucket, dir.ino, &key, listing)?;
                self.mark_listed(dir.ino, started.saturating_add(ttl_ns));
            }
            // Never listed and nothing cached: an empty answer would
            // claim the upstream's objects do not exist.
            Err(e @ NsError::UpstreamUnavailable(_)) if dir.entries == 0 => return Err(e),
            Err(NsError::UpstreamUnavailable(why)) => {
                // Cached entries keep being served while the upstream is
                // down; ask again after a short back-off, not on every call.
                tracing::warn!(dir = dir.ino, %why, "upstream listing failed; serving the cached directory");
                self.mark_listed(dir.ino, self.cfg.clock.now_ns().saturating_add(UPSTREAM_DOWN_RETRY_NS));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Remembers that `dir` needs no listing before `until`.
    fn mark_listed(&self, dir: u64, until: i64) {
        let mut fresh = self.upstream.fresh.lock().unwrap_or_else(|p| p.into_inner());
        if fresh.len() >= UPSTREAM_FRESH_DIRS_MAX {
            let mut times: Vec<i64> = fresh.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            fresh.retain(|_, t| *t > cut);
        }
        fresh.insert(dir, until);
    }

    /// Whether `dir` was listed recently enough (its revalidation time, or
    /// the back-off after a failed listing, has not passed).
    fn listed_within(&self, dir: u64) -> bool {
        let now = self.cfg.clock.now_ns();
        let fresh = self.upstream.fresh.lock().unwrap_or_else(|p| p.into_inner());
        fresh.get(&dir).is_some_and(|&until| now < until)
    }

    /// Applies one upstream listing of directory `dir` (key `key`).
    fn merge_listing(&self, bucket: u64, dir: u64, key: &[u8], listing: UpstreamListing) -> NsResult<()> {
        let local: HashMap<Vec<u8>, DirEntry> =
            self.all_entries(dir)?.into_iter().map(|e| (e.name.clone(), e)).collect();
        let dir_names: HashSet<&str> = listing.dirs.iter().map(|s| s.as_str()).collect();
        let mut steps = Vec::new();
        let mut upstream_files = HashSet::new();
        for o in listing.objects {
            // The prefix's own marker object, names no path can hold, and a
            // file shadowed by a directory of the same name are not shown.
            if o.name.is_empty() || validate_name(o.name.as_bytes()).is_err() || dir_names.contains(o.name.as_str()) {
                continue;
            }
            upstream_files.insert(o.name.clone());
            match local.get(o.name.as_bytes()) {
                None => steps.push(Step::NewFile(o)),
                Some(e) if e.kind == Kind::File => {
                    if let Some(clean) = self.clean_remote(e.ino)? {
                        if clean.etag != o.etag || clean.size != o.size {
                            steps.push(Step::Drop { name: o.name.clone(), ino: e.ino, then: Some(o) });
                        }
                    }
                }
                Some(_) => {} // a local directory or symlink of that name wins
            }
        }
        for d in &listing.dirs {
            if validate_name(d.as_bytes()).is_ok() && !local.contains_key(d.as_bytes()) {
                steps.push(Step::NewDir(d.clone()));
            }
        }
        for (name, e) in &local {
            let Ok(name) = std::str::from_utf8(name) else { continue };
            if e.kind == Kind::File && !upstream_files.contains(name) && self.clean_remote(e.ino)?.is_some() {
                steps.push(Step::Drop { name: name.to_string(), ino: e.ino, then: None });
            }
        }
        if steps.is_empty() {
            return Ok(());
        }
        let mut orphaned = false;
        for batch in steps.chunks(UPSTREAM_MERGE_BATCH_ENTRIES) {
            let ids: Vec<u64> = batch.iter().map(|_| self.alloc_id()).collect::<NsResult<_>>()?;
            let now = self.now();
            orphaned |= self.txn(|tx| {
                let mut d = tx.dir(dir)?;
                let mut orphaned = false;
                for (step, &id) in batch.iter().zip(&ids) {
                    orphaned |= self.apply_step(tx, bucket, key, &mut d, step, id, now)?;
                }
                tx.put_inode(&d)?;
                Ok(orphaned)
            })?;
        }
        self.finish_unlink(orphaned)
    }

    /// One merge step inside the batch's transaction; rechecks what the
    /// plan saw (a local change may have come in between). Returns whether
    /// an inode lost its last link.
    #[allow(clippy::too_many_arguments)]
    fn apply_step(
        &self,
        tx: &mut Tx<'_>,
        bucket: u64,
        key: &[u8],
        d: &mut Inode,
        step: &Step,
        id: u64,
        now: i64,
    ) -> NsResult<bool> {
        let mut orphaned = false;
        let new_file = match step {
            Step::NewFile(o) => Some(o),
            Step::NewDir(name) => {
                if tx.lookup(d.ino, name.as_bytes())?.is_some() {
                    return Ok(false);
                }
                let mut c = new_inode(id, Kind::Dir, self.cfg.default_dir_mode, d.uid, d.gid, now);
                c.parent = d.ino;
                c.flags |= FLAG_AUTO_CREATED;
                let mut ckey = key.to_vec();
                ckey.extend_from_slice(name.as_bytes());
                ckey.push(b'/');
                tx.add_entry(d, name.as_bytes(), id, Kind::Dir, None, now)?;
                tx.put_inode(&c)?;
                tx.put(Tree::Remote, &keys::id(id), &Remote::Dir { bucket, key: ckey })?;
                None
            }
            Step::Drop { name, ino, then } => {
                let Some(e) = tx.lookup(d.ino, name.as_bytes())? else { return Ok(false) };
                if e.ino != *ino {
                    return Ok(false);
                }
                let mut victim = tx.inode(e.ino)?;
                let rec: Option<Remote> = tx.get(Tree::Remote, &keys::id(e.ino))?;
                match rec {
                    Some(Remote::File(f)) if f.synced_gen == victim.content_gen => {}
                    _ => return Ok(false), // changed locally meanwhile: keep it
                }
                tx.remove_entry(d, name.as_bytes(), &e, now)?;
                orphaned = tx.drop_link(&mut victim, now)?;
                then.as_ref()
            }
        };
        let Some(o) = new_file else { return Ok(orphaned) };
        if tx.lookup(d.ino, o.name.as_bytes())?.is_some() {
            return Ok(orphaned);
        }
        let mut f = new_inode(id, Kind::File, self.cfg.default_file_mode, d.uid, d.gid, o.mtime);
        f.ctime = now.max(o.mtime);
        f.size = o.size;
        f.flags |= FLAG_HAS_OBJMETA;
        self.put_remote_extents(tx, id, 0, o.size)?;
        let meta =
            ObjMeta { etag_gen: f.content_gen, etag: o.etag.trim_matches('"').to_string(), ..ObjMeta::default() };
        tx.put(Tree::ObjMeta, &keys::id(id), &meta)?;
        let mut fkey = key.to_vec();
        fkey.extend_from_slice(o.name.as_bytes());
        let rec = RemoteFile {
            bucket,
            key: fkey,
            etag: o.etag.clone(),
            size: o.size,
            mtime: o.mtime,
            synced_gen: f.content_gen,
        };
        tx.put(Tree::Remote, &keys::id(id), &Remote::File(rec))?;
        tx.add_entry(d, o.name.as_bytes(), id, Kind::File, None, now)?;
        tx.put_inode(&f)?;
        Ok(orphaned)
    }

    /// Remote extents for `[start, end)` of `ino`, each as long as a
    /// 32-bit length allows, cut at chunk boundaries so fetches align.
    pub(crate) fn put_remote_extents(&self, tx: &mut Tx<'_>, ino: u64, start: u64, end: u64) -> NsResult<()> {
        let cs = self.chunk_size_bytes() as u64;
        let piece = (u32::MAX as u64 / cs) * cs;
        let mut off = start;
        while off < end {
            let len = piece.min(end - off);
            tx.put(Tree::Extents, &keys::pair(ino, off), &Extent::remote(len as u32))?;
            off += len;
        }
        Ok(())
    }

    /// The remote record of file `ino` when the file is clean (its content
    /// is the upstream object's).
    fn clean_remote(&self, ino: u64) -> NsResult<Option<RemoteFile>> {
        let Some(super::Remote::File(f)) = self.remote(ino)? else { return Ok(None) };
        let n = match self.getattr(ino) {
            Ok(n) => n,
            Err(NsError::Stale) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok((n.content_gen == f.synced_gen).then_some(f))
    }
}

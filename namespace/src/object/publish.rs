//! Publishing: the one transaction that makes a staged object (or a copy,
//! or a completed multipart upload) visible at its key, replacing whatever
//! was there atomically.

use std::sync::Arc;

use md5::{Digest, Md5};

use super::target::{check_replace, find_leaf, walk_dirs};
use super::{check_meta_limits, synthetic_etag, write_back, Level, ObjectInfo, PutOptions, PutTarget, WriteCondition};
use super::{ObjectReader, StagedObject};
use crate::access::{self, Caller, W, X};
use crate::ns::new_inode;
use crate::record::{Dentry, Extent, Inode, Kind, ObjMeta, FLAG_AUTO_CREATED, FLAG_HAS_OBJMETA, FLAG_S3_MARKER};
use crate::tree::Tree;
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// How a publish accounts chunk references.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefMode {
    /// Each extent adds a reference to its chunk (fresh chunks, or chunks
    /// shared with a copy source).
    New,
    /// Extents move from staging inodes that already hold the references.
    Move,
}

/// A publish request (PUT or multipart completion).
pub(crate) struct Publish<'a> {
    pub(crate) extents: &'a [(u64, Extent)],
    pub(crate) size: u64,
    pub(crate) refs: RefMode,
    pub(crate) meta: ObjMeta,
    pub(crate) condition: WriteCondition,
}

impl Namespace {
    /// Convenience: stages and publishes `data` in one call.
    pub fn put_object_bytes(
        self: &Arc<Self>,
        caller: &Caller,
        bucket: &[u8],
        key: &[u8],
        data: &[u8],
        opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        let mut w = self.object_writer();
        w.write(data)?;
        self.put_object(caller, bucket, key, w.finish()?, opts)
    }

    /// Publishes a staged object at `bucket/key`, replacing any file there
    /// atomically. A key ending in '/' makes (or marks) a directory and
    /// must carry no data.
    pub fn put_object(
        &self,
        caller: &Caller,
        bucket: &[u8],
        key: &[u8],
        staged: StagedObject,
        opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        self.put_object_to(caller, &self.put_target(bucket, key)?, staged, opts)
    }

    /// Publishes a staged object at a target resolved earlier in the same
    /// request (see [`PutTarget`]).
    pub fn put_object_to(
        &self,
        caller: &Caller,
        target: &PutTarget,
        mut staged: StagedObject,
        mut opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        if opts.meta.etag.is_empty() {
            opts.meta.etag = hex::encode(staged.md5);
        }
        let info = self.publish(
            caller,
            target,
            Publish {
                extents: &staged.extents,
                size: staged.size,
                refs: RefMode::New,
                meta: opts.meta,
                condition: opts.condition,
            },
            |_, _| Ok(()),
        )?;
        staged.mark_consumed();
        self.write_through(target.bucket_ino, info.inode.ino)?;
        Ok(info)
    }

    /// CopyObject without copying data: the destination gets the extents
    /// `source` pinned (each chunk gains a reference) and is published like
    /// a PUT. The ETag is the source's when that is an MD5; otherwise (a
    /// multipart or NFS-written source) the bytes are read once to compute
    /// one, but still not written again. Sources too fragmented to pin are
    /// refused with `TooLarge`; callers then copy the bytes.
    pub fn copy_object(
        self: &Arc<Self>,
        caller: &Caller,
        source: &ObjectReader,
        source_etag: &str,
        bucket: &[u8],
        key: &[u8],
        opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        self.copy_object_to(caller, source, source_etag, &self.put_target(bucket, key)?, opts)
    }

    /// [`Namespace::copy_object`] to a target resolved earlier in the same
    /// request.
    pub fn copy_object_to(
        self: &Arc<Self>,
        caller: &Caller,
        source: &ObjectReader,
        source_etag: &str,
        target: &PutTarget,
        mut opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        let extents =
            source.extents.as_ref().ok_or_else(|| NsError::TooLarge("source too fragmented to share".into()))?;
        if extents.iter().any(|(_, e)| e.is_remote()) {
            // Remote extents read through their own file's upstream record.
            return Err(NsError::TooLarge("source not fully cached; copy its bytes".into()));
        }
        let is_md5 = source_etag.len() == 32 && source_etag.bytes().all(|c| c.is_ascii_hexdigit());
        opts.meta.etag = if is_md5 {
            source_etag.to_string()
        } else {
            let mut md5 = Md5::new();
            let mut buf = vec![0u8; self.chunk_size_bytes()];
            let mut off = 0;
            while off < source.size() {
                let n = source.read_at(off, &mut buf)?;
                md5.update(&buf[..n]);
                off += n as u64;
            }
            hex::encode(md5.finalize())
        };
        opts.meta.part_layout.clear();
        // Each shared chunk gains one reference, exactly as a fresh chunk
        // gains its first; the reader's pins keep them alive until then.
        self.publish(
            caller,
            target,
            Publish { extents, size: source.size(), refs: RefMode::New, meta: opts.meta, condition: opts.condition },
            |_, _| Ok(()),
        )
        .and_then(|info| {
            self.write_through(target.bucket_ino, info.inode.ino)?;
            Ok(info)
        })
    }

    /// The publishing transaction shared by PUT and multipart completion;
    /// `extra` adds the caller's own writes to the same transaction.
    pub(crate) fn publish(
        &self,
        caller: &Caller,
        target: &PutTarget,
        p: Publish<'_>,
        mut extra: impl FnMut(&mut Tx<'_>, u64) -> NsResult<()>,
    ) -> NsResult<ObjectInfo> {
        check_meta_limits(&p.meta)?;
        if target.leaf.is_none() && p.size > 0 {
            return Err(NsError::InvalidArgument("a directory marker key ending in '/' carries no data".into()));
        }
        let ids: Vec<u64> = (0..=target.dirs.len()).map(|_| self.alloc_id()).collect::<NsResult<_>>()?;
        // In a bound bucket the new object is queued for upload in the
        // publishing transaction (write-through runs it right after).
        let upstream_key = self.bound(target.bucket_ino).map(|_| target.key());
        let now = self.now();
        let gc_at = self.gc_at_ms(now);
        let (info, orphaned) = self.txn(|tx| {
            let mut chain = vec![Level::bucket(tx.dir(target.bucket_ino)?)];
            // The same walk as the early refusal; here it counts.
            if let Some(first) = walk_dirs(tx, caller, &mut chain, &target.dirs)? {
                // Directories `first..` are missing: make them (write on
                // the parent of `first` was checked by the walk).
                for (i, comp) in target.dirs.iter().enumerate().skip(first) {
                    let parent = chain.last_mut().expect("chain starts at the bucket");
                    if i > first {
                        access::check(caller, &parent.dir, X)?;
                        access::check(caller, &parent.dir, W)?;
                    }
                    let mode = self.cfg.default_dir_mode | (parent.dir.mode & 0o2000);
                    let gid = if parent.dir.mode & 0o2000 != 0 { parent.dir.gid } else { caller.gid };
                    let mut d = new_inode(ids[i], Kind::Dir, mode, caller.uid, gid, now);
                    d.parent = parent.dir.ino;
                    d.flags |= FLAG_AUTO_CREATED;
                    let cookie = tx.add_entry(&mut parent.dir, comp, d.ino, Kind::Dir, None, now)?;
                    parent.dirty = true;
                    chain.push(Level {
                        dir: d,
                        name: comp.to_vec(),
                        dentry: Some(Dentry { ino: ids[i], kind: Kind::Dir, cookie }),
                        dirty: true,
                    });
                }
            }
            let leaf = match &target.leaf {
                Some(l) => &l[..],
                None => {
                    // Directory marker: the last directory carries the metadata.
                    if chain.len() == 1 {
                        return Err(NsError::InvalidName("empty key".into()));
                    }
                    let last = chain.last_mut().expect("non-empty");
                    check_condition(self.fsid, tx, None, &p.condition)?;
                    last.dir.flags |= FLAG_S3_MARKER | FLAG_HAS_OBJMETA;
                    last.dir.flags &= !FLAG_AUTO_CREATED;
                    last.dir.ctime = now;
                    last.dirty = true;
                    let meta = ObjMeta { etag_gen: last.dir.content_gen, ..p.meta.clone() };
                    tx.put(Tree::ObjMeta, &keys::id(last.dir.ino), &meta)?;
                    let inode = last.dir.clone();
                    write_back(tx, &chain)?;
                    return Ok((ObjectInfo { etag: meta.etag.clone(), inode, meta }, false));
                }
            };
            let parent = chain.last_mut().expect("non-empty");
            let existing = find_leaf(tx, caller, &parent.dir, leaf)?;
            check_condition(self.fsid, tx, existing.as_ref().map(|e| &e.1), &p.condition)?;
            check_replace(caller, &parent.dir, existing.as_ref().map(|e| &e.1))?;
            let ino = *ids.last().expect("one id per level plus the leaf");
            let mut f = new_inode(ino, Kind::File, self.cfg.default_file_mode, caller.uid, caller.gid, now);
            if parent.dir.mode & 0o2000 != 0 {
                f.gid = parent.dir.gid;
            }
            let mut orphaned = false;
            let cookie = match existing {
                Some((d, mut old)) => {
                    // Replacing (checked like a truncating open): the new
                    // inode keeps the old one's owner and mode.
                    f.mode = old.mode;
                    f.uid = old.uid;
                    f.gid = old.gid;
                    tx.remove_entry(&mut parent.dir, leaf, &d, now)?;
                    orphaned = tx.drop_link(&mut old, now)?;
                    Some(d.cookie)
                }
                None => None,
            };
            f.size = p.size;
            f.flags |= FLAG_HAS_OBJMETA;
            for (off, e) in p.extents {
                tx.put(Tree::Extents, &keys::pair(ino, *off), e)?;
                if p.refs == RefMode::New {
                    tx.ref_chunk(e.chunk, 1, gc_at)?;
                }
            }
            let meta = ObjMeta { etag_gen: f.content_gen, ..p.meta.clone() };
            tx.put(Tree::ObjMeta, &keys::id(ino), &meta)?;
            tx.add_entry(&mut parent.dir, leaf, ino, Kind::File, cookie, now)?;
            parent.dirty = true;
            tx.put_inode(&f)?;
            write_back(tx, &chain)?;
            if let Some(key) = &upstream_key {
                self.charge_dirty(p.size)?;
                self.queue_put(tx, ino, target.bucket_ino, key.clone(), now, None)?;
            }
            extra(tx, ino)?;
            Ok((ObjectInfo { etag: meta.etag.clone(), inode: f, meta }, orphaned))
        })?;
        self.finish_unlink(orphaned)?;
        Ok(info)
    }
}

fn check_condition(fsid: u64, tx: &mut Tx<'_>, existing: Option<&Inode>, cond: &WriteCondition) -> NsResult<()> {
    match (cond, existing) {
        (WriteCondition::None, _) => Ok(()),
        (WriteCondition::IfNoneMatchStar, None) => Ok(()),
        (WriteCondition::IfNoneMatchStar, Some(_)) => Err(NsError::PreconditionFailed),
        (WriteCondition::IfMatch(_), None) => Err(NsError::NotFound),
        (WriteCondition::IfMatch(want), Some(inode)) => {
            let meta: Option<ObjMeta> = tx.get(Tree::ObjMeta, &keys::id(inode.ino))?;
            let current = match meta {
                Some(m) if m.etag_gen == inode.content_gen && !m.etag.is_empty() => m.etag,
                _ => synthetic_etag(fsid, inode),
            };
            if *want == current || want == "*" {
                Ok(())
            } else {
                Err(NsError::PreconditionFailed)
            }
        }
    }
}

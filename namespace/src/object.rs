//! S3-style whole objects over the same inodes: a PUT stages its data in
//! fresh chunks outside the namespace, then one transaction publishes it by
//! swapping the dentry, so no reader ever sees a torn object.

use std::sync::Arc;

use crate::tree::Tree;
use md5::{Digest, Md5};

use crate::access::{self, Caller, R, W, X};
use crate::clock::Nanos;
use crate::dirops::remove_empty_dir;
use crate::limits::{OBJECT_METADATA_BYTES_MAX, READER_EXTENTS_PINNED_MAX, USER_METADATA_BYTES_MAX};
use crate::ns::new_inode;
use crate::path::parse_key;
use crate::record::{self, Dentry, Extent, Inode, Kind, ObjMeta, FLAG_AUTO_CREATED, FLAG_HAS_OBJMETA, FLAG_S3_MARKER};
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// Bytes a sequential object reader asks the kernel to fetch ahead of what
/// it reads: 16 MiB. With 4 MiB chunks, two chunks ahead (8 MiB) left cold
/// reads at 0.55-0.62 of a plain file; see `bench chunkstore`.
pub const READ_AHEAD_BYTES: usize = 16 << 20;

/// Chunks to fetch ahead for a chunk size (at least one).
pub fn read_ahead_chunks(chunk_size_bytes: usize) -> usize {
    (READ_AHEAD_BYTES / chunk_size_bytes.max(1)).max(1)
}
/// Times a read retries resolving a key whose inode was replaced meanwhile.
const RESOLVE_ATTEMPTS_MAX: usize = 16;
/// Symlinks followed when S3 resolves a key.
const SYMLINK_HOPS_MAX: usize = 8;
/// Bytes read per step when an extent's CRC must be computed.
const CRC_READ_PIECE_BYTES: usize = 1 << 20;
/// File range whose extents are scanned per step when a file is too
/// fragmented to pin (see [`READER_EXTENTS_PINNED_MAX`]).
const CRC_WINDOW_BYTES: u64 = 1 << 30;

/// A condition on the current object, checked inside the publishing
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum WriteCondition {
    /// No condition.
    #[default]
    None,
    /// `If-None-Match: *`: the key must not exist.
    IfNoneMatchStar,
    /// `If-Match`: the current ETag (unquoted) must be this.
    IfMatch(String),
}

/// Options of a PUT (or of a completion).
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    /// Content headers, user metadata and checksums; `etag` is filled in
    /// from the data's MD5 unless already set (multipart).
    pub meta: ObjMeta,
    /// Condition checked atomically with the publish.
    pub condition: WriteCondition,
}

/// What HEAD tells about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The inode (a file, or a marker directory).
    pub inode: Inode,
    /// ETag, unquoted: the MD5 (or `md5-N`) for S3-written content, an
    /// opaque dashed value derived from (fsid, inode, content generation)
    /// once NFS changed the content.
    pub etag: String,
    /// Metadata; `checksums` and `part_layout` are empty when stale.
    pub meta: ObjMeta,
}

/// Data staged for a PUT: durable chunks nobody references yet. Dropping it
/// unpublished deletes the chunks.
pub struct StagedObject {
    ns: Arc<Namespace>,
    pub(crate) extents: Vec<(u64, Extent)>,
    /// Bytes staged.
    pub size: u64,
    /// MD5 of the bytes.
    pub md5: [u8; 16],
    /// CRC64/NVME of the bytes.
    pub crc64: u64,
    consumed: bool,
}

impl StagedObject {
    /// The chunks now belong to published metadata: do not delete on drop.
    pub(crate) fn mark_consumed(&mut self) {
        self.consumed = true;
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        self.ns.unstage(&self.extents, !self.consumed);
    }
}

/// Streams an object's bytes into chunks. Memory: one chunk buffer.
pub struct ObjectWriter {
    ns: Arc<Namespace>,
    buf: Vec<u8>,
    extents: Vec<(u64, Extent)>,
    size: u64,
    md5: Md5,
    crc64: u64,
}

impl ObjectWriter {
    /// Whether writing `len` more bytes would write a chunk to disk (and so
    /// block); async callers move only those writes off the runtime.
    pub fn would_block(&self, len: usize) -> bool {
        self.buf.len() + len >= self.ns.chunk_size_bytes()
    }

    /// Appends bytes.
    pub fn write(&mut self, mut data: &[u8]) -> NsResult<()> {
        let cap = self.ns.chunk_size_bytes();
        while !data.is_empty() {
            let take = (cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == cap {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> NsResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let e = self.ns.stage_one(&self.buf)?;
        self.md5.update(&self.buf);
        let crc = e.crc64.expect("fresh chunks know their CRC");
        self.crc64 = chunkstore::crc64nvme_combine(self.crc64, crc, self.buf.len() as u64);
        self.extents.push((self.size, e));
        self.size += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size + self.buf.len() as u64
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes the last chunk and makes every chunk durable.
    pub fn finish(mut self) -> NsResult<StagedObject> {
        self.flush()?;
        self.ns.chunks.barrier()?;
        let extents = std::mem::take(&mut self.extents);
        Ok(StagedObject {
            ns: self.ns.clone(),
            extents,
            size: self.size,
            md5: std::mem::take(&mut self.md5).finalize().into(),
            crc64: self.crc64,
            consumed: false,
        })
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Unfinished: the chunks were never referenced.
        self.ns.unstage(&self.extents, true);
    }
}

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
    pub extents: &'a [(u64, Extent)],
    pub size: u64,
    pub refs: RefMode,
    pub meta: ObjMeta,
    pub condition: WriteCondition,
}

/// A step of a key walk: a directory and the entry name that led to it.
struct Level {
    dir: Inode,
    name: Vec<u8>,
    dentry: Option<Dentry>,
    dirty: bool,
}

fn synthetic_etag(fsid: u64, inode: &Inode) -> String {
    // The dash keeps MD5-assuming clients (rclone, s3cmd) from comparing it
    // with a local MD5; the 'g' keeps it apart from multipart `md5-N`.
    format!("{fsid:016x}{:016x}-g{}", inode.ino, inode.content_gen)
}

pub(crate) fn check_meta_limits(meta: &ObjMeta) -> NsResult<()> {
    let user: usize = meta.user_meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if user > USER_METADATA_BYTES_MAX {
        return Err(NsError::TooLarge(format!("user metadata over {USER_METADATA_BYTES_MAX} bytes")));
    }
    if record::encode(meta).len() > OBJECT_METADATA_BYTES_MAX {
        return Err(NsError::TooLarge(format!("object metadata over {OBJECT_METADATA_BYTES_MAX} bytes")));
    }
    Ok(())
}

impl Namespace {
    /// Starts staging an object.
    pub fn object_writer(self: &Arc<Self>) -> ObjectWriter {
        ObjectWriter {
            ns: self.clone(),
            buf: Vec::with_capacity(self.chunk_size_bytes()),
            extents: Vec::new(),
            size: 0,
            md5: Md5::new(),
            crc64: chunkstore::crc64nvme(&[]),
        }
    }

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
        mut staged: StagedObject,
        mut opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        if opts.meta.etag.is_empty() {
            opts.meta.etag = hex::encode(staged.md5);
        }
        let info = self.publish(
            caller,
            bucket,
            key,
            Publish {
                extents: &staged.extents,
                size: staged.size,
                refs: RefMode::New,
                meta: opts.meta,
                condition: opts.condition,
            },
            |_, _| Ok(()),
        )?;
        staged.consumed = true;
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
        mut opts: PutOptions,
    ) -> NsResult<ObjectInfo> {
        let extents =
            source.extents.as_ref().ok_or_else(|| NsError::TooLarge("source too fragmented to share".into()))?;
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
            bucket,
            key,
            Publish { extents, size: source.size(), refs: RefMode::New, meta: opts.meta, condition: opts.condition },
            |_, _| Ok(()),
        )
    }

    /// The publishing transaction shared by PUT and multipart completion;
    /// `extra` adds the caller's own writes to the same transaction.
    pub(crate) fn publish(
        &self,
        caller: &Caller,
        bucket: &[u8],
        key: &[u8],
        p: Publish<'_>,
        mut extra: impl FnMut(&mut Tx<'_>, u64) -> NsResult<()>,
    ) -> NsResult<ObjectInfo> {
        let parsed = parse_key(key)?;
        check_meta_limits(&p.meta)?;
        let bucket_ino = self.bucket(bucket)?.ino;
        if parsed.leaf.is_none() && p.size > 0 {
            return Err(NsError::InvalidArgument("a directory marker key ending in '/' carries no data".into()));
        }
        let ids: Vec<u64> = (0..=parsed.dirs.len()).map(|_| self.alloc_id()).collect::<NsResult<_>>()?;
        let now = self.now();
        let gc_at = self.gc_at_ms(now);
        let (info, orphaned) = self.txn(|tx| {
            let mut chain = vec![Level { dir: tx.dir(bucket_ino)?, name: Vec::new(), dentry: None, dirty: false }];
            for (i, comp) in parsed.dirs.iter().enumerate() {
                let parent = chain.last_mut().expect("chain starts at the bucket");
                access::check(caller, &parent.dir, X)?;
                let next = match tx.lookup(parent.dir.ino, comp)? {
                    Some(d) if d.kind == Kind::Dir => {
                        Level { dir: tx.inode(d.ino)?, name: comp.to_vec(), dentry: Some(d), dirty: false }
                    }
                    Some(_) => return Err(NsError::NotADirectory),
                    None => {
                        access::check(caller, &parent.dir, W)?;
                        let mode = self.cfg.default_dir_mode | (parent.dir.mode & 0o2000);
                        let gid = if parent.dir.mode & 0o2000 != 0 { parent.dir.gid } else { caller.gid };
                        let mut d = new_inode(ids[i], Kind::Dir, mode, caller.uid, gid, now);
                        d.parent = parent.dir.ino;
                        d.flags |= FLAG_AUTO_CREATED;
                        let cookie = tx.add_entry(&mut parent.dir, comp, d.ino, Kind::Dir, None, now)?;
                        parent.dirty = true;
                        Level {
                            dir: d,
                            name: comp.to_vec(),
                            dentry: Some(Dentry { ino: ids[i], kind: Kind::Dir, cookie }),
                            dirty: true,
                        }
                    }
                };
                chain.push(next);
            }
            let leaf = match parsed.leaf {
                Some(l) => l,
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
            access::check(caller, &parent.dir, X)?;
            let existing = match tx.lookup(parent.dir.ino, leaf)? {
                Some(d) if d.kind == Kind::Dir => return Err(NsError::IsADirectory),
                Some(d) => Some((d, tx.inode(d.ino)?)),
                None => None,
            };
            check_condition(self.fsid, tx, existing.as_ref().map(|e| &e.1), &p.condition)?;
            let ino = *ids.last().expect("one id per level plus the leaf");
            let mut f = new_inode(ino, Kind::File, self.cfg.default_file_mode, caller.uid, caller.gid, now);
            if parent.dir.mode & 0o2000 != 0 {
                f.gid = parent.dir.gid;
            }
            let mut orphaned = false;
            let cookie = match existing {
                Some((d, mut old)) => {
                    // Replacing: the same permissions a truncating open needs;
                    // the new inode keeps the old one's owner and mode.
                    access::check(caller, &old, W)?;
                    f.mode = old.mode;
                    f.uid = old.uid;
                    f.gid = old.gid;
                    tx.remove_entry(&mut parent.dir, leaf, &d, now)?;
                    orphaned = tx.drop_link(&mut old, now)?;
                    Some(d.cookie)
                }
                None => {
                    access::check(caller, &parent.dir, W)?;
                    None
                }
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
            extra(tx, ino)?;
            Ok((ObjectInfo { etag: meta.etag.clone(), inode: f, meta }, orphaned))
        })?;
        self.finish_unlink(orphaned)?;
        Ok(info)
    }

    /// Resolves `bucket/key` for reading: search permission on every
    /// directory, symlinks to regular files inside the bucket followed.
    /// Keys that cannot be paths are simply not found.
    pub(crate) fn resolve_key(&self, caller: &Caller, bucket: &[u8], key: &[u8]) -> NsResult<Inode> {
        let parsed = parse_key(key).map_err(|_| NsError::NotFound)?;
        let bucket_ino = self.bucket(bucket)?.ino;
        let mut comps: Vec<Vec<u8>> = parsed.dirs.iter().map(|c| c.to_vec()).collect();
        let marker = parsed.leaf.is_none();
        if let Some(l) = parsed.leaf {
            comps.push(l.to_vec());
        }
        let mut hops = 0;
        'restart: loop {
            let mut stack = vec![self.getattr(bucket_ino)?];
            let mut i = 0;
            while i < comps.len() {
                let dir = stack.last().expect("bucket at the bottom");
                if dir.kind != Kind::Dir {
                    return Err(NsError::NotFound);
                }
                access::check(caller, dir, X)?;
                let d = self.dentry(dir.ino, &comps[i])?.ok_or(NsError::NotFound)?;
                let node = self.getattr(d.ino)?;
                if node.kind == Kind::Symlink {
                    hops += 1;
                    if hops > SYMLINK_HOPS_MAX || node.target.starts_with(b"/") {
                        return Err(NsError::NotFound);
                    }
                    // Splice the target in place of the link, resolving '..'
                    // lexically against the directories walked so far; a
                    // target that climbs out of the bucket is not served.
                    let mut path: Vec<Vec<u8>> = comps[..i].to_vec();
                    for t in node.target.split(|&c| c == b'/') {
                        match t {
                            b"" | b"." => {}
                            b".." => {
                                if path.pop().is_none() {
                                    return Err(NsError::NotFound);
                                }
                            }
                            t => path.push(t.to_vec()),
                        }
                    }
                    path.extend(comps[i + 1..].iter().cloned());
                    comps = path;
                    continue 'restart;
                }
                stack.push(node);
                i += 1;
            }
            let last = stack.pop().expect("at least the bucket");
            return match (last.kind, marker) {
                (Kind::File, false) => Ok(last),
                (Kind::Dir, true) if last.has(FLAG_S3_MARKER) && last.ino != bucket_ino => Ok(last),
                _ => Err(NsError::NotFound),
            };
        }
    }

    /// Metadata and ETag of an inode as S3 presents them.
    pub fn object_info(&self, inode: Inode) -> NsResult<ObjectInfo> {
        let stored =
            if inode.has(FLAG_HAS_OBJMETA) { self.meta.get(Tree::ObjMeta, &keys::id(inode.ino))? } else { None };
        let meta: Option<ObjMeta> = match stored {
            Some(v) => Some(record::decode("objmeta", &v)?),
            // The flag says a record exists, so the inode was replaced (and
            // its record deleted) after the caller read it: answering with
            // a synthetic ETag would name content the caller never saw.
            None if inode.has(FLAG_HAS_OBJMETA) => return Err(NsError::Stale),
            None => None,
        };
        let mut meta = meta.unwrap_or_default();
        let fresh = meta.etag_gen == inode.content_gen && !meta.etag.is_empty();
        let etag = if fresh { meta.etag.clone() } else { synthetic_etag(self.fsid, &inode) };
        if !fresh {
            // Content changed since these were computed: never serve them.
            meta.checksums.clear();
            meta.part_layout.clear();
            meta.etag = etag.clone();
        }
        Ok(ObjectInfo { inode, etag, meta })
    }

    /// Runs a lookup-then-open step again when the inode it found was
    /// replaced in between (an overwrite publishes a new inode): a reader
    /// racing a writer must get the old or the new version, never "gone".
    fn retry_replaced<T>(&self, mut step: impl FnMut() -> NsResult<T>) -> NsResult<T> {
        for _ in 1..RESOLVE_ATTEMPTS_MAX {
            match step() {
                Err(NsError::Stale) => continue,
                other => return other,
            }
        }
        step().map_err(|e| if matches!(e, NsError::Stale) { NsError::NotFound } else { e })
    }

    /// HEAD: the object at `bucket/key`.
    pub fn head_object(&self, caller: &Caller, bucket: &[u8], key: &[u8]) -> NsResult<ObjectInfo> {
        self.retry_replaced(|| {
            let inode = self.resolve_key(caller, bucket, key)?;
            access::check(caller, &inode, R)?;
            self.object_info(inode)
        })
    }

    /// GET: the object and a reader pinned to its current content.
    pub fn open_object(
        self: &Arc<Self>,
        caller: &Caller,
        bucket: &[u8],
        key: &[u8],
    ) -> NsResult<(ObjectInfo, ObjectReader)> {
        self.retry_replaced(|| {
            let inode = self.resolve_key(caller, bucket, key)?;
            access::check(caller, &inode, R)?;
            let reader = self.open_reader(inode.ino)?;
            let info = self.object_info(reader.inode.clone())?;
            Ok((info, reader))
        })
    }

    /// A reader of inode `ino` pinned to its current content.
    pub fn open_reader(self: &Arc<Self>, ino: u64) -> NsResult<ObjectReader> {
        let _lock = self.extent_locks.get(ino).read().unwrap_or_else(|p| p.into_inner());
        let inode = self.getattr(ino)?;
        let extents = if inode.kind == Kind::File {
            let all = self.extents_overlapping(ino, 0, inode.size)?;
            (all.len() <= READER_EXTENTS_PINNED_MAX).then_some(all)
        } else {
            Some(Vec::new())
        };
        if let Some(ext) = &extents {
            let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
            for (_, e) in ext {
                *pins.entry(e.chunk).or_default() += 1;
            }
        }
        Ok(ObjectReader { ns: self.clone(), inode, extents })
    }

    /// DELETE: removes the file at `bucket/key`, and then every directory
    /// above it that S3 created implicitly and that is now empty, in the
    /// same transaction. Missing keys succeed (S3 answers 204 either way).
    pub fn delete_object(&self, caller: &Caller, bucket: &[u8], key: &[u8]) -> NsResult<()> {
        let Ok(parsed) = parse_key(key) else { return Ok(()) };
        let bucket_ino = self.bucket(bucket)?.ino;
        let now = self.now();
        let orphaned = self.txn(|tx| {
            let mut chain = vec![Level { dir: tx.dir(bucket_ino)?, name: Vec::new(), dentry: None, dirty: false }];
            for comp in &parsed.dirs {
                let parent = &chain.last().expect("non-empty").dir;
                access::check(caller, parent, X)?;
                match tx.lookup(parent.ino, comp)? {
                    Some(d) if d.kind == Kind::Dir => {
                        chain.push(Level { dir: tx.inode(d.ino)?, name: comp.to_vec(), dentry: Some(d), dirty: false })
                    }
                    _ => return Ok(false),
                }
            }
            let mut orphaned = false;
            match parsed.leaf {
                Some(leaf) => {
                    let parent = chain.last_mut().expect("non-empty");
                    let Some(d) = tx.lookup(parent.dir.ino, leaf)? else { return Ok(false) };
                    if d.kind == Kind::Dir {
                        return Ok(false); // `a` names a directory: no such object
                    }
                    access::check(caller, &parent.dir, W | X)?;
                    let mut victim = tx.inode(d.ino)?;
                    access::check_sticky(caller, &parent.dir, &victim)?;
                    tx.remove_entry(&mut parent.dir, leaf, &d, now)?;
                    parent.dirty = true;
                    orphaned = tx.drop_link(&mut victim, now)?;
                }
                None => {
                    if chain.len() == 1 {
                        return Ok(false);
                    }
                    let last = chain.last_mut().expect("non-empty");
                    if !last.dir.has(FLAG_S3_MARKER) && last.dir.entries > 0 {
                        return Ok(false);
                    }
                    last.dir.flags &= !(FLAG_S3_MARKER | FLAG_HAS_OBJMETA);
                    last.dirty = true;
                    tx.del(Tree::ObjMeta, &keys::id(last.dir.ino))?;
                    if last.dir.entries == 0 {
                        // The marker was all that held it: remove it, as
                        // deleting a file needs write access to its parent.
                        let parent = &chain[chain.len() - 2].dir;
                        access::check(caller, parent, W | X)?;
                        remove_last_level(tx, &mut chain, now)?;
                    }
                }
            }
            prune_auto_dirs(tx, caller, &mut chain, now)?;
            write_back(tx, &chain)?;
            Ok(orphaned)
        })?;
        self.finish_unlink(orphaned)
    }
}

/// Removes, bottom up, empty directories that S3 created implicitly (never
/// buckets, markers or directories NFS made or touched).
fn prune_auto_dirs(tx: &mut Tx<'_>, caller: &Caller, chain: &mut Vec<Level>, now: Nanos) -> NsResult<()> {
    while chain.len() > 1 {
        let last = chain.last().expect("len > 1");
        let d = &last.dir;
        if d.entries != 0 || !d.has(FLAG_AUTO_CREATED) || d.has(FLAG_S3_MARKER) {
            break;
        }
        if access::check(caller, &chain[chain.len() - 2].dir, W | X).is_err() {
            break; // not allowed to remove it: leave it, as rmdir would
        }
        remove_last_level(tx, chain, now)?;
    }
    Ok(())
}

/// Removes the (empty) directory at the end of a key walk from its parent.
fn remove_last_level(tx: &mut Tx<'_>, chain: &mut Vec<Level>, now: Nanos) -> NsResult<()> {
    assert!(chain.len() > 1, "the bucket is never removed by a key walk");
    let level = chain.pop().expect("len > 1");
    let parent = chain.last_mut().expect("len >= 1");
    let dentry = level.dentry.expect("non-bucket levels have a dentry");
    remove_empty_dir(tx, &mut parent.dir, &level.name, &dentry, &level.dir, now)?;
    parent.dirty = true;
    Ok(())
}

fn write_back(tx: &mut Tx<'_>, chain: &[Level]) -> NsResult<()> {
    for l in chain.iter().filter(|l| l.dirty) {
        tx.put_inode(&l.dir)?;
    }
    Ok(())
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

/// Reads an object pinned at open: the extent list (and so the bytes) is
/// the one current when it was opened, whatever happens to the name later;
/// its chunks are protected from GC until the reader is dropped.
pub struct ObjectReader {
    ns: Arc<Namespace>,
    /// The inode as of opening.
    pub inode: Inode,
    /// Pinned extents; `None` for files too fragmented to pin, which are
    /// read in windows that fail if the content changed meanwhile.
    extents: Option<Vec<(u64, Extent)>>,
}

impl ObjectReader {
    /// Size as of opening.
    pub fn size(&self) -> u64 {
        self.inode.size
    }

    /// Fills `buf` from `offset` (clamped to the size); returns bytes read.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> NsResult<usize> {
        if offset >= self.inode.size {
            return Ok(0);
        }
        let n = ((self.inode.size - offset) as usize).min(buf.len());
        let buf = &mut buf[..n];
        buf.fill(0);
        match &self.extents {
            Some(ext) => {
                // Binary search for the first extent that may overlap.
                let first = ext.partition_point(|(off, e)| off + e.len as u64 <= offset);
                let end = offset + n as u64;
                let last = ext.partition_point(|(off, _)| *off < end);
                // Sequential readers: start fetching the chunk after this
                // range while this one is read and sent.
                for (_, next) in ext.iter().skip(last).take(read_ahead_chunks(self.ns.chunk_size_bytes())) {
                    self.ns.chunks.prefetch(next.chunk);
                }
                self.ns.fill_from_extents(&ext[first..last], offset, buf)?;
            }
            None => {
                let _lock = self.ns.extent_locks.get(self.inode.ino).read().unwrap_or_else(|p| p.into_inner());
                let now = self.ns.getattr(self.inode.ino)?;
                if now.content_gen != self.inode.content_gen {
                    return Err(NsError::PreconditionFailed);
                }
                let ext = self.ns.extents_overlapping(self.inode.ino, offset, offset + n as u64)?;
                self.ns.fill_from_extents(&ext, offset, buf)?;
            }
        }
        Ok(n)
    }
}

/// Accumulates a CRC64/NVME over a file from offset 0, one extent at a time.
struct CrcFold {
    crc: u64,
    /// Bytes folded so far.
    pos: u64,
    /// Bytes read from chunks so far (extents whose CRC is unknown).
    read_bytes: u64,
}

impl CrcFold {
    fn zeros_to(&mut self, to: u64) {
        if to > self.pos {
            let n = to - self.pos;
            self.crc = chunkstore::crc64nvme_combine(self.crc, chunkstore::crc64nvme_zeros(n), n);
            self.pos = to;
        }
    }

    /// Folds the extent at `off`, clipped to `size`; `budget` bounds the
    /// bytes read (`None` when it would be exceeded).
    fn extent(&mut self, ns: &Namespace, off: u64, e: &Extent, size: u64, budget: u64) -> NsResult<Option<()>> {
        let end = (off + e.len as u64).min(size);
        if end <= self.pos {
            return Ok(Some(()));
        }
        let start = off.max(self.pos);
        self.zeros_to(start);
        match e.crc64 {
            Some(c) if start == off && end == off + e.len as u64 => {
                self.crc = chunkstore::crc64nvme_combine(self.crc, c, end - start);
            }
            _ => {
                if self.read_bytes + (end - start) > budget {
                    return Ok(None);
                }
                let mut buf = vec![0u8; ((end - start) as usize).min(CRC_READ_PIECE_BYTES)];
                let mut at = start;
                while at < end {
                    let n = ((end - at) as usize).min(buf.len());
                    ns.chunks.read(e.chunk, e.chunk_off as u64 + (at - off), &mut buf[..n])?;
                    self.crc = chunkstore::crc64nvme_combine(self.crc, chunkstore::crc64nvme(&buf[..n]), n as u64);
                    at += n as u64;
                }
                self.read_bytes += end - start;
            }
        }
        self.pos = end;
        Ok(Some(()))
    }
}

impl ObjectReader {
    /// Full-object CRC64/NVME of the content as of opening, for any file
    /// (NFS-written, partly overwritten, sparse): the per-extent CRCs
    /// stored at write time are combined arithmetically, holes contribute
    /// the CRC of a zero run, and only extents whose CRC is unknown (those
    /// trimmed by later writes or truncation) are read. Returns `None` when
    /// that would read more than `read_bytes_max` bytes. Files too
    /// fragmented to pin fail with `PreconditionFailed` if their content
    /// changes during the computation.
    pub fn full_crc64nvme(&self, read_bytes_max: u64) -> NsResult<Option<u64>> {
        let size = self.inode.size;
        let mut fold = CrcFold { crc: chunkstore::crc64nvme(&[]), pos: 0, read_bytes: 0 };
        match &self.extents {
            Some(ext) => {
                for (off, e) in ext {
                    if fold.extent(&self.ns, *off, e, size, read_bytes_max)?.is_none() {
                        return Ok(None);
                    }
                }
            }
            None => {
                let mut window_start = 0u64;
                while window_start < size {
                    let window_end = window_start.saturating_add(CRC_WINDOW_BYTES).min(size);
                    let _lock = self.ns.extent_locks.get(self.inode.ino).read().unwrap_or_else(|p| p.into_inner());
                    if self.ns.getattr(self.inode.ino)?.content_gen != self.inode.content_gen {
                        return Err(NsError::PreconditionFailed);
                    }
                    for (off, e) in self.ns.extents_overlapping(self.inode.ino, fold.pos, window_end)? {
                        if fold.extent(&self.ns, off, &e, size, read_bytes_max)?.is_none() {
                            return Ok(None);
                        }
                    }
                    window_start = window_end.max(fold.pos);
                }
            }
        }
        fold.zeros_to(size);
        Ok(Some(fold.crc))
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        if let Some(ext) = &self.extents {
            let mut pins = self.ns.pins.lock().unwrap_or_else(|p| p.into_inner());
            for (_, e) in ext {
                if let Some(c) = pins.get_mut(&e.chunk) {
                    *c -= 1;
                    if *c == 0 {
                        pins.remove(&e.chunk);
                    }
                }
            }
        }
    }
}

//! Reading objects: key resolution for reads (search permission on every
//! directory, symlinks to files inside the bucket followed), HEAD and GET,
//! and [`ObjectReader`], pinned to the content it opened.

use std::sync::Arc;

use super::{read_ahead_chunks, synthetic_etag, ObjectInfo};
use crate::access::{self, Caller, R, X};
use crate::limits::READER_EXTENTS_PINNED_MAX;
use crate::path::parse_key;
use crate::record::{self, Extent, Inode, Kind, ObjMeta, FLAG_HAS_OBJMETA, FLAG_S3_MARKER};
use crate::tree::Tree;
use crate::{keys, Namespace, NsError, NsResult};

/// Times a read retries resolving a key whose inode was replaced meanwhile.
const RESOLVE_ATTEMPTS_MAX: usize = 16;
/// Symlinks followed when S3 resolves a key.
const SYMLINK_HOPS_MAX: usize = 8;

impl Namespace {
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
                self.refresh_dir(dir)?;
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
    /// racing a writer must get the old or the new version, never "gone";
    /// so must a writer's access check.
    pub(super) fn retry_replaced<T>(&self, mut step: impl FnMut() -> NsResult<T>) -> NsResult<T> {
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
            self.pin(&ext.iter().map(|(_, e)| e.chunk).collect::<Vec<_>>());
        }
        Ok(ObjectReader { ns: self.clone(), inode, extents })
    }
}

/// Reads an object pinned at open: the extent list (and so the bytes) is
/// the one current when it was opened, whatever happens to the name later;
/// its chunks are protected from GC until the reader is dropped.
pub struct ObjectReader {
    pub(crate) ns: Arc<Namespace>,
    /// The inode as of opening.
    pub inode: Inode,
    /// Pinned extents; `None` for files too fragmented to pin, which are
    /// read in windows that fail if the content changed meanwhile.
    pub(crate) extents: Option<Vec<(u64, Extent)>>,
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
                    if !next.is_remote() {
                        self.ns.chunks.prefetch(next.chunk);
                    }
                }
                self.ns.fill_from_extents(&self.inode, &ext[first..last], offset, buf)?;
            }
            None => {
                let lock = self.ns.extent_locks.get(self.inode.ino).read().unwrap_or_else(|p| p.into_inner());
                let now = self.ns.getattr(self.inode.ino)?;
                if now.content_gen != self.inode.content_gen {
                    return Err(NsError::PreconditionFailed);
                }
                let ext = self.ns.extents_overlapping(self.inode.ino, offset, offset + n as u64)?;
                if ext.iter().any(|(_, e)| e.is_remote()) {
                    drop(lock); // fetching caches under the write lock
                }
                self.ns.fill_from_extents(&self.inode, &ext, offset, buf)?;
            }
        }
        Ok(n)
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        if let Some(ext) = &self.extents {
            self.ns.unpin(&ext.iter().map(|(_, e)| e.chunk).collect::<Vec<_>>());
        }
    }
}

//! File data: extents over immutable chunks.
//!
//! A write stores its bytes in new chunks (data first, fsync'd), then one
//! transaction trims or splits the extents it overlaps and inserts its own:
//! random writes never rewrite the rest of the file. Holes are absent
//! extents and read as zeros.

use std::ops::Bound;

use metastore::Direction;

use crate::tree::Tree;

use crate::access::{self, Caller, R, W};
use crate::limits::FILE_SIZE_BYTES_MAX;
use crate::record::{Extent, Inode, Kind};
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// Extents fetched per scan step.
const SCAN_PAGE_EXTENTS: usize = 1024;

impl Namespace {
    /// Extents of `ino` that hold any byte in `[start, end)`, in offset
    /// order. Exact only under the inode's extent lock.
    pub(crate) fn extents_overlapping(&self, ino: u64, start: u64, end: u64) -> NsResult<Vec<(u64, Extent)>> {
        let mut out = Vec::new();
        if start >= end {
            return Ok(out);
        }
        // The extent starting at or before `start` may reach into the range.
        let lo = keys::pair(ino, 0);
        let at = keys::pair(ino, start);
        let before =
            self.meta.scan(Tree::Extents, (Bound::Included(&lo), Bound::Included(&at)), 1, Direction::Reverse)?;
        for (k, v) in before {
            let (_, off) = keys::unpair(&k);
            let e: Extent = crate::record::decode("extent", &v)?;
            if off + e.len as u64 > start {
                out.push((off, e));
            }
        }
        let hi = keys::pair(ino, end);
        let mut from = at;
        loop {
            let page = self.meta.scan(
                Tree::Extents,
                (Bound::Excluded(&from), Bound::Excluded(&hi)),
                SCAN_PAGE_EXTENTS,
                Direction::Forward,
            )?;
            let n = page.len();
            for (k, v) in page {
                let (_, off) = keys::unpair(&k);
                out.push((off, crate::record::decode("extent", &v)?));
                from = keys::pair(ino, off);
            }
            if n < SCAN_PAGE_EXTENTS {
                return Ok(out);
            }
        }
    }

    /// Extents holding any byte at or after `size` (for truncation).
    pub(crate) fn extents_from(&self, ino: u64, size: u64) -> NsResult<Vec<(u64, Extent)>> {
        self.extents_overlapping(ino, size, u64::MAX)
    }

    /// Reads up to `len` bytes at `offset`; returns the bytes and whether
    /// they reach the end of the file. Holes read as zeros.
    pub fn read(&self, caller: &Caller, ino: u64, offset: u64, len: usize) -> NsResult<(Vec<u8>, bool)> {
        let lock = self.extent_locks.get(ino).read().unwrap_or_else(|p| p.into_inner());
        let n = self.getattr(ino)?;
        require_file(&n)?;
        access::check_data(caller, &n, R)?;
        if offset >= n.size {
            return Ok((Vec::new(), true));
        }
        let end = n.size.min(offset.saturating_add(len as u64));
        let extents = self.extents_overlapping(ino, offset, end)?;
        let mut _pinned = None;
        if extents.iter().any(|(_, e)| e.is_remote()) {
            // Fetching caches under the write lock, so the lock goes; pins
            // keep this read's local chunks from eviction and GC instead.
            _pinned = Some(Pinned::new(self, &extents));
            drop(lock);
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        self.fill_from_extents(&n, &extents, offset, &mut buf)?;
        Ok((buf, end == n.size))
    }

    /// Copies the bytes of `[offset, offset + buf.len())` of file `at`
    /// (the inode as the caller read it) from `extents` (sorted,
    /// non-overlapping) into `buf`; gaps stay as they are (zeros); remote
    /// extents are fetched from the upstream (or read from the cache when a
    /// fetch made them local since).
    pub(crate) fn fill_from_extents(
        &self,
        at: &Inode,
        extents: &[(u64, Extent)],
        offset: u64,
        buf: &mut [u8],
    ) -> NsResult<()> {
        if self.upstream.any() {
            let end = offset + buf.len() as u64;
            self.note_read(at, offset, end, extents.iter().any(|(_, e)| e.is_remote()));
        }
        self.fill_extents(at, extents, offset, buf)
    }

    /// [`Namespace::fill_from_extents`] without the readahead tracking (for
    /// a read that was tracked already).
    pub(crate) fn fill_extents(
        &self,
        at: &Inode,
        extents: &[(u64, Extent)],
        offset: u64,
        buf: &mut [u8],
    ) -> NsResult<()> {
        let end = offset + buf.len() as u64;
        for (off, e) in extents {
            let (e_start, e_end) = (*off, off + e.len as u64);
            let (s, t) = (e_start.max(offset), e_end.min(end));
            if s >= t {
                continue;
            }
            if e.is_remote() {
                self.fill_remote(at, *off, e, offset, buf)?;
                continue;
            }
            let dst = &mut buf[(s - offset) as usize..(t - offset) as usize];
            if let Err(err) = self.chunks.read(e.chunk, e.chunk_off as u64 + (s - e_start), dst) {
                // A damaged cache entry of an upstream file is a miss.
                let damaged =
                    matches!(err, chunkstore::ChunkError::Corrupt { .. } | chunkstore::ChunkError::NotFound(_));
                if !(damaged && self.upstream.any() && self.refill_from_upstream(at, s, t, dst)?) {
                    return Err(err.into());
                }
                continue;
            }
            if self.upstream.any() {
                self.note_hits(at.ino, s, t);
            }
        }
        Ok(())
    }

    /// Writes `data` at `offset` and makes it durable before returning
    /// (FILE_SYNC semantics). Returns the inode after the write.
    pub fn write(&self, caller: &Caller, ino: u64, offset: u64, data: &[u8]) -> NsResult<Inode> {
        self.write_with(caller, ino, offset, data, Stability::Durable)
    }

    /// Writes `data` at `offset` with the given stability. An unstable
    /// write is visible to every reader (both protocols) when it returns,
    /// but neither its chunks nor its metadata are fsync'd: the next
    /// barrier (any durable operation, or [`Namespace::sync`], which NFS
    /// COMMIT calls) syncs the chunks first and the metadata after them.
    pub fn write_with(&self, caller: &Caller, ino: u64, offset: u64, data: &[u8], how: Stability) -> NsResult<Inode> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= FILE_SIZE_BYTES_MAX)
            .ok_or_else(|| NsError::TooLarge(format!("write past the {FILE_SIZE_BYTES_MAX}-byte file size limit")))?;
        // Check before spending chunk writes on a request that must fail.
        let n = self.getattr(ino)?;
        require_file(&n)?;
        access::check_data(caller, &n, W)?;
        self.make_local(ino)?;
        let durable = how == Stability::Durable;
        let staged = self.stage_chunks_with(data, durable)?;
        let result = self.commit_write(caller, ino, offset, end, &staged, durable);
        self.unstage(&staged, result.is_err());
        result
    }

    fn commit_write(
        &self,
        caller: &Caller,
        ino: u64,
        offset: u64,
        end: u64,
        staged: &[(u64, Extent)],
        durable: bool,
    ) -> NsResult<Inode> {
        let _lock = self.extent_locks.get(ino).write().unwrap_or_else(|p| p.into_inner());
        let old = self.extents_overlapping(ino, offset, end)?;
        let now = self.now();
        let gc_at = self.gc_at_ms(now);
        let updated = self.txn(|tx| {
            let mut n = tx.inode(ino)?;
            if n.kind != Kind::File || n.nlink == 0 {
                return Err(NsError::Stale);
            }
            access::check_data(caller, &n, W)?;
            punch(tx, ino, offset, end, &old, gc_at)?;
            for (rel, e) in staged {
                tx.put(Tree::Extents, &keys::pair(ino, offset + rel), e)?;
                tx.ref_chunk(e.chunk, 1, gc_at)?;
            }
            n.size = n.size.max(end);
            n.mtime = now;
            n.ctime = now;
            n.content_gen += 1;
            self.queue_dirty(tx, ino, now, end - offset)?;
            if !caller.is_root() {
                n.mode &= !0o6000; // as Linux: writing clears setuid/setgid
            }
            tx.put_inode(&n)?;
            Ok(n)
        })?;
        if durable {
            self.commit_barrier()?;
        }
        Ok(updated)
    }

    /// Writes `data` into fresh chunks (durable, directory entries too) and
    /// returns their extents at offsets relative to the start of `data`.
    /// The chunks are registered as staging until [`Namespace::unstage`].
    /// Without `durable` the chunks stay in the chunk store's pending set
    /// for the next barrier.
    fn stage_chunks_with(&self, data: &[u8], durable: bool) -> NsResult<Vec<(u64, Extent)>> {
        let mut out = Vec::new();
        let res = (|| {
            for (i, piece) in data.chunks(self.chunks.chunk_size_bytes()).enumerate() {
                out.push((i as u64 * self.chunks.chunk_size_bytes() as u64, self.stage_one(piece)?));
            }
            if durable {
                self.chunks.barrier()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            self.unstage(&out, true);
            return Err(e);
        }
        Ok(out)
    }

    /// Writes one chunk and registers it as staging (not yet durable in its
    /// directory: call the chunk barrier before committing).
    pub(crate) fn stage_one(&self, piece: &[u8]) -> NsResult<Extent> {
        let id = self.alloc_id()?;
        self.staging.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
        match self.chunks.write_chunk(id, piece) {
            Ok(info) => Ok(Extent { chunk: id, chunk_off: 0, len: piece.len() as u32, crc64: Some(info.crc64) }),
            Err(e) => {
                self.staging.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                Err(e.into())
            }
        }
    }

    /// Ends staging of `extents`' chunks; `discard` deletes them (they were
    /// never referenced).
    pub(crate) fn unstage(&self, extents: &[(u64, Extent)], discard: bool) {
        let mut staging = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        for (_, e) in extents {
            staging.remove(&e.chunk);
            if discard {
                if let Err(err) = self.chunks.delete(e.chunk) {
                    tracing::warn!(chunk = e.chunk, error = %err, "could not delete an unreferenced chunk; the orphan scan will");
                }
            }
        }
    }
}

/// Chunks pinned for as long as this lives (GC and cache eviction leave
/// pinned chunks alone).
pub(crate) struct Pinned<'a> {
    ns: &'a Namespace,
    chunks: Vec<u64>,
}

impl<'a> Pinned<'a> {
    pub(crate) fn new(ns: &'a Namespace, extents: &[(u64, Extent)]) -> Self {
        let chunks: Vec<u64> = extents.iter().filter(|(_, e)| !e.is_remote()).map(|(_, e)| e.chunk).collect();
        ns.pin(&chunks);
        Pinned { ns, chunks }
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        self.ns.unpin(&self.chunks);
    }
}

impl Namespace {
    /// Pins `chunks` (once per occurrence).
    pub(crate) fn pin(&self, chunks: &[u64]) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        for c in chunks {
            *pins.entry(*c).or_default() += 1;
        }
    }

    /// Releases pins taken by [`Namespace::pin`].
    pub(crate) fn unpin(&self, chunks: &[u64]) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        for c in chunks {
            if let Some(n) = pins.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(c);
                }
            }
        }
    }
}

/// How durable a write must be when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    /// Data and metadata are on stable storage (NFS FILE_SYNC, S3).
    Durable,
    /// Visible at once, durable at the next barrier (NFS UNSTABLE).
    Unstable,
}

/// Data I/O is for regular files only.
pub(crate) fn require_file(n: &Inode) -> NsResult<()> {
    match n.kind {
        Kind::File => Ok(()),
        Kind::Dir => Err(NsError::IsADirectory),
        Kind::Symlink => Err(NsError::InvalidArgument("data I/O on a symlink".into())),
    }
}

/// Removes the bytes `[start, end)` from the extents `old` (the exact set
/// overlapping that range): extents inside go, extents across an edge are
/// trimmed, an extent across both edges is split in two.
pub(crate) fn punch(
    tx: &mut Tx<'_>,
    ino: u64,
    start: u64,
    end: u64,
    old: &[(u64, Extent)],
    gc_at: u64,
) -> NsResult<()> {
    for &(off, e) in old {
        let e_end = off + e.len as u64;
        tx.del(Tree::Extents, &keys::pair(ino, off))?;
        let mut kept = 0;
        if off < start {
            let head = Extent { len: (start - off) as u32, crc64: None, ..e };
            tx.put(Tree::Extents, &keys::pair(ino, off), &head)?;
            kept += 1;
        }
        if e_end > end {
            let cut = end - off;
            let tail = Extent { chunk_off: e.chunk_off + cut as u32, len: (e_end - end) as u32, crc64: None, ..e };
            tx.put(Tree::Extents, &keys::pair(ino, end), &tail)?;
            kept += 1;
        }
        tx.ref_chunk(e.chunk, kept - 1, gc_at)?;
    }
    Ok(())
}

/// Truncates the extents of `ino` to `size` bytes; `plan` is
/// [`Namespace::extents_from`] taken under the extent lock.
pub(crate) fn apply_truncate(tx: &mut Tx<'_>, ino: u64, size: u64, plan: &[(u64, Extent)], gc_at: u64) -> NsResult<()> {
    punch(tx, ino, size, u64::MAX, plan, gc_at)
}

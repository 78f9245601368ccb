//! Reading remote extents: a read that meets one fetches the chunk-aligned
//! window around it from the upstream (a ranged GET conditional on the
//! ETag the file was listed with), serves those bytes at once, and keeps
//! them as a local chunk whose extents replace the remote ones.
//!
//! Concurrent readers of one window share one fetch. A cache fill changes
//! no attribute and no content generation: the bytes were the file's
//! already. It is not fsync'd on the read path: its chunk joins the chunk
//! store's pending set and its extents are committed without a barrier,
//! so the next barrier (any durable call) makes the chunk durable before
//! the metadata that points at it, as for unstable NFS writes. Losing a
//! fill in a crash only means fetching again; a cached chunk found torn or
//! missing after a power loss is read as a miss (`refill_from_upstream`),
//! never as an error, since the upstream still has those bytes.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use super::{full_key, ns_error, UpstreamError};
use crate::data::punch;
use crate::record::{Extent, Inode, Remote};
use crate::tree::Tree;
use crate::{keys, Namespace, NsError, NsResult, ObjectReader};

/// The outcome a fetch's waiters share (errors as text: `NsError` is not
/// `Clone`, and every fetch error is a retryable upstream failure).
type Shared = Result<Arc<Vec<u8>>, String>;

/// One fetch in flight.
#[derive(Default)]
struct Slot {
    done: Mutex<Option<Shared>>,
    cv: Condvar,
}

/// Most windows fetched ahead of a sequential reader (32 MiB with 4 MiB
/// chunks).
pub const READAHEAD_WINDOWS_MAX: usize = 8;
/// Readahead requests waiting for a thread; more are dropped.
const READAHEAD_QUEUE_MAX: usize = 256;
/// Files whose read position is tracked for sequential detection.
const READAHEAD_TRACKED_FILES_MAX: usize = 65_536;

/// Fetches in flight by (inode, window start).
#[derive(Default)]
pub(crate) struct Fetches {
    inflight: Mutex<HashMap<(u64, u64), Arc<Slot>>>,
}

impl Namespace {
    /// The bytes of the window of file `ino` that starts at `start` (a
    /// multiple of the chunk size), from the upstream; cached on the way.
    pub(crate) fn fetch_window(&self, ino: u64, start: u64) -> NsResult<Arc<Vec<u8>>> {
        let (slot, leader) = {
            let mut map = self.upstream.fetches.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&(ino, start)) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = Arc::new(Slot::default());
                    map.insert((ino, start), s.clone());
                    (s, true)
                }
            }
        };
        if !leader {
            let mut done = slot.done.lock().unwrap_or_else(|p| p.into_inner());
            while done.is_none() {
                done = slot.cv.wait(done).unwrap_or_else(|p| p.into_inner());
            }
            return done.clone().expect("set before notify").map_err(NsError::UpstreamUnavailable);
        }
        let result = self.fetch_and_cache(ino, start);
        let shared: Shared = match &result {
            Ok(b) => Ok(b.clone()),
            Err(e) => Err(e.to_string()),
        };
        *slot.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(shared);
        slot.cv.notify_all();
        self.upstream.fetches.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&(ino, start));
        result
    }

    fn fetch_and_cache(&self, ino: u64, start: u64) -> NsResult<Arc<Vec<u8>>> {
        let (data, etag) = self.fetch_bytes(ino, start)?;
        self.upstream.cache.miss_bytes.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        match self.cache_window(ino, &etag, start, &data) {
            Ok(true) => {
                self.upstream.cache.insert((ino, start), data.len() as u64, false);
                if let Err(e) = self.evict_as_needed() {
                    tracing::warn!(error = %e, "cache eviction failed");
                }
            }
            Ok(false) => {}
            // Serving the bytes matters more than keeping them.
            Err(e) => tracing::warn!(ino, start, error = %e, "fetched upstream bytes not cached"),
        }
        Ok(Arc::new(data))
    }

    /// The bytes of the window at `start` of `ino` from the upstream (not
    /// cached), and the ETag they are of.
    fn fetch_bytes(&self, ino: u64, start: u64) -> NsResult<(Vec<u8>, String)> {
        let (rf, att) = self
            .remote_file(ino)?
            .ok_or_else(|| NsError::Corrupt(format!("file {ino} has remote extents but no remote record")))?;
        let end = (start + self.chunk_size_bytes() as u64).min(rf.size);
        if start >= end {
            return Err(NsError::Corrupt(format!("remote extent of file {ino} past its upstream size")));
        }
        let key = full_key(&att.binding, &rf.key)?;
        let data = match att.client()?.get_range(&key, start..end, &rf.etag) {
            Ok(d) => d,
            Err(e) => {
                // The object changed or went: the next lookup lists again
                // and replaces the file. (An outage forgets nothing: the
                // cached listings keep serving what is cached.)
                if matches!(e, UpstreamError::Changed | UpstreamError::NotFound) {
                    self.upstream.forget_listings();
                }
                return Err(ns_error(e));
            }
        };
        if data.len() as u64 != end - start {
            return Err(NsError::UpstreamUnavailable(format!(
                "upstream sent {} bytes for a {}-byte range",
                data.len(),
                end - start
            )));
        }
        Ok((data, rf.etag))
    }

    /// Stores a fetched window as one chunk and points the still-remote
    /// parts of `[start, start + data.len())` at it; `false` when nothing
    /// was left to point (the file changed meanwhile).
    fn cache_window(&self, ino: u64, etag: &str, start: u64, data: &[u8]) -> NsResult<bool> {
        let end = start + data.len() as u64;
        let chunk = self.stage_one(data)?;
        let staged = [(0u64, chunk)];
        let res = (|| {
            let _lock = self.extent_locks.get(ino).write().unwrap_or_else(|p| p.into_inner());
            let old = self.extents_overlapping(ino, start, end)?;
            let gc_at = self.gc_at_ms(self.now());
            self.txn(|tx| {
                if tx.get::<crate::record::Inode>(Tree::Inodes, &keys::id(ino))?.is_none() {
                    return Ok(0);
                }
                match tx.get::<Remote>(Tree::Remote, &keys::id(ino))? {
                    Some(Remote::File(f)) if f.etag == etag => {}
                    _ => return Ok(0), // replaced meanwhile: these bytes are not its
                }
                let mut placed = 0;
                for &(off, e) in &old {
                    if !e.is_remote() {
                        continue;
                    }
                    let (s, t) = (off.max(start), (off + e.len as u64).min(end));
                    if s >= t {
                        continue;
                    }
                    punch(tx, ino, s, t, &[(off, e)], gc_at)?;
                    let whole = s == start && t == end;
                    let local = Extent {
                        chunk: chunk.chunk,
                        chunk_off: (s - start) as u32,
                        len: (t - s) as u32,
                        crc64: if whole { chunk.crc64 } else { None },
                    };
                    tx.put(Tree::Extents, &keys::pair(ino, s), &local)?;
                    tx.ref_chunk(chunk.chunk, 1, gc_at)?;
                    placed += 1;
                }
                Ok(placed)
            })
        })();
        let placed = *res.as_ref().unwrap_or(&0);
        self.unstage(&staged, placed == 0);
        res.map(|n| n > 0)
    }

    /// Copies `[offset, offset + buf.len())` of remote extent `(off, e)` of
    /// file `file` into `buf` (which starts at `offset`): from the cache
    /// when a fetch made the window local since the caller read its
    /// extents, else fetched (with readahead for sequential readers).
    pub(crate) fn fill_remote(&self, file: &Inode, off: u64, e: &Extent, offset: u64, buf: &mut [u8]) -> NsResult<()> {
        let ino = file.ino;
        let cs = self.chunk_size_bytes() as u64;
        let end = offset + buf.len() as u64;
        let (s, t) = (off.max(offset), (off + e.len as u64).min(end));
        let mut at = s;
        while at < t {
            let w = at / cs * cs;
            let stop = t.min(w + cs);
            if self.fill_if_local(file, at, stop, &mut buf[(at - offset) as usize..(stop - offset) as usize])? {
                at = stop;
                continue;
            }
            let data = self.fetch_window(ino, w)?;
            let stop = t.min(w + data.len() as u64);
            if stop <= at {
                return Err(NsError::Corrupt(format!("remote extent of file {ino} past its upstream size")));
            }
            buf[(at - offset) as usize..(stop - offset) as usize]
                .copy_from_slice(&data[(at - w) as usize..(stop - w) as usize]);
            at = stop;
        }
        Ok(())
    }
}

impl Namespace {
    /// Reads `[s, t)` of `file` from local chunks if they hold all of it now
    /// and the file's content is still the caller's; `false` otherwise.
    fn fill_if_local(&self, file: &Inode, s: u64, t: u64, dst: &mut [u8]) -> NsResult<bool> {
        let _lock = self.extent_locks.get(file.ino).read().unwrap_or_else(|p| p.into_inner());
        match self.getattr(file.ino) {
            Ok(n) if n.content_gen == file.content_gen => {}
            _ => return Ok(false),
        }
        let ext = self.extents_overlapping(file.ino, s, t)?;
        if ext.iter().any(|(_, e)| e.is_remote()) {
            return Ok(false);
        }
        dst.fill(0);
        self.fill_extents(file, &ext, s, dst)?;
        Ok(true)
    }

    /// A read of `[s, t)` of `file` (which met a remote extent when
    /// `remote`): tracks each window it starts, for readahead. Files never
    /// read remotely are not tracked.
    pub(crate) fn note_read(&self, file: &Inode, s: u64, t: u64, remote: bool) {
        let cs = self.chunk_size_bytes() as u64;
        if !remote && !self.upstream.sequential.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&file.ino) {
            return;
        }
        let mut w = s.div_ceil(cs) * cs;
        while w < t {
            self.note_sequential(file, w);
            w += cs;
        }
    }

    /// A reader met window `w` of `file`: when it is the one after the last
    /// window read, the reader is sequential and the next windows are
    /// fetched in the background, twice as many with each step (up to
    /// [`READAHEAD_WINDOWS_MAX`]).
    fn note_sequential(&self, file: &Inode, w: u64) {
        let cs = self.chunk_size_bytes() as u64;
        let depth = {
            let mut seq = self.upstream.sequential.lock().unwrap_or_else(|p| p.into_inner());
            if seq.len() >= READAHEAD_TRACKED_FILES_MAX {
                seq.clear();
            }
            let (next, streak) = seq.get(&file.ino).copied().unwrap_or((u64::MAX, 0));
            let streak = if w == next { streak + 1 } else { 0 };
            seq.insert(file.ino, (w + cs, streak));
            if streak == 0 {
                return;
            }
            (1usize << streak.min(8)).min(READAHEAD_WINDOWS_MAX)
        };
        for i in 1..=depth as u64 {
            let ahead = w + i * cs;
            if ahead >= file.size {
                break;
            }
            self.upstream.prefetch(file.ino, ahead);
        }
    }

    /// Fetches window `w` of `ino` unless it is local already (the
    /// prefetch threads' work).
    pub(crate) fn prefetch_window(&self, ino: u64, w: u64) {
        let cs = self.chunk_size_bytes() as u64;
        let remote = {
            let _lock = self.extent_locks.get(ino).read().unwrap_or_else(|p| p.into_inner());
            self.extents_overlapping(ino, w, w + cs).map(|e| e.iter().any(|(_, e)| e.is_remote()))
        };
        if let Ok(true) = remote {
            if let Err(e) = self.fetch_window(ino, w) {
                tracing::debug!(ino, w, error = %e, "readahead fetch failed");
            }
        }
    }

    /// Starts the readahead threads (a running gateway does; without them
    /// reads fetch only what they read).
    pub fn start_readahead(self: &Arc<Self>, threads: usize) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, u64)>(READAHEAD_QUEUE_MAX);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let weak = Arc::downgrade(self);
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("readahead-{i}")).spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((ino, w)) = job else { return };
                let Some(ns) = weak.upgrade() else { return };
                ns.prefetch_window(ino, w);
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start a readahead thread");
            }
        }
        *self.upstream.readahead.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }
}

impl Namespace {
    /// Serves `[s, t)` of `file` from the upstream when a cached chunk
    /// failed verification or is gone (a power loss before its barrier):
    /// `true` when `file` is a clean upstream file and the bytes were
    /// fetched into `dst`; `false` (the caller reports the damage) else.
    pub(crate) fn refill_from_upstream(&self, file: &Inode, s: u64, t: u64, dst: &mut [u8]) -> NsResult<bool> {
        match self.remote(file.ino)? {
            Some(Remote::File(f)) if f.synced_gen == file.content_gen => {}
            _ => return Ok(false),
        }
        let cs = self.chunk_size_bytes() as u64;
        tracing::warn!(ino = file.ino, s, t, "a cached chunk is damaged or missing; reading the upstream's bytes");
        let mut at = s;
        while at < t {
            let w = at / cs * cs;
            // Not cached again here: the caller may hold the file's extent
            // lock, which caching takes; eviction replaces the entry later.
            let (data, _) = self.fetch_bytes(file.ino, w)?;
            let stop = t.min(w + data.len() as u64);
            if stop <= at {
                return Err(NsError::Corrupt(format!("file {} shorter upstream than its size", file.ino)));
            }
            dst[(at - s) as usize..(stop - s) as usize].copy_from_slice(&data[(at - w) as usize..(stop - w) as usize]);
            at = stop;
        }
        Ok(true)
    }
}

impl ObjectReader {
    /// Makes the byte at `offset` local, fetching its window when it is
    /// remote, so that a GET can fail with a clean retryable error before
    /// its response starts (rather than mid-body) when the upstream is down.
    pub fn ready_at(&self, offset: u64) -> NsResult<()> {
        if offset >= self.inode.size {
            return Ok(());
        }
        let remote = match &self.extents {
            Some(ext) => {
                let i = ext.partition_point(|(off, e)| off + e.len as u64 <= offset);
                ext.get(i).is_some_and(|(off, e)| *off <= offset && e.is_remote())
            }
            None => self.ns.extents_overlapping(self.inode.ino, offset, offset + 1)?.iter().any(|(_, e)| e.is_remote()),
        };
        if remote {
            let cs = self.ns.chunk_size_bytes() as u64;
            self.ns.fetch_window(self.inode.ino, offset / cs * cs)?;
        }
        Ok(())
    }
}

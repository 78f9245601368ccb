//! Reading remote extents: a read that meets one fetches the chunk-aligned
//! window around it from the upstream (a ranged GET conditional on the
//! ETag the file was listed with), is served each byte **as it arrives**,
//! and the window is then kept as a local chunk whose extents replace the
//! remote ones.
//!
//! One fetch per window: its bytes land in a shared buffer ([`Slot`]) that
//! every reader of that window copies from as soon as its own range is
//! there, and the fetch runs on a thread of its own (once
//! [`Namespace::start_upstream_workers`] ran), so that the reader that
//! started it is not held until the whole window arrived. A body cut off
//! mid-way is asked for again from where it stopped (still conditional on
//! the ETag), a few times, before the readers waiting get an error.
//!
//! A cache fill changes no attribute and no content generation: the bytes
//! were the file's already. It is not fsync'd on the read path: its chunk
//! joins the chunk store's pending set and its extents are committed
//! without a barrier, so the next barrier (any durable call) makes the
//! chunk durable before the metadata that points at it, as for unstable
//! NFS writes. Losing a fill in a crash only means fetching again; a
//! cached chunk found torn or missing after a power loss is read as a miss
//! (`refill_from_upstream`), never as an error, since the upstream still
//! has those bytes.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use super::{full_key, ns_error, Attached, UpstreamError};
use crate::data::punch;
use crate::record::{Extent, Inode, Remote};
use crate::tree::Tree;
use crate::{keys, Namespace, NsError, NsResult, ObjectReader};

/// Times a window's body cut off mid-way is asked for again from where it
/// stopped (each try having brought bytes) before the fetch fails.
const FETCH_RESUMES_MAX: u32 = 3;

/// One window fetch: the bytes arrived so far, and how it ended.
struct Progress {
    /// The window's bytes that arrived so far (moved to `whole` at the end).
    buf: Vec<u8>,
    /// All of the window, once it arrived.
    whole: Option<Arc<Vec<u8>>>,
    /// Why the fetch ended without all of it (as text: `NsError` is not
    /// `Clone`; every fetch error is a retryable upstream failure).
    failed: Option<String>,
    /// The fetch and its caching are over.
    settled: bool,
    /// The least `buf` length a waiting reader needs (`usize::MAX`: none
    /// waits): readers are woken when it is reached, not for every piece.
    wake_at: usize,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { buf: Vec::new(), whole: None, failed: None, settled: false, wake_at: usize::MAX }
    }
}

/// One fetch in flight, shared by every reader of its window.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<Progress>,
    cv: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, Progress>) -> MutexGuard<'a, Progress> {
        self.cv.wait(g).unwrap_or_else(|p| p.into_inner())
    }

    /// Copies bytes `[from, from + dst.len())` of the window into `dst` as
    /// soon as they arrived.
    fn copy_when_arrived(&self, from: usize, dst: &mut [u8]) -> NsResult<()> {
        let to = from + dst.len();
        let mut p = self.lock();
        loop {
            if let Some(whole) = &p.whole {
                let src = whole.get(from..to).ok_or_else(|| {
                    NsError::Corrupt(format!(
                        "a remote extent reaches past its upstream object ({} bytes)",
                        whole.len()
                    ))
                })?;
                dst.copy_from_slice(src);
                return Ok(());
            }
            if p.buf.len() >= to {
                dst.copy_from_slice(&p.buf[from..to]);
                return Ok(());
            }
            if let Some(e) = &p.failed {
                return Err(NsError::UpstreamUnavailable(e.clone()));
            }
            p.wake_at = p.wake_at.min(to);
            p = self.wait(p);
        }
    }

    /// Waits until the fetch and its caching are over; its outcome.
    fn wait_settled(&self) -> NsResult<()> {
        let mut p = self.lock();
        while !p.settled {
            p = self.wait(p);
        }
        match &p.failed {
            Some(e) => Err(NsError::UpstreamUnavailable(e.clone())),
            None => Ok(()),
        }
    }
}

/// Fetches in flight by (inode, window start), and the way to give one a
/// thread of its own.
#[derive(Default)]
pub(crate) struct Fetches {
    inflight: Mutex<HashMap<(u64, u64), Arc<Slot>>>,
    /// The namespace itself, once workers were started (a fetch thread
    /// holds it for as long as one fetch lasts).
    pub(crate) me: OnceLock<Weak<Namespace>>,
}

/// Ends a fetch whatever happened to its thread: readers are never left
/// waiting on a slot nobody will fill.
struct Settle<'a> {
    ns: &'a Namespace,
    at: (u64, u64),
    slot: &'a Slot,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        {
            let mut p = self.slot.lock();
            if p.whole.is_none() && p.failed.is_none() {
                p.failed = Some("the fetch was abandoned".into());
            }
            p.settled = true;
        }
        self.slot.cv.notify_all();
        self.ns.upstream.fetches.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.at);
    }
}

impl Namespace {
    /// The fetch of window `start` of `ino`: the one in flight, or a new
    /// one this caller must run (`true`).
    fn join_fetch(&self, ino: u64, start: u64) -> (Arc<Slot>, bool) {
        let mut map = self.upstream.fetches.inflight.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&(ino, start)) {
            Some(s) => (s.clone(), false),
            None => {
                let s = Arc::new(Slot::default());
                map.insert((ino, start), s.clone());
                (s, true)
            }
        }
    }

    /// A new fetch of window `start` of `ino` for the caller to run; `None`
    /// when one is in flight already.
    pub(crate) fn lead_fetch(&self, ino: u64, start: u64) -> Option<Arc<Slot>> {
        match self.join_fetch(ino, start) {
            (slot, true) => Some(slot),
            (_, false) => None,
        }
    }

    /// Fetches and caches the window of file `ino` that starts at `start`
    /// (a multiple of the chunk size), or waits for the fetch of it in
    /// flight; returns once it is cached (or failed).
    pub(crate) fn fetch_window(&self, ino: u64, start: u64) -> NsResult<()> {
        let (slot, leader) = self.join_fetch(ino, start);
        if leader {
            self.run_fetch(ino, start, &slot);
        }
        slot.wait_settled()
    }

    /// Copies bytes `[start + from, start + from + dst.len())` of file `ino`
    /// from the upstream as soon as they arrived, fetching the window at
    /// `start` (on a thread of its own when workers run) unless a fetch of
    /// it is in flight.
    fn read_window(&self, ino: u64, start: u64, from: usize, dst: &mut [u8]) -> NsResult<()> {
        let (slot, leader) = self.join_fetch(ino, start);
        if leader {
            let me = self.upstream.fetches.me.get().and_then(Weak::upgrade);
            let spawned = me.map(|ns| {
                let s = slot.clone();
                std::thread::Builder::new().name("upstream-fetch".into()).spawn(move || ns.run_fetch(ino, start, &s))
            });
            match spawned {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "no thread for an upstream fetch; fetching inline");
                    self.run_fetch(ino, start, &slot);
                }
                None => self.run_fetch(ino, start, &slot),
            }
        }
        slot.copy_when_arrived(from, dst)
    }

    /// Runs the fetch of window `start` of `ino` into `slot`, caches what
    /// arrived whole, and ends the fetch.
    pub(crate) fn run_fetch(&self, ino: u64, start: u64, slot: &Slot) {
        let _settle = Settle { ns: self, at: (ino, start), slot };
        let etag = match self.stream_window(ino, start, slot) {
            Ok(etag) => etag,
            Err(e) => {
                slot.lock().failed = Some(e.to_string());
                slot.cv.notify_all();
                return;
            }
        };
        let whole = {
            let mut p = slot.lock();
            let whole = Arc::new(std::mem::take(&mut p.buf));
            p.whole = Some(whole.clone());
            whole
        };
        slot.cv.notify_all();
        self.upstream.cache.miss_bytes.fetch_add(whole.len() as u64, std::sync::atomic::Ordering::Relaxed);
        match self.cache_window(ino, &etag, start, &whole) {
            Ok(true) => {
                self.upstream.cache.insert((ino, start), whole.len() as u64, false);
                if let Err(e) = self.evict_as_needed() {
                    tracing::warn!(error = %e, "cache eviction failed");
                }
            }
            Ok(false) => {}
            // Serving the bytes matters more than keeping them.
            Err(e) => tracing::warn!(ino, start, error = %e, "fetched upstream bytes not cached"),
        }
    }

    /// Streams the window at `start` of `ino` into `slot`'s buffer, waking
    /// its readers as bytes arrive; the ETag the bytes are of.
    fn stream_window(&self, ino: u64, start: u64, slot: &Slot) -> NsResult<String> {
        let (key, end, etag, att) = self.window_source(ino, start)?;
        let len = (end - start) as usize;
        slot.lock().buf.reserve_exact(len);
        let mut resumes = 0;
        loop {
            let from = slot.lock().buf.len();
            let mut sink = |piece: &[u8]| {
                let wake = {
                    let mut p = slot.lock();
                    let room = len - p.buf.len();
                    p.buf.extend_from_slice(&piece[..piece.len().min(room)]);
                    let wake = p.buf.len() >= p.wake_at;
                    if wake {
                        p.wake_at = usize::MAX; // the woken register again
                    }
                    wake
                };
                if wake {
                    slot.cv.notify_all();
                }
            };
            let r = att.client()?.get_range_into(&key, start + from as u64..end, &etag, &mut sink);
            let got = slot.lock().buf.len();
            match r {
                Ok(()) if got == len => return Ok(etag),
                Ok(()) => {
                    return Err(NsError::UpstreamUnavailable(format!(
                        "upstream sent {} bytes for a {len}-byte range",
                        got - from
                    )))
                }
                Err(UpstreamError::Unavailable(m)) if got > from && resumes < FETCH_RESUMES_MAX => {
                    resumes += 1;
                    tracing::debug!(ino, start, got, error = %m, "upstream body cut off; asking for the rest");
                }
                Err(e) => {
                    // The object changed or went: the next lookup lists
                    // again and replaces the file. (An outage forgets
                    // nothing: the cached listings keep serving.)
                    if matches!(e, UpstreamError::Changed | UpstreamError::NotFound) {
                        self.upstream.forget_listings();
                    }
                    return Err(ns_error(e));
                }
            }
        }
    }

    /// Where window `start` of `ino` is upstream: the full key, the
    /// window's end (the object's size caps it), the ETag every fetch is
    /// conditional on, and the bucket's client.
    fn window_source(&self, ino: u64, start: u64) -> NsResult<(String, u64, String, Arc<Attached>)> {
        let (rf, att) = self
            .remote_file(ino)?
            .ok_or_else(|| NsError::Corrupt(format!("file {ino} has remote extents but no remote record")))?;
        let end = (start + self.chunk_size_bytes() as u64).min(rf.size);
        if start >= end {
            return Err(NsError::Corrupt(format!("remote extent of file {ino} past its upstream size")));
        }
        let key = full_key(&att.binding, &rf.key)?;
        Ok((key, end, rf.etag, att))
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
    /// extents, else from the upstream as the bytes arrive.
    pub(crate) fn fill_remote(&self, file: &Inode, off: u64, e: &Extent, offset: u64, buf: &mut [u8]) -> NsResult<()> {
        let cs = self.chunk_size_bytes() as u64;
        let end = offset + buf.len() as u64;
        let (s, t) = (off.max(offset), (off + e.len as u64).min(end));
        let mut at = s;
        while at < t {
            let w = at / cs * cs;
            let stop = t.min(w + cs);
            let dst = &mut buf[(at - offset) as usize..(stop - offset) as usize];
            if !self.fill_if_local(file, at, stop, dst)? {
                self.read_window(file.ino, w, (at - w) as usize, dst)?;
            }
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
            let (key, end, etag, att) = self.window_source(file.ino, w)?;
            let data = att.client()?.get_range(&key, w..end, &etag).map_err(ns_error)?;
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
    /// Waits for the byte at `offset` to arrive, fetching its window when it
    /// is remote, so that a GET can fail with a clean retryable error before
    /// its response starts (rather than mid-body) when the upstream is down,
    /// without waiting for more than the first bytes. `true` when that
    /// byte is still arriving from the upstream (the caller may then send
    /// small first pieces).
    pub fn ready_at(&self, offset: u64) -> NsResult<bool> {
        if offset >= self.inode.size {
            return Ok(false);
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
            let w = offset / cs * cs;
            self.ns.read_window(self.inode.ino, w, (offset - w) as usize, &mut [0u8])?;
        }
        Ok(remote)
    }
}

//! The bounded cache of bound buckets: which fetched windows stay local.
//!
//! Policy: S3-FIFO (Yang et al., SOSP 2023), a scan-resistant FIFO family
//! member chosen over LRU because a training epoch is a one-pass scan of a
//! dataset that may be larger than the cache: under LRU such a scan
//! flushes the hot working set (checkpoints, a validation subset, the
//! files every worker opens). New windows enter a small probationary FIFO
//! (10% of the capacity); a window read again while there moves to the
//! main FIFO when it reaches the head; one read once is evicted from the
//! small FIFO without ever touching the main one. The main FIFO gives each
//! window one more lap per hit (a CLOCK-like second chance). Hits are
//! counted without locks on the data path beyond one map lookup.
//!
//! Eviction turns a window's local extents back into remote extents
//! (the bytes are still the upstream's, at the same ETag), only for clean
//! files (nothing to upload) and only for chunks no reader has pinned;
//! the chunk is queued for GC at once (freed by `reclaim_evicted`, off the
//! read path). The policy's state is memory only:
//! at start-up it is rebuilt from the extents of clean bound files (every
//! local extent of one is a cached window), so the cache survives a
//! restart, its order does not.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::data::punch;
use crate::full_scan::scan_all;
use crate::record::{self, Remote};
use crate::tree::Tree;
use crate::{keys, Namespace, NsResult};

/// Share of the capacity the probationary FIFO may hold, in percent.
const SMALL_FIFO_PERCENT: u64 = 10;
/// Highest hit count remembered per window (S3-FIFO uses 3).
const FREQ_MAX: u8 = 3;
/// Windows looked at per eviction call before giving up (all pinned or
/// dirty): bounds the time a fetch spends evicting.
const EVICT_VISITS_MAX: usize = 4096;

/// A cached window: (inode, window start).
type Win = (u64, u64);

#[derive(Clone, Copy, Debug)]
struct Entry {
    bytes: u64,
    freq: u8,
    main: bool,
}

#[derive(Default)]
struct Fifos {
    entries: BTreeMap<Win, Entry>,
    small: VecDeque<Win>,
    main: VecDeque<Win>,
    small_bytes: u64,
    main_bytes: u64,
}

/// What the cache holds and has done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Capacity in bytes (0: unbounded).
    pub capacity_bytes: u64,
    /// Bytes of cached windows.
    pub used_bytes: u64,
    /// Windows cached.
    pub windows: u64,
    /// Bytes served from cached windows since start.
    pub hit_bytes: u64,
    /// Bytes fetched from upstreams since start.
    pub miss_bytes: u64,
    /// Windows evicted since start.
    pub evictions: u64,
}

/// The cache's bookkeeping.
#[derive(Default)]
pub(crate) struct CachePolicy {
    fifos: Mutex<Fifos>,
    pub(crate) capacity_bytes: AtomicU64,
    hit_bytes: AtomicU64,
    pub(crate) miss_bytes: AtomicU64,
    evictions: AtomicU64,
}

impl CachePolicy {
    fn lock(&self) -> std::sync::MutexGuard<'_, Fifos> {
        self.fifos.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A window became local (fetched, or a clean file's data).
    pub(crate) fn insert(&self, w: Win, bytes: u64, main: bool) {
        let mut f = self.lock();
        if f.entries.contains_key(&w) {
            return;
        }
        f.entries.insert(w, Entry { bytes, freq: 0, main });
        if main {
            f.main.push_back(w);
            f.main_bytes += bytes;
        } else {
            f.small.push_back(w);
            f.small_bytes += bytes;
        }
    }

    /// `bytes` of window `w` were served locally.
    pub(crate) fn hit(&self, w: Win, bytes: u64) {
        let mut f = self.lock();
        if let Some(e) = f.entries.get_mut(&w) {
            e.freq = (e.freq + 1).min(FREQ_MAX);
            drop(f);
            self.hit_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Forgets every window of `ino` (its file was replaced or removed).
    pub(crate) fn forget(&self, ino: u64) {
        let mut f = self.lock();
        let gone: Vec<(Win, Entry)> = f.entries.range((ino, 0)..=(ino, u64::MAX)).map(|(k, e)| (*k, *e)).collect();
        for (w, e) in gone {
            f.entries.remove(&w);
            if e.main {
                f.main_bytes -= e.bytes;
            } else {
                f.small_bytes -= e.bytes;
            }
        }
        // Queue slots of forgotten windows are skipped when popped.
    }

    fn used(&self) -> u64 {
        let f = self.lock();
        f.small_bytes + f.main_bytes
    }

    /// The next window S3-FIFO would evict, taken out of the policy (the
    /// caller evicts it or puts it back with [`CachePolicy::insert`]).
    fn victim(&self, capacity: u64) -> Option<(Win, Entry)> {
        let mut f = self.lock();
        loop {
            let from_small = f.small_bytes > capacity * SMALL_FIFO_PERCENT / 100 || f.main.is_empty();
            let w = if from_small { f.small.pop_front()? } else { f.main.pop_front()? };
            let Some(mut e) = f.entries.get(&w).copied() else { continue }; // forgotten
            if e.main == from_small {
                continue; // a stale slot of a window that moved
            }
            if from_small {
                f.small_bytes -= e.bytes;
                if e.freq > 0 {
                    // Read again while on probation: promote.
                    e.freq = 0;
                    e.main = true;
                    f.entries.insert(w, e);
                    f.main.push_back(w);
                    f.main_bytes += e.bytes;
                    continue;
                }
            } else {
                f.main_bytes -= e.bytes;
                if e.freq > 0 {
                    e.freq -= 1; // another lap
                    f.entries.insert(w, e);
                    f.main.push_back(w);
                    f.main_bytes += e.bytes;
                    continue;
                }
            }
            f.entries.remove(&w);
            return Some((w, e));
        }
    }
}

impl Namespace {
    /// Rebuilds the policy from disk: every local extent of a clean file of
    /// a bound bucket is a cached window. Runs at open.
    pub(crate) fn rebuild_cache_index(&self) -> NsResult<()> {
        if !self.upstream.any() {
            return Ok(());
        }
        let mut files = Vec::new();
        scan_all(self, Tree::Remote, |k, v| {
            if let Remote::File(f) = record::decode::<Remote>("remote", v)? {
                files.push((u64::from_be_bytes(k.try_into().unwrap_or([0; 8])), f.synced_gen));
            }
            Ok(())
        })?;
        for (ino, synced) in files {
            match self.getattr(ino) {
                Ok(n) if n.content_gen == synced => self.index_local_windows(ino, n.size, true)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds the windows of `ino` that hold local extents to the policy
    /// (after an upload made the file clean, or at start-up).
    pub(crate) fn index_local_windows(&self, ino: u64, size: u64, main: bool) -> NsResult<()> {
        let cs = self.chunk_size_bytes() as u64;
        let mut wins: BTreeMap<u64, u64> = BTreeMap::new();
        for (off, e) in self.extents_overlapping(ino, 0, size)? {
            if e.is_remote() {
                continue;
            }
            let end = off + e.len as u64;
            let mut at = off;
            while at < end {
                let w = at / cs * cs;
                let stop = end.min(w + cs);
                *wins.entry(w).or_default() += stop - at;
                at = stop;
            }
        }
        for (w, bytes) in wins {
            self.upstream.cache.insert((ino, w), bytes, main);
        }
        Ok(())
    }

    /// Counts a local read of `[s, t)` of `ino` as a hit of its windows.
    pub(crate) fn note_hits(&self, ino: u64, s: u64, t: u64) {
        let cs = self.chunk_size_bytes() as u64;
        let mut at = s;
        while at < t {
            let w = at / cs * cs;
            let stop = t.min(w + cs);
            self.upstream.cache.hit((ino, w), stop - at);
            at = stop;
        }
    }

    /// Evicts windows until the cache is within its capacity (and the data
    /// volume has its minimum free space). Returns the windows evicted.
    pub(crate) fn evict_as_needed(&self) -> NsResult<u64> {
        let capacity = self.upstream.cache.capacity_bytes.load(Ordering::Relaxed);
        let free_min = self.cfg.cache_free_bytes_min;
        let mut evicted = 0;
        let mut kept = Vec::new();
        for _ in 0..EVICT_VISITS_MAX {
            let over_capacity = capacity > 0 && self.upstream.cache.used() > capacity;
            let low_space = free_min > 0 && self.fs_stats().is_ok_and(|s| s.avail_bytes < free_min);
            if !(over_capacity || low_space) {
                break;
            }
            let Some((w, e)) = self.upstream.cache.victim(capacity.max(1)) else { break };
            if self.evict_window(w.0, w.1)? {
                evicted += 1;
            } else {
                kept.push((w, e));
            }
        }
        for (w, e) in kept {
            self.upstream.cache.insert(w, e.bytes, e.main);
        }
        if evicted > 0 {
            self.upstream.cache.evictions.fetch_add(evicted, Ordering::Relaxed);
            // The evicted chunks were queued for GC at once; a GC pass (a
            // scan of the GC queue and a barrier) is too much for the read
            // that triggered this: `reclaim_evicted` frees them soon after.
            self.upstream.gc_wanted.store(true, Ordering::Release);
        }
        Ok(evicted)
    }

    /// Frees the chunks evictions released since the last call (a GC pass;
    /// nothing when there were none). The gateway calls it every second.
    pub fn reclaim_evicted(&self) -> NsResult<()> {
        if self.upstream.gc_wanted.swap(false, Ordering::AcqRel) {
            self.run_gc()?;
        }
        Ok(())
    }

    /// Turns the local extents of window `w` of `ino` back into remote ones;
    /// `false` when it must stay (dirty file, pinned chunk).
    pub(super) fn evict_window(&self, ino: u64, w: u64) -> NsResult<bool> {
        let cs = self.chunk_size_bytes() as u64;
        let _lock = self.extent_locks.get(ino).write().unwrap_or_else(|p| p.into_inner());
        let Ok(n) = self.getattr(ino) else { return Ok(true) }; // gone: nothing to evict
        let rf = match self.remote(ino)? {
            Some(Remote::File(f)) if f.synced_gen == n.content_gen => f,
            _ => return Ok(false), // dirty (or no longer bound): not evictable
        };
        if self.meta.get(Tree::UploadQueue, &keys::id(ino))?.is_some() {
            return Ok(false);
        }
        let end = (w + cs).min(rf.size).min(n.size);
        let local: Vec<_> =
            self.extents_overlapping(ino, w, end)?.into_iter().filter(|(_, e)| !e.is_remote()).collect();
        {
            let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
            if local.iter().any(|(_, e)| pins.contains_key(&e.chunk)) {
                return Ok(false);
            }
        }
        let gc_at = (self.now().max(0) / 1_000_000) as u64; // at once
        self.txn(|tx| {
            for &(off, e) in &local {
                let (s, t) = (off.max(w), (off + e.len as u64).min(end));
                if s >= t {
                    continue;
                }
                punch(tx, ino, s, t, &[(off, e)], gc_at)?;
                self.put_remote_extents(tx, ino, s, t)?;
            }
            Ok(())
        })?;
        Ok(true)
    }

    /// The cache's figures.
    pub fn cache_stats(&self) -> CacheStats {
        let c = &self.upstream.cache;
        let f = c.lock();
        CacheStats {
            capacity_bytes: c.capacity_bytes.load(Ordering::Relaxed),
            used_bytes: f.small_bytes + f.main_bytes,
            windows: f.entries.len() as u64,
            hit_bytes: c.hit_bytes.load(Ordering::Relaxed),
            miss_bytes: c.miss_bytes.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 100;

    fn policy(capacity: u64) -> CachePolicy {
        let p = CachePolicy::default();
        p.capacity_bytes.store(capacity, Ordering::Relaxed);
        p
    }

    /// Evicts until within `capacity`, as `evict_as_needed` does.
    fn shrink(p: &CachePolicy, capacity: u64) -> Vec<Win> {
        let mut out = Vec::new();
        while p.used() > capacity {
            out.push(p.victim(capacity).unwrap().0);
        }
        out
    }

    /// The property the policy is chosen for: a one-pass scan of more data
    /// than the cache holds does not flush a working set that is being
    /// read again.
    #[test]
    fn a_one_pass_scan_does_not_flush_the_hot_set() {
        let capacity = 100 * W;
        let p = policy(capacity);
        // A hot set of 50 windows, read a few times.
        for i in 0..50 {
            p.insert((1, i), W, false);
            p.hit((1, i), W);
        }
        shrink(&p, capacity);
        // A scan of 1,000 windows (10x the cache), each read once, with the
        // hot set still read now and then.
        for i in 0..1000 {
            p.insert((2, i), W, false);
            if i % 20 == 0 {
                for h in 0..50 {
                    p.hit((1, h), W);
                }
            }
            shrink(&p, capacity);
        }
        let f = p.lock();
        let hot_left = (0..50).filter(|i| f.entries.contains_key(&(1, *i))).count();
        assert_eq!(hot_left, 50, "the scan evicted part of the hot set");
        assert!(f.small_bytes + f.main_bytes <= capacity);
    }

    /// Under plain LRU the same scan would have flushed it: the windows a
    /// scan brings in once are the ones evicted first here.
    #[test]
    fn windows_read_once_leave_first() {
        let p = policy(10 * W);
        for i in 0..10 {
            p.insert((1, i), W, false);
        }
        p.hit((1, 3), W);
        p.insert((1, 10), W, false);
        let gone = shrink(&p, 10 * W);
        assert_eq!(gone, vec![(1, 0)]);
        // (1, 3) was promoted on its way out of the small FIFO.
        let mut gone = Vec::new();
        for i in 11..20 {
            p.insert((1, i), W, false);
            gone.extend(shrink(&p, 10 * W));
        }
        assert!(!gone.contains(&(1, 3)), "{gone:?}");
    }

    #[test]
    fn forgetting_a_file_releases_its_bytes() {
        let p = policy(0);
        p.insert((7, 0), W, false);
        p.insert((7, 1), W, true);
        p.insert((8, 0), W, false);
        p.forget(7);
        assert_eq!(p.used(), W);
        assert_eq!(p.victim(1).unwrap().0, (8, 0));
        assert!(p.victim(1).is_none());
    }
}

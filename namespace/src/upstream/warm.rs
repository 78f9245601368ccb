//! Warming and evicting a prefix of a bound bucket: `gateway cache warm`
//! fetches every window not yet local (in parallel; what is cached is
//! skipped, so a warm that was cut off resumes where it stopped), and
//! `gateway cache evict` turns clean files back into remote ones.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::access::Caller;
use crate::list::{ListEntry, ListParams};
use crate::record::Kind;
use crate::{Namespace, NsError, NsResult};

/// Keys listed per page while walking a prefix.
const WALK_PAGE_KEYS: usize = 1000;
/// Most fetches a warm runs at once.
pub const WARM_PARALLEL_MAX: usize = 64;
/// Files one warm or evict walks (the work list is held in memory).
pub const WALK_FILES_MAX: usize = 10_000_000;

/// Where a warm stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmProgress {
    /// Bytes fetched so far.
    pub done_bytes: u64,
    /// Bytes to fetch in all.
    pub total_bytes: u64,
}

/// What a warm did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Files under the prefix.
    pub files: u64,
    /// Bytes fetched from the upstream.
    pub fetched_bytes: u64,
    /// Bytes that were local already.
    pub cached_bytes: u64,
    /// Windows that failed (the first error is kept).
    pub failed: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Time taken.
    pub elapsed: Duration,
}

impl Namespace {
    /// The files under `prefix` of bound bucket `bucket`: (inode, size).
    fn files_under(&self, bucket: &[u8], prefix: &[u8]) -> NsResult<Vec<(u64, u64)>> {
        let b = self.bucket(bucket)?;
        if self.bound(b.ino).is_none() {
            return Err(NsError::InvalidArgument(format!(
                "bucket {:?} is not bound to an upstream",
                String::from_utf8_lossy(bucket)
            )));
        }
        let mut out = Vec::new();
        let mut params = ListParams { prefix: prefix.to_vec(), max_keys: WALK_PAGE_KEYS, ..ListParams::default() };
        loop {
            let page = self.list_objects(&Caller::root(), bucket, &params)?;
            for e in &page.entries {
                if let ListEntry::Object { info, .. } = e {
                    if info.inode.kind == Kind::File {
                        out.push((info.inode.ino, info.inode.size));
                    }
                }
            }
            if out.len() > WALK_FILES_MAX {
                return Err(NsError::TooLarge(format!("more than {WALK_FILES_MAX} files under the prefix")));
            }
            match page.next_start_after {
                Some(next) if page.truncated => params.start_after = Some(next),
                _ => return Ok(out),
            }
        }
    }

    /// Fetches every window under `prefix` of bound bucket `bucket` that is
    /// not local yet, `parallel` at a time; `progress` is called as bytes
    /// arrive (from the fetching threads).
    pub fn warm(
        &self,
        bucket: &[u8],
        prefix: &[u8],
        parallel: usize,
        progress: &(dyn Fn(WarmProgress) + Sync),
    ) -> NsResult<WarmReport> {
        let started = Instant::now();
        let cs = self.chunk_size_bytes() as u64;
        let files = self.files_under(bucket, prefix)?;
        let mut report = WarmReport { files: files.len() as u64, ..WarmReport::default() };
        let mut work = Vec::new();
        for &(ino, size) in &files {
            let (windows, remote_bytes) = self.remote_windows(ino, size)?;
            work.extend(windows.into_iter().map(|w| (ino, w, (w + cs).min(size) - w)));
            report.cached_bytes += size - remote_bytes.min(size);
        }
        let total: u64 = work.iter().map(|w| w.2).sum();
        let (next, done, failed) = (AtomicUsize::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let first_error = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..parallel.clamp(1, WARM_PARALLEL_MAX) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(ino, w, bytes)) = work.get(i) else { return };
                    match self.fetch_window(ino, w) {
                        Ok(()) => {
                            let d = done.fetch_add(bytes, Ordering::Relaxed) + bytes;
                            progress(WarmProgress { done_bytes: d, total_bytes: total });
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.to_string());
                        }
                    }
                });
            }
        });
        report.fetched_bytes = done.into_inner();
        report.failed = failed.into_inner();
        report.first_error = first_error.into_inner().unwrap_or_else(|p| p.into_inner());
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Before the first local change of a file that is an upstream object:
    /// fetches whatever of it is not local, so that a change is never based
    /// on bytes the upstream could replace. Fails (retryably) when the
    /// upstream cannot answer; a no-op for files already whole here.
    pub(crate) fn make_local(&self, ino: u64) -> NsResult<()> {
        if !self.upstream.any() {
            return Ok(());
        }
        let n = self.getattr(ino)?;
        // Only a clean upstream file can hold remote extents (a dirty one
        // was made whole at its first change; eviction takes clean ones).
        match self.remote(ino)? {
            Some(crate::record::Remote::File(f)) if f.synced_gen == n.content_gen => {}
            _ => return Ok(()),
        }
        for w in self.remote_windows(ino, n.size)?.0 {
            self.fetch_window(ino, w)?;
        }
        Ok(())
    }

    /// The starts of the windows of `ino` (of `size` bytes) that hold
    /// remote bytes, in order, each once; and how many bytes are remote.
    fn remote_windows(&self, ino: u64, size: u64) -> NsResult<(Vec<u64>, u64)> {
        let cs = self.chunk_size_bytes() as u64;
        let (mut out, mut remote_bytes) = (Vec::new(), 0);
        for (off, e) in self.extents_overlapping(ino, 0, size)? {
            if !e.is_remote() {
                continue;
            }
            remote_bytes += e.len as u64;
            let mut w = off / cs * cs;
            while w < off + e.len as u64 {
                if out.last() != Some(&w) {
                    out.push(w);
                }
                w += cs;
            }
        }
        Ok((out, remote_bytes))
    }

    /// Evicts the cached data of every clean file under `prefix` of bound
    /// bucket `bucket` (dirty files and pinned chunks stay). Returns the
    /// files walked and the windows evicted.
    pub fn evict_prefix(&self, bucket: &[u8], prefix: &[u8]) -> NsResult<(u64, u64)> {
        let cs = self.chunk_size_bytes() as u64;
        let files = self.files_under(bucket, prefix)?;
        let mut evicted = 0;
        for &(ino, size) in &files {
            let mut all = true;
            let mut w = 0;
            while w < size {
                let local = self.extents_overlapping(ino, w, (w + cs).min(size))?.iter().any(|(_, e)| !e.is_remote());
                if local {
                    if self.evict_window(ino, w)? {
                        evicted += 1;
                    } else {
                        all = false;
                    }
                }
                w += cs;
            }
            if all {
                self.upstream.cache.forget(ino);
            }
        }
        if evicted > 0 {
            self.run_gc()?;
        }
        Ok((files.len() as u64, evicted))
    }
}

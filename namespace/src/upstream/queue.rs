//! The persistent upload queue of bound buckets: one `upload_queue` record
//! per dirty file, written in the transaction that made it dirty (an S3
//! publish, an NFS create, write or truncate, a rename), so that kill -9
//! loses nothing acknowledged; uploads resume at start-up.
//!
//! S3 writes run their item at once and answer after the upstream did
//! (write-through; when that fails the answer is a 503 and the item stays
//! queued). NFS changes wait until the file has been quiet for the
//! binding's `upload_delay_secs`. An item whose file changed during its
//! upload stays queued for the next pass. Upstream outages back off and
//! retry for ever (everything drains when the upstream returns); refusals
//! (credentials, a key the upstream cannot hold) count towards
//! [`UPLOAD_REFUSALS_MAX`], after which the item is poisoned: reported by
//! [`Namespace::upload_queue_status`], retried only by a flush.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};

use super::{full_key, UpstreamError};
use crate::access::Caller;
use crate::clock::Nanos;
use crate::full_scan::scan_all;
use crate::record::{self, Inode, Kind, QueuedUpload, Remote, RemoteFile};
use crate::tree::Tree;
use crate::tx::Tx;
use crate::{keys, Namespace, NsError, NsResult};

/// Refusals after which an item is poisoned.
pub const UPLOAD_REFUSALS_MAX: u32 = 5;
/// Longest back-off between attempts of a failing item.
const UPLOAD_BACKOFF_NS_MAX: i64 = 60_000_000_000;
/// First back-off.
const UPLOAD_BACKOFF_NS_MIN: i64 = 500_000_000;
/// Poisoned items listed by the status.
const STATUS_POISONED_LISTED_MAX: usize = 100;
/// Files one upload pass uploads at once (each with the client's own parts
/// in flight: 4 x 16 MiB with `upstream-s3`, so 16 requests in all).
const UPLOADS_IN_PARALLEL: usize = 4;

/// What a pass over the queue did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Files uploaded (or copied upstream after a rename).
    pub uploaded: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Items that failed and stay queued.
    pub failed: u64,
    /// Items dropped because their file is gone (or already clean).
    pub dropped: u64,
}

impl std::ops::AddAssign for UploadReport {
    fn add_assign(&mut self, o: UploadReport) {
        self.uploaded += o.uploaded;
        self.bytes += o.bytes;
        self.failed += o.failed;
        self.dropped += o.dropped;
    }
}

/// The queue at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Items queued.
    pub items: u64,
    /// Their files' sizes (the dirty bytes).
    pub dirty_bytes: u64,
    /// Items that are failing now (back-off).
    pub failing: u64,
    /// Poisoned items: key and last error (at most 100 listed).
    pub poisoned: Vec<(String, String)>,
    /// Local changes kept under a conflict name since start.
    pub conflicts: u64,
}

/// Files whose upload runs now: one upload of a file at a time (an S3
/// write-through and the background pass would otherwise both send it).
#[derive(Default)]
pub(crate) struct InFlight {
    set: Mutex<HashSet<u64>>,
    cv: Condvar,
}

/// Holds a file's upload slot.
struct Claim<'a>(&'a InFlight, u64);

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
        self.0.cv.notify_all();
    }
}

impl InFlight {
    /// The slot of `ino`: waits for a running upload when `wait`, else
    /// `None` when one runs.
    fn claim(&self, ino: u64, wait: bool) -> Option<Claim<'_>> {
        let mut set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        while set.contains(&ino) {
            if !wait {
                return None;
            }
            set = self.cv.wait(set).unwrap_or_else(|p| p.into_inner());
        }
        set.insert(ino);
        Some(Claim(self, ino))
    }
}

fn backoff_ns(attempts: u32) -> i64 {
    UPLOAD_BACKOFF_NS_MIN.saturating_mul(1i64 << attempts.min(20)).min(UPLOAD_BACKOFF_NS_MAX)
}

impl Namespace {
    /// Inside a transaction that made file `ino` dirty: queue it (or push
    /// its queued upload back by the quiet delay). Files outside bound
    /// buckets have no record and are left alone.
    pub(crate) fn queue_dirty(&self, tx: &mut Tx<'_>, ino: u64, now: Nanos, bytes: u64) -> NsResult<()> {
        if !self.upstream.any() {
            return Ok(());
        }
        let queued = tx.get::<QueuedUpload>(Tree::UploadQueue, &keys::id(ino))?;
        let remote = if queued.is_none() { tx.get::<Remote>(Tree::Remote, &keys::id(ino))? } else { None };
        if queued.is_some() || matches!(remote, Some(Remote::File(_))) {
            self.charge_dirty(bytes)?;
        }
        if let Some(mut q) = queued {
            q.due = now.saturating_add(self.quiet_ns(q.bucket));
            return tx.put(Tree::UploadQueue, &keys::id(ino), &q);
        }
        if let Some(Remote::File(f)) = remote {
            let due = now.saturating_add(self.quiet_ns(f.bucket));
            return self.queue_put(tx, ino, f.bucket, f.key, due, None);
        }
        Ok(())
    }

    /// Counts `bytes` more not yet upstream; `NoSpace` past the dirty
    /// limit (the write that would pass it fails; uploads drain it).
    pub(crate) fn charge_dirty(&self, bytes: u64) -> NsResult<()> {
        use std::sync::atomic::Ordering;
        let max = self.cfg.cache_dirty_bytes_max;
        let now = self.upstream.dirty_bytes.load(Ordering::Relaxed);
        if max > 0 && now.saturating_add(bytes) > max {
            return Err(NsError::NoSpace);
        }
        self.upstream.dirty_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Inside a transaction: queue file `ino` for `key` of `bucket`.
    pub(crate) fn queue_put(
        &self,
        tx: &mut Tx<'_>,
        ino: u64,
        bucket: u64,
        key: Vec<u8>,
        due: Nanos,
        replaces: Option<Vec<u8>>,
    ) -> NsResult<()> {
        let q = QueuedUpload { bucket, key, due, attempts: 0, replaces, error: None, poisoned: false };
        tx.put(Tree::UploadQueue, &keys::id(ino), &q)
    }

    /// The quiet delay of bucket `bucket`'s binding, in nanoseconds.
    pub(crate) fn quiet_ns(&self, bucket: u64) -> i64 {
        self.bound(bucket).map_or(0, |a| (a.binding.upload_delay_secs as i64).saturating_mul(1_000_000_000))
    }

    /// Inside a rename's transaction: file `ino` now lives at `key` of
    /// `bucket`. A queued upload follows it; a clean file is queued for a
    /// server-side copy, its old key deleted afterwards.
    pub(crate) fn queue_renamed(
        &self,
        tx: &mut Tx<'_>,
        ino: u64,
        bucket: u64,
        key: Vec<u8>,
        now: Nanos,
    ) -> NsResult<()> {
        if let Some(mut q) = tx.get::<QueuedUpload>(Tree::UploadQueue, &keys::id(ino))? {
            if q.replaces.is_none() {
                // The old key is upstream only if the file was uploaded.
                if let Some(Remote::File(f)) = tx.get::<Remote>(Tree::Remote, &keys::id(ino))? {
                    q.replaces = Some(f.key);
                }
            }
            q.key = key;
            q.due = now;
            return tx.put(Tree::UploadQueue, &keys::id(ino), &q);
        }
        match tx.get::<Remote>(Tree::Remote, &keys::id(ino))? {
            Some(Remote::File(f)) => self.queue_put(tx, ino, bucket, key, now, Some(f.key)),
            _ => self.queue_put(tx, ino, bucket, key, now, None),
        }
    }

    /// Runs the queued uploads that are due; returns what it did.
    pub fn run_uploads(&self) -> NsResult<UploadReport> {
        self.upload_pass(|q, now| !q.poisoned && q.due <= now, false)
    }

    /// Uploads every queued file whose key starts with `prefix` (of bucket
    /// `bucket`, or of every bound bucket), due or not, poisoned ones too:
    /// what `gateway cache flush` runs. Fails if any item still failed.
    pub fn flush_uploads(&self, bucket: Option<u64>, prefix: &[u8]) -> NsResult<UploadReport> {
        let pick = |q: &QueuedUpload, _| bucket.is_none_or(|b| b == q.bucket) && q.key.starts_with(prefix);
        let report = self.upload_pass(pick, true)?;
        if report.failed > 0 {
            return Err(NsError::UpstreamUnavailable(format!("{} uploads failed; see cache status", report.failed)));
        }
        Ok(report)
    }

    /// One pass over the items `pick` chooses; `wait`: wait for an upload
    /// of the same file that runs now (a flush) instead of skipping it.
    fn upload_pass(&self, pick: impl Fn(&QueuedUpload, Nanos) -> bool, wait: bool) -> NsResult<UploadReport> {
        let mut report = UploadReport::default();
        if !self.upstream.any() {
            return Ok(report);
        }
        let now = self.cfg.clock.now_ns();
        let mut items: Vec<u64> = Vec::new();
        scan_all(self, Tree::UploadQueue, |k, v| {
            let ino = u64::from_be_bytes(k.try_into().map_err(|_| NsError::Corrupt("upload_queue key".into()))?);
            let q: QueuedUpload = record::decode("upload_queue", v)?;
            if pick(&q, now) {
                items.push(ino);
            }
            Ok(())
        })?;
        let mut seen = HashSet::new();
        items.retain(|ino| seen.insert(*ino));
        // Files are uploaded [`UPLOADS_IN_PARALLEL`] at a time, each with its
        // own parts in flight: a checkpoint of several files drains as fast
        // as a client writing them in parallel would.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_error = std::sync::Mutex::new(None);
        let reports: Vec<UploadReport> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..UPLOADS_IN_PARALLEL.min(items.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut report = UploadReport::default();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&ino) = items.get(i) else { break };
                            // One already running (a write-through) is not doubled.
                            let Some(_slot) = self.upstream.uploads.claim(ino, wait) else { continue };
                            if let Err(e) = self.upload_one(ino, &mut report) {
                                first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                                break;
                            }
                        }
                        report
                    })
                })
                .collect();
            // A worker's panic is the pass's: it is not turned into an
            // empty report.
            workers.into_iter().map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        for r in reports {
            report += r;
        }
        Ok(report)
    }

    /// Uploads queued file `ino` now (S3 write-through runs this for the
    /// object it just published). Upstream failures are recorded on the
    /// item and returned as `UpstreamUnavailable`.
    pub(crate) fn upload_now(&self, ino: u64) -> NsResult<()> {
        let mut report = UploadReport::default();
        let slot = self.upstream.uploads.claim(ino, true);
        self.upload_one(ino, &mut report)?;
        drop(slot);
        match self.meta.get(Tree::UploadQueue, &keys::id(ino))? {
            Some(v) if report.failed > 0 => {
                let q: QueuedUpload = record::decode("upload_queue", &v)?;
                Err(NsError::UpstreamUnavailable(q.error.unwrap_or_else(|| "upload failed".into())))
            }
            _ => Ok(()),
        }
    }

    fn upload_one(&self, ino: u64, report: &mut UploadReport) -> NsResult<()> {
        let Some(v) = self.meta.get(Tree::UploadQueue, &keys::id(ino))? else { return Ok(()) };
        let q: QueuedUpload = record::decode("upload_queue", &v)?;
        let att = self.upstream.attached(q.bucket)?;
        let client = att.client()?;
        let inode = match self.getattr(ino) {
            Ok(n) if n.kind == Kind::File => Some(n),
            Ok(_) | Err(NsError::Stale) => None,
            Err(e) => return Err(e),
        };
        let Some(inode) = inode else {
            // Removed before it was uploaded: only a key it was renamed
            // from may still need deleting.
            if let Some(old) = &q.replaces {
                if let Err(e) = client.delete(&full_key(&att.binding, old)?) {
                    return self.upload_failed(ino, &q, e, report);
                }
            }
            self.txn(|tx| match tx.get::<QueuedUpload>(Tree::UploadQueue, &keys::id(ino))? {
                Some(cur) if cur == q => tx.del(Tree::UploadQueue, &keys::id(ino)),
                _ => Ok(()),
            })?;
            report.dropped += 1;
            return Ok(());
        };
        let remote = match self.remote(ino)? {
            Some(Remote::File(f)) => Some(f),
            _ => None,
        };
        let clean = remote.as_ref().filter(|f| f.synced_gen == inode.content_gen);
        let full = full_key(&att.binding, &q.key)?;
        let sent = match clean {
            Some(f) if f.key == q.key => Ok(f.etag.clone()), // nothing to send
            // Renamed and unchanged: copy upstream instead of uploading.
            Some(f) => client.copy(&full_key(&att.binding, &f.key)?, &full),
            None => {
                // A change to a version that came from the upstream goes
                // up only if that version is still there.
                let base = remote.as_ref().filter(|f| f.key == q.key).map(|f| f.etag.as_str());
                let body = super::sync::FileBody { ns: self, ino, size: inode.size };
                client.put(&full, &body, base).inspect(|_| report.bytes += inode.size)
            }
        };
        let etag = match sent {
            Ok(e) => e,
            Err(UpstreamError::Changed) if clean.is_none() => return self.keep_conflict(ino, &q),
            Err(e) => return self.upload_failed(ino, &q, e, report),
        };
        if let Some(old) = q.replaces.as_ref().filter(|o| **o != q.key) {
            if let Err(e) = client.delete(&full_key(&att.binding, old)?) {
                return self.upload_failed(ino, &q, e, report);
            }
        }
        self.mark_uploaded(ino, &q, &inode, etag)?;
        // Its local data is now a clean copy of the upstream's: cached.
        self.index_local_windows(ino, inode.size, false)?;
        report.uploaded += 1;
        Ok(())
    }

    /// Records a finished upload: the file is clean at the generation that
    /// was sent, and its queue item goes, unless either changed meanwhile.
    fn mark_uploaded(&self, ino: u64, q: &QueuedUpload, sent: &Inode, etag: String) -> NsResult<()> {
        let rec = RemoteFile {
            bucket: q.bucket,
            key: q.key.clone(),
            etag,
            size: sent.size,
            mtime: sent.mtime,
            synced_gen: sent.content_gen,
        };
        self.txn(|tx| {
            let Some(n) = tx.get::<Inode>(Tree::Inodes, &keys::id(ino))? else { return Ok(()) };
            let cur: Option<QueuedUpload> = tx.get(Tree::UploadQueue, &keys::id(ino))?;
            if n.content_gen != sent.content_gen {
                // Changed during the upload: that change is still queued.
                // Its old key is gone now; the remote record says where
                // the uploaded content is.
                if let Some(mut c) = cur {
                    c.replaces = None;
                    tx.put(Tree::UploadQueue, &keys::id(ino), &c)?;
                }
                return tx.put(Tree::Remote, &keys::id(ino), &Remote::File(rec.clone()));
            }
            tx.put(Tree::Remote, &keys::id(ino), &Remote::File(rec.clone()))?;
            match cur {
                Some(c) if c.key == q.key => tx.del(Tree::UploadQueue, &keys::id(ino)),
                Some(mut c) => {
                    // Renamed during the upload: still to do, from here.
                    c.replaces = Some(q.key.clone());
                    tx.put(Tree::UploadQueue, &keys::id(ino), &c)
                }
                None => Ok(()),
            }
        })?;
        self.commit_barrier()
    }

    /// A local change whose upstream version changed meanwhile: neither is
    /// lost. The local file moves to `KEY.conflict-<unix seconds>-<gateway
    /// id>` (uploaded under that name by the next pass); the upstream's
    /// version comes back at `KEY` with the next listing.
    fn keep_conflict(&self, ino: u64, q: &QueuedUpload) -> NsResult<()> {
        let (dir, leaf) = self.dir_of_key(q.bucket, &q.key)?;
        let mut name = leaf.clone();
        let secs = self.cfg.clock.now_ns() / 1_000_000_000;
        name.extend_from_slice(format!(".conflict-{secs}-{:08x}", self.fsid as u32).as_bytes());
        match self.dentry(dir, &leaf)? {
            Some(d) if d.ino == ino => {}
            _ => return Ok(()), // renamed or replaced meanwhile: its own item decides
        }
        self.rename(&Caller::root(), dir, &leaf, dir, &name)?;
        let mut key = q.key[..q.key.len() - leaf.len()].to_vec();
        key.extend_from_slice(&name);
        self.txn(|tx| {
            // Not based on any upstream version any more, and the key it
            // came from is the other writer's now: nothing to delete.
            tx.del(Tree::Remote, &keys::id(ino))?;
            if let Some(mut cur) = tx.get::<QueuedUpload>(Tree::UploadQueue, &keys::id(ino))? {
                cur.key = key.clone();
                cur.replaces = None;
                cur.error = Some(format!("conflict: the upstream changed; kept as {}", String::from_utf8_lossy(&key)));
                tx.put(Tree::UploadQueue, &keys::id(ino), &cur)?;
            }
            Ok(())
        })?;
        self.commit_barrier()?;
        self.upstream.forget_listings();
        self.upstream.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(
            key = %String::from_utf8_lossy(&q.key),
            kept_as = %String::from_utf8_lossy(&key),
            "a local change raced an upstream change: both kept"
        );
        Ok(())
    }

    /// The directory and leaf name of `key` in bucket `bucket`.
    fn dir_of_key(&self, bucket: u64, key: &[u8]) -> NsResult<(u64, Vec<u8>)> {
        let mut parts: Vec<&[u8]> = key.split(|&c| c == b'/').collect();
        let leaf = parts.pop().unwrap_or_default().to_vec();
        let mut dir = bucket;
        for p in parts {
            let d = self.dentry(dir, p)?.ok_or(NsError::NotFound)?;
            if d.kind != Kind::Dir {
                return Err(NsError::NotFound);
            }
            dir = d.ino;
        }
        Ok((dir, leaf))
    }

    fn upload_failed(&self, ino: u64, q: &QueuedUpload, e: UpstreamError, report: &mut UploadReport) -> NsResult<()> {
        report.failed += 1;
        let refused = matches!(e, UpstreamError::Refused(_));
        tracing::warn!(ino, key = %String::from_utf8_lossy(&q.key), error = %e, "upload to the upstream failed");
        let now = self.cfg.clock.now_ns();
        self.txn(|tx| {
            let Some(mut cur) = tx.get::<QueuedUpload>(Tree::UploadQueue, &keys::id(ino))? else { return Ok(()) };
            if refused {
                cur.attempts += 1;
                cur.poisoned = cur.attempts >= UPLOAD_REFUSALS_MAX;
            }
            cur.due = now.saturating_add(backoff_ns(cur.attempts.max(1)));
            cur.error = Some(e.to_string());
            tx.put(Tree::UploadQueue, &keys::id(ino), &cur)
        })?;
        Ok(())
    }

    /// Counts the queue: items, dirty bytes, failing and poisoned items.
    pub fn upload_queue_status(&self) -> NsResult<QueueStatus> {
        let mut st = QueueStatus {
            conflicts: self.upstream.conflicts.load(std::sync::atomic::Ordering::Relaxed),
            ..QueueStatus::default()
        };
        scan_all(self, Tree::UploadQueue, |k, v| {
            let ino = u64::from_be_bytes(k.try_into().map_err(|_| NsError::Corrupt("upload_queue key".into()))?);
            let q: QueuedUpload = record::decode("upload_queue", v)?;
            st.items += 1;
            if let Ok(n) = self.getattr(ino) {
                st.dirty_bytes += n.size;
            }
            if q.poisoned {
                if st.poisoned.len() < STATUS_POISONED_LISTED_MAX {
                    let why = q.error.clone().unwrap_or_default();
                    st.poisoned.push((String::from_utf8_lossy(&q.key).to_string(), why));
                }
            } else if q.error.is_some() {
                st.failing += 1;
            }
            Ok(())
        })?;
        self.upstream.dirty_bytes.store(st.dirty_bytes, std::sync::atomic::Ordering::Relaxed);
        Ok(st)
    }
}

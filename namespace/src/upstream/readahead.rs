//! Readahead for sequential readers of upstream files: a reader that
//! moves on to the window after the one it read last is sequential, and
//! the windows after it are fetched in the background by a few threads,
//! twice as many with each step up to [`READAHEAD_WINDOWS_MAX`]. Requests
//! beyond what the threads can take are dropped (the reader then fetches
//! what it reads itself).

use std::sync::{Arc, Mutex};

use crate::record::Inode;
use crate::Namespace;

/// Most windows fetched ahead of a sequential reader (32 MiB with 4 MiB
/// chunks).
pub const READAHEAD_WINDOWS_MAX: usize = 8;
/// Readahead requests waiting for a thread; more are dropped.
const READAHEAD_QUEUE_MAX: usize = 256;
/// Files whose read position is tracked for sequential detection.
const READAHEAD_TRACKED_FILES_MAX: usize = 65_536;

impl Namespace {
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
            // A window someone is fetching already is not waited for.
            if let Some(slot) = self.lead_fetch(ino, w) {
                self.run_fetch(ino, w, &slot);
            }
        }
    }

    /// Starts the readahead threads, and lets readers' fetches run on
    /// threads of their own so that a reader is served while its window
    /// arrives (a running gateway does this; without it, reads fetch only
    /// what they read, each window whole before its first byte is served).
    pub fn start_upstream_workers(self: &Arc<Self>, threads: usize) {
        let _ = self.upstream.fetches.me.set(Arc::downgrade(self));
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

//! The file operations the chunk store needs, behind a trait so that tests
//! can inject faults (failed writes and fsyncs, flipped bits on read).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// File operations used by [`crate::ChunkStore`].
pub trait ChunkIo: Send + Sync {
    /// Creates `path` exclusively, writes `parts` in order and `fdatasync`s
    /// the file. On error the file may exist partially.
    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at end of file).
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// fsyncs a directory so the entries created in it are durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// Which step of [`ChunkIo::write_new_synced`] failed. A failed fsync is
/// different in kind: the page cache may have dropped the data, so the store
/// must not be trusted again until reopened.
#[derive(Debug)]
pub enum WriteFailure {
    /// Creating or writing the file failed.
    Write(io::Error),
    /// `fdatasync` failed.
    Sync(io::Error),
}

/// The real thing: std::fs on the data directory.
#[derive(Debug, Default)]
pub struct RealIo;

impl ChunkIo for RealIo {
    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(path).map_err(WriteFailure::Write)?;
        for p in parts {
            f.write_all(p).map_err(WriteFailure::Write)?;
        }
        f.sync_data().map_err(WriteFailure::Sync)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let f = File::open(path)?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// Which faults [`FaultyIo`] injects. A counter set to N lets N-1
/// operations succeed; the Nth fails, and every later one too. 0 disarms.
#[derive(Debug, Default)]
pub struct Faults {
    /// The write that fails (0 = never fail).
    pub fail_write_after: AtomicU64,
    /// The sync (file or directory) that fails (0 = never fail).
    pub fail_sync_after: AtomicU64,
    /// Flip one bit in every buffer read.
    pub flip_read_bits: AtomicBool,
}

/// Wraps [`RealIo`] and injects [`Faults`].
#[derive(Debug, Default)]
pub struct FaultyIo {
    /// The faults to inject; tests change them while the store runs.
    pub faults: Faults,
    inner: RealIo,
}

impl FaultyIo {
    /// No faults armed yet.
    pub fn new() -> Self {
        Self::default()
    }
}

fn trips(counter: &AtomicU64) -> bool {
    let mut cur = counter.load(Ordering::Acquire);
    loop {
        match cur {
            0 => return false,
            1 => return true, // stays at 1: every later call fails too
            n => match counter.compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return false,
                Err(now) => cur = now,
            },
        }
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl ChunkIo for FaultyIo {
    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure> {
        if trips(&self.faults.fail_write_after) {
            // Leave a partial file behind, as a real failed write may.
            let _ = std::fs::write(path, parts.first().copied().unwrap_or(&[]));
            return Err(WriteFailure::Write(injected("write")));
        }
        if trips(&self.faults.fail_sync_after) {
            self.inner.write_new_synced(path, parts)?;
            return Err(WriteFailure::Sync(injected("fdatasync")));
        }
        self.inner.write_new_synced(path, parts)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(path, offset, buf)?;
        if n > 0 && self.faults.flip_read_bits.load(Ordering::Acquire) {
            buf[n - 1] ^= 0x01;
        }
        Ok(n)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if trips(&self.faults.fail_sync_after) {
            return Err(injected("directory fsync"));
        }
        self.inner.sync_dir(path)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
}

//! The file operations the chunk store needs, behind a trait so that tests
//! can inject faults (failed writes and fsyncs, flipped bits on read).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// File operations used by [`crate::ChunkStore`].
pub trait ChunkIo: Send + Sync {
    /// Creates `path` exclusively, writes `parts` in order and starts
    /// writeback of the file (it is not durable until [`ChunkIo::sync_file`]).
    /// On error the file may exist partially.
    fn write_new(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure>;
    /// `fdatasync`s a file written by [`ChunkIo::write_new`].
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at end of file).
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// fsyncs a directory so the entries created in it are durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Hints that the whole file will be read soon (asynchronous readahead).
    fn prefetch(&self, _path: &Path) {}
}

/// Reads at least this large tell the kernel to read the range ahead.
const READAHEAD_HINT_BYTES_MIN: usize = 1 << 20;

/// Why [`ChunkIo::write_new`] failed.
#[derive(Debug)]
pub enum WriteFailure {
    /// Creating or writing the file failed.
    Write(io::Error),
}

/// The real thing: std::fs on the data directory.
#[derive(Debug, Default)]
pub struct RealIo;

impl ChunkIo for RealIo {
    fn write_new(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(path).map_err(WriteFailure::Write)?;
        for p in parts {
            f.write_all(p).map_err(WriteFailure::Write)?;
        }
        // Start writeback now, so the barrier's fdatasync mostly waits for
        // I/O already in flight and a streaming upload overlaps its disk
        // writes with receiving the next chunk. On Linux, DONTNEED starts
        // asynchronous writeback of dirty pages and drops only clean ones,
        // so the fresh data stays cached. (nix has no sync_file_range.)
        let _ = nix::fcntl::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        // fsync is per inode: a new descriptor flushes the pages written
        // through the old one.
        File::open(path)?.sync_data()
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let f = File::open(path)?;
        if buf.len() >= READAHEAD_HINT_BYTES_MIN {
            // A fresh file starts with a small readahead window; ask for the
            // whole range at once so the device sees one deep request queue.
            let _ = nix::fcntl::posix_fadvise(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                offset as i64,
                buf.len() as i64,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            );
        }
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

    fn prefetch(&self, path: &Path) {
        if let Ok(f) = File::open(path) {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            let _ = nix::fcntl::posix_fadvise(fd, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED);
        }
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
    fn write_new(&self, path: &Path, parts: &[&[u8]]) -> Result<(), WriteFailure> {
        if trips(&self.faults.fail_write_after) {
            // Leave a partial file behind, as a real failed write may.
            let _ = std::fs::write(path, parts.first().copied().unwrap_or(&[]));
            return Err(WriteFailure::Write(injected("write")));
        }
        self.inner.write_new(path, parts)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        if trips(&self.faults.fail_sync_after) {
            return Err(injected("fdatasync"));
        }
        self.inner.sync_file(path)
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

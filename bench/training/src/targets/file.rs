//! `file:///PATH`: a local directory, or a kernel NFS (or any POSIX) mount.
//! Blocking `std::fs` calls on tokio's blocking pool; reads `pread` on a
//! handle kept open between reads of the file ([`OpenFiles`]) into pooled
//! buffers ([`BufferPool`]).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{BoxFuture, Content, Entry, Target};
use crate::limits;
use crate::{BenchError, Result};

/// A directory target.
pub struct FileTarget {
    url: String,
    root: PathBuf,
    buffers: Arc<BufferPool>,
    files: Arc<OpenFiles>,
}

impl FileTarget {
    /// A target rooted at `root`.
    pub fn new(url: &str, root: PathBuf) -> FileTarget {
        FileTarget { url: url.into(), root, buffers: Arc::default(), files: Arc::default() }
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BenchError + 'a {
    move |source| BenchError::Io { op, path: path.display().to_string(), source }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(BenchError::Io { op: "spawn_blocking", path: String::new(), source: std::io::Error::other(e) }),
    }
}

/// Read buffers handed back when the reader drops its [`Bytes`], for the
/// next reads. A fresh buffer per read costs page faults and zeroing
/// (perf on `-w shards`: 30% of the run in `clear_page` and the fault
/// path, the allocator handing the memory back to the kernel between
/// reads), a cost fio, which reuses its buffers, does not pay; `bench-fio`
/// compares the two.
#[derive(Default)]
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// A buffer of at least `len` bytes: a pooled one if one is large
    /// enough (its old bytes are overwritten by the read), else a new one,
    /// zeroed once.
    fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.free.lock().expect("pool lock");
        // The most recently returned first: its memory is still in the
        // CPU's caches, as a reader reusing one buffer (fio) has it.
        match free.iter().rposition(|b| b.len() >= len) {
            Some(i) => free.remove(i),
            None => vec![0; len],
        }
    }

    /// Keeps `buf` for later, within [`limits::READ_BUFFER_POOL_BYTES_MAX`].
    fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.lock().expect("pool lock");
        let held: usize = free.iter().map(Vec::len).sum();
        if held + buf.len() <= limits::READ_BUFFER_POOL_BYTES_MAX {
            free.push(buf);
        }
    }
}

/// A read's bytes (the first `len` of `buf`); the buffer goes back to
/// the pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// Files a target keeps open between reads, as a data loader keeps its
/// shard or its memory-mapped token file open (and fio its files): a
/// handle's readahead state then follows the file's pattern. A
/// file-per-sample dataset reads each file once an epoch, so it still opens
/// each time, as its loader does. Writes and deletes through the target
/// forget the path's handle.
#[derive(Default)]
struct OpenFiles {
    /// Oldest first.
    open: Mutex<VecDeque<(PathBuf, Arc<std::fs::File>)>>,
}

impl OpenFiles {
    fn get(&self, p: &Path) -> std::io::Result<Arc<std::fs::File>> {
        if let Some((_, f)) = self.open.lock().expect("open files lock").iter().find(|(q, _)| q == p) {
            return Ok(f.clone());
        }
        let f = Arc::new(std::fs::File::open(p)?);
        let mut open = self.open.lock().expect("open files lock");
        if open.len() >= limits::FILES_KEPT_OPEN_MAX {
            open.pop_front();
        }
        open.push_back((p.to_path_buf(), f.clone()));
        Ok(f)
    }

    fn forget(&self, p: &Path) {
        self.open.lock().expect("open files lock").retain(|(q, _)| q != p);
    }
}

/// Reads up to `buf.len()` bytes at `offset` (fewer only at the end of
/// the file) with `pread`; returns how many.
fn read_at_most(f: &std::fs::File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Target for FileTarget {
    fn url(&self) -> &str {
        &self.url
    }

    fn prepare_root(&self) -> BoxFuture<'_, ()> {
        let root = self.root.clone();
        Box::pin(blocking(move || std::fs::create_dir_all(&root).map_err(io("mkdir", &root))))
    }

    fn write<'a>(&'a self, path: &'a str, content: Content, sync: bool) -> BoxFuture<'a, ()> {
        let p = self.root.join(path);
        self.files.forget(&p);
        Box::pin(blocking(move || {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(io("mkdir", dir))?;
            }
            let mut f = std::fs::File::create(&p).map_err(io("create", &p))?;
            let mut off = 0;
            while off < content.len() {
                let n = limits::PART_BYTES.min(content.len() - off);
                f.write_all(&content.part(off, n)).map_err(io("write", &p))?;
                off += n;
            }
            if sync {
                f.sync_all().map_err(io("fsync", &p))?;
            }
            Ok(())
        }))
    }

    fn read<'a>(&'a self, path: &'a str, offset: u64, len: u64) -> BoxFuture<'a, Bytes> {
        let p = self.root.join(path);
        let (pool, files) = (self.buffers.clone(), self.files.clone());
        Box::pin(blocking(move || {
            assert!(len <= limits::SAMPLE_BYTES_MAX);
            let f = files.get(&p).map_err(io("open", &p))?;
            let mut buf = pool.take(len as usize);
            let read = read_at_most(&f, offset, &mut buf[..len as usize]);
            let got = read.as_ref().map_or(0, |n| *n);
            let data = Pooled { buf, len: got, pool };
            read.map_err(io("read", &p))?;
            Ok(Bytes::from_owner(data))
        }))
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, Vec<Entry>> {
        let p = self.root.join(dir);
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            for e in std::fs::read_dir(&p).map_err(io("readdir", &p))? {
                let e = e.map_err(io("readdir", &p))?;
                let md = e.metadata().map_err(io("stat", &e.path()))?;
                if md.is_file() {
                    out.push(Entry { name: e.file_name().to_string_lossy().into_owned(), bytes: md.len() });
                }
            }
            Ok(out)
        }))
    }

    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, u64> {
        let p = self.root.join(path);
        Box::pin(blocking(move || Ok(std::fs::metadata(&p).map_err(io("stat", &p))?.len())))
    }

    /// `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file: the
    /// kernel drops its clean cached pages (the write was synced, so all
    /// are clean), as `echo 1 > /proc/sys/vm/drop_caches` would for this
    /// file, without root. On a kernel NFS mount it drops the client's
    /// cache; the server's stays.
    fn drop_cache<'a>(&'a self, path: &'a str) -> BoxFuture<'a, bool> {
        let p = self.root.join(path);
        Box::pin(blocking(move || {
            let f = std::fs::File::open(&p).map_err(io("open", &p))?;
            nix::fcntl::posix_fadvise(f.as_raw_fd(), 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                .map_err(|e| io("fadvise", &p)(std::io::Error::from(e)))?;
            Ok(true)
        }))
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, ()> {
        let p = self.root.join(path);
        self.files.forget(&p);
        Box::pin(blocking(move || match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("unlink", &p)(e)),
            _ => Ok(()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pooled_buffers_and_kept_handles_never_serve_stale_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTarget::new("file:///x", dir.path().to_path_buf());
        let a = Content::Literal(Bytes::from(vec![b'a'; 3000]));
        let b = Content::Literal(Bytes::from(vec![b'b'; 2000]));
        t.write("a", a, false).await.unwrap();
        t.write("b", b, false).await.unwrap();
        let first = t.read("a", 0, 3000).await.unwrap();
        assert!(first.iter().all(|&c| c == b'a'));
        drop(first);
        // Reuses a's buffer (3000 bytes): only b's 2000 bytes show, then
        // the short read at the end of the file shows only what is there.
        let second = t.read("b", 0, 2000).await.unwrap();
        assert_eq!(second.len(), 2000);
        assert!(second.iter().all(|&c| c == b'b'));
        let held = t.read("a", 0, 3000).await.unwrap();
        let tail = t.read("b", 1500, 1000).await.unwrap();
        assert_eq!(tail.len(), 500);
        assert!(tail.iter().all(|&c| c == b'b'));
        assert!(held.iter().all(|&c| c == b'a'), "a buffer in use is not handed out again");
        // Rewritten through the target: the kept handle is forgotten.
        t.write("a", Content::Literal(Bytes::from(vec![b'c'; 10])), false).await.unwrap();
        assert_eq!(&t.read("a", 0, 3000).await.unwrap()[..], &[b'c'; 10]);
        t.delete("a").await.unwrap();
        assert!(t.read("a", 0, 1).await.is_err());
    }
}

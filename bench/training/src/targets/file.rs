//! `file:///PATH`: a local directory, or a kernel NFS (or any POSIX) mount.
//! Blocking `std::fs` calls on tokio's blocking pool; reads open the file
//! each time (as a data loader opening a sample does) and use `pread`.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{BoxFuture, Content, Entry, Target};
use crate::limits;
use crate::{BenchError, Result};

/// A directory target.
pub struct FileTarget {
    url: String,
    root: PathBuf,
}

impl FileTarget {
    /// A target rooted at `root`.
    pub fn new(url: &str, root: PathBuf) -> FileTarget {
        FileTarget { url: url.into(), root }
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
        Box::pin(blocking(move || {
            assert!(len <= limits::SAMPLE_BYTES_MAX);
            let f = std::fs::File::open(&p).map_err(io("open", &p))?;
            let mut buf = vec![0u8; len as usize];
            let mut got = 0usize;
            while got < buf.len() {
                let n = f.read_at(&mut buf[got..], offset + got as u64).map_err(io("read", &p))?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            buf.truncate(got);
            Ok(Bytes::from(buf))
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
        Box::pin(blocking(move || match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("unlink", &p)(e)),
            _ => Ok(()),
        }))
    }
}

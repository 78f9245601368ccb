use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::format::{blocks_for, crc32c, ChunkHeader, BLOCK_SIZE_BYTES, CHUNK_SIZE_BYTES_MAX, HEADER_SIZE_BYTES};
use crate::io::WriteFailure;
use crate::{crc64nvme, ChunkError, ChunkIo, Result};

/// Default chunk size: 4 MiB, chosen by the chunk-size sweep
/// (`cargo run --release -p namespace-bench -- chunk-sizes`): it read
/// fastest and wrote at least as fast as larger chunks (figures in
/// `bench/results.md`). A 5 GiB object is 1280 extents.
pub const DEFAULT_CHUNK_SIZE_BYTES: usize = 4 << 20;
/// Default free space chunk writes leave for the metadata store: 256 MiB,
/// many times what sled writes between two flushes under load.
pub const DEFAULT_FREE_BYTES_RESERVED: u64 = 256 << 20;
/// Parallel fdatasyncs one barrier issues at most.
const SYNC_THREADS_MAX: usize = 8;
/// Number of shard directories under `chunks/`.
const SHARDS: u64 = 256;

/// Settings of a [`ChunkStore`].
#[derive(Clone, Debug)]
pub struct ChunkStoreConfig {
    /// The data directory (on the NVMe); chunks go to `dir/chunks/xx/`.
    pub dir: PathBuf,
    /// Largest chunk written; files are split into chunks of this size.
    pub chunk_size_bytes: usize,
    /// Free space on the data volume that chunk writes leave alone: a
    /// chunk that would leave less is refused with [`ChunkError::NoSpace`]
    /// before anything is written. The metadata store shares the volume;
    /// this headroom is what lets it keep committing (deletes, renames)
    /// when data has filled the disk, so the gateway serves on and recovers
    /// as soon as space is freed, instead of a failed metadata flush
    /// poisoning it. 0 turns the check off.
    pub free_bytes_reserved: u64,
}

impl ChunkStoreConfig {
    /// Default settings under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ChunkStoreConfig {
            dir: dir.into(),
            chunk_size_bytes: DEFAULT_CHUNK_SIZE_BYTES,
            free_bytes_reserved: DEFAULT_FREE_BYTES_RESERVED,
        }
    }
}

/// What a written chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Chunk id.
    pub id: u64,
    /// Data length.
    pub len: u64,
    /// CRC64/NVME of the data.
    pub crc64: u64,
}

/// A file found under `chunks/` by [`ChunkStore::list`].
#[derive(Clone, Debug)]
pub struct StoredChunk {
    /// Chunk id, or `None` for a stray file whose name is not a chunk id.
    pub id: Option<u64>,
    /// The file.
    pub path: PathBuf,
    /// Last modification time (the write time of a chunk).
    pub modified: SystemTime,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// Work the next barrier must make durable.
#[derive(Default)]
struct Pending {
    chunks: Vec<u64>,
    shards: BTreeSet<u64>,
}

/// Immutable, checksummed chunk files in a data directory.
pub struct ChunkStore {
    root: PathBuf,
    /// See [`ChunkStoreConfig::free_bytes_reserved`].
    free_bytes_reserved: u64,
    io: Arc<dyn ChunkIo>,
    chunk_size_bytes: usize,
    /// Chunks written but not yet fsync'd, and the shard directories that
    /// gained entries, since the last barrier.
    pending: Mutex<Pending>,
    /// Serializes barriers: a caller that finds its shard already taken by a
    /// running barrier waits here until that barrier's fsyncs are done.
    barrier_lock: Mutex<()>,
    poisoned: AtomicBool,
    /// The chunks [`ChunkStore::prefetch`] hinted last, newest at the back.
    prefetched: Mutex<std::collections::VecDeque<u64>>,
}

/// Recent prefetch hints remembered, so that a chunk is hinted once while
/// its readers go through it rather than once per request: the kernel's
/// answer to a hint for pages it holds already is a walk of every page of
/// the chunk (measured: over half the gateway's CPU time on warm S3 reads
/// of 256 KiB samples, each request hinting the next four 4 MiB chunks).
const PREFETCH_HINTS_REMEMBERED: usize = 256;

impl ChunkStore {
    /// Opens (creating if needed) the store under `cfg.dir`.
    pub fn open(cfg: &ChunkStoreConfig, io: Arc<dyn ChunkIo>) -> Result<Self> {
        if cfg.chunk_size_bytes == 0 || cfg.chunk_size_bytes > CHUNK_SIZE_BYTES_MAX {
            return Err(ChunkError::Invalid(format!(
                "chunk size {} outside 1..={CHUNK_SIZE_BYTES_MAX}",
                cfg.chunk_size_bytes
            )));
        }
        let root = cfg.dir.join("chunks");
        let mut created = false;
        for shard in 0..SHARDS {
            let d = root.join(format!("{shard:02x}"));
            if !d.is_dir() {
                std::fs::create_dir_all(&d)?;
                created = true;
            }
        }
        if created {
            io.sync_dir(&root)?;
            io.sync_dir(&cfg.dir)?;
        }
        Ok(ChunkStore {
            root,
            free_bytes_reserved: cfg.free_bytes_reserved,
            io,
            chunk_size_bytes: cfg.chunk_size_bytes,
            pending: Mutex::new(Pending::default()),
            barrier_lock: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            prefetched: Mutex::new(std::collections::VecDeque::with_capacity(PREFETCH_HINTS_REMEMBERED)),
        })
    }

    /// The configured chunk size.
    pub fn chunk_size_bytes(&self) -> usize {
        self.chunk_size_bytes
    }

    /// The directory holding the shard directories.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard(id: u64) -> u64 {
        // Consecutive ids share a shard, so one large write dirties few
        // directories and the barrier fsyncs few of them.
        (id >> 8) % SHARDS
    }

    /// Path of chunk `id`.
    pub fn path_of(&self, id: u64) -> PathBuf {
        self.root.join(format!("{:02x}", Self::shard(id))).join(format!("{id:016x}"))
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(ChunkError::Poisoned);
        }
        Ok(())
    }

    /// Refuses a write of `len` bytes that would leave less than the
    /// reserved free space on the volume (see
    /// [`ChunkStoreConfig::free_bytes_reserved`]).
    fn check_free_space(&self, len: u64) -> Result<()> {
        if self.free_bytes_reserved == 0 {
            return Ok(());
        }
        let st = nix::sys::statvfs::statvfs(&self.root).map_err(|e| ChunkError::Io(e.into()))?;
        let avail = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
        if avail < self.free_bytes_reserved.saturating_add(len) {
            metrics::counter!("gateway_chunkstore_refused_no_space_total").increment(1);
            return Err(ChunkError::NoSpace);
        }
        Ok(())
    }

    /// Whether a failed fsync poisoned the store: every later write fails
    /// until the process reopens it (health checks report it).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poison(&self, e: std::io::Error) -> ChunkError {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(error = %e, "chunk store fsync failed; store poisoned");
        ChunkError::Io(e)
    }

    /// Writes chunk `id` holding `data`. The chunk (bytes and directory
    /// entry) is durable only after the next [`ChunkStore::barrier`], which
    /// must return before any metadata references it.
    ///
    /// `id` must never have been used: the file is created exclusively.
    pub fn write_chunk(&self, id: u64, data: &[u8]) -> Result<ChunkInfo> {
        self.check_poison()?;
        if data.len() > self.chunk_size_bytes {
            return Err(ChunkError::Invalid(format!("{} bytes exceed the chunk size", data.len())));
        }
        let len = data.len() as u64;
        self.check_free_space(len)?;
        let mut table = Vec::with_capacity(blocks_for(len) as usize * 4);
        for block in data.chunks(BLOCK_SIZE_BYTES) {
            table.extend_from_slice(&crc32c(block).to_le_bytes());
        }
        let crc64 = crc64nvme(data);
        let header = ChunkHeader { id, len, crc64, blocks: blocks_for(len) as u32 }.encode();
        let path = self.path_of(id);
        match self.io.write_new(&path, &[&header, &table, data]) {
            Ok(()) => {}
            Err(WriteFailure::Write(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ChunkError::AlreadyExists(id));
            }
            Err(WriteFailure::Write(e)) => {
                // A partial file is never referenced; remove it now rather
                // than leave it to the orphan scan.
                let _ = self.io.remove(&path);
                return Err(ChunkError::from_write(e));
            }
        }
        metrics::counter!("gateway_chunkstore_written_bytes_total").increment(len);
        metrics::counter!("gateway_chunkstore_chunks_written_total").increment(1);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.chunks.push(id);
        pending.shards.insert(Self::shard(id));
        Ok(ChunkInfo { id, len, crc64 })
    }

    /// Makes every chunk written so far durable: its bytes (`fdatasync`)
    /// and its directory entry (directory fsync). Call before committing
    /// metadata that references new chunks. Concurrent callers share the
    /// work: one syncs everything pending, the others wait for it.
    pub fn barrier(&self) -> Result<()> {
        self.check_poison()?;
        let _g = self.barrier_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.check_poison()?;
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if pending.chunks.is_empty() && pending.shards.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        // Several fdatasyncs at once keep the device's queue full, as one
        // large fsync of a single file would.
        let failure = Mutex::new(None);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = pending.chunks.len().min(SYNC_THREADS_MAX);
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&id) = pending.chunks.get(i) else { break };
            match self.io.sync_file(&self.path_of(id)) {
                Ok(()) => {}
                // Deleted before it was synced (a discarded upload): fine.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                }
            }
        };
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(work);
                }
            });
        }
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(self.poison(e));
        }
        for shard in pending.shards {
            let dir = self.root.join(format!("{shard:02x}"));
            self.io.sync_dir(&dir).map_err(|e| self.poison(e))?;
        }
        metrics::histogram!("gateway_chunkstore_barrier_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Reads `buf.len()` bytes of chunk `id` at `offset`, verifying the
    /// checksum of every block touched.
    pub fn read(&self, id: u64, offset: u64, buf: &mut [u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let path = self.path_of(id);
        let first = offset / BLOCK_SIZE_BYTES as u64;
        let last = (offset + buf.len() as u64 - 1) / BLOCK_SIZE_BYTES as u64;
        let mut head = vec![0u8; HEADER_SIZE_BYTES + 4 * (last as usize + 1)];
        let n = self.io.read_at(&path, 0, &mut head).map_err(|e| not_found(id, e))?;
        let header = ChunkHeader::decode(id, &head[..n])?;
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= header.len).ok_or_else(|| {
            ChunkError::Invalid(format!("read {}+{} past chunk length {}", offset, buf.len(), header.len))
        })?;
        if n < head.len() {
            return Err(ChunkError::Corrupt { id, why: "checksum table truncated".into() });
        }
        let data_start = first * BLOCK_SIZE_BYTES as u64;
        let data_end = ((last + 1) * BLOCK_SIZE_BYTES as u64).min(header.len);
        let aligned = data_start == offset && data_end == end;
        let mut scratch = Vec::new();
        let data: &mut [u8] = if aligned {
            // Whole blocks: read and verify in the caller's buffer, no copy.
            buf
        } else {
            scratch.resize((data_end - data_start) as usize, 0);
            &mut scratch
        };
        let got = self.io.read_at(&path, header.data_offset() + data_start, data).map_err(ChunkError::Io)?;
        if got < data.len() {
            return Err(ChunkError::Corrupt { id, why: "data truncated".into() });
        }
        for (i, block) in data.chunks(BLOCK_SIZE_BYTES).enumerate() {
            let b = first as usize + i;
            let o = HEADER_SIZE_BYTES + 4 * b;
            let want = u32::from_le_bytes(head[o..o + 4].try_into().expect("4 bytes"));
            if crc32c(block) != want {
                return Err(ChunkError::Corrupt { id, why: format!("block {b} checksum mismatch") });
            }
        }
        if !aligned {
            let from = (offset - data_start) as usize;
            buf.copy_from_slice(&scratch[from..from + (end - offset) as usize]);
        }
        metrics::counter!("gateway_chunkstore_read_bytes_total").increment(buf.len() as u64);
        Ok(())
    }

    /// Starts reading chunk `id` into the page cache in the background, so
    /// that a sequential reader finds the next chunk already on its way.
    /// A chunk hinted among the last [`PREFETCH_HINTS_REMEMBERED`] hints
    /// is not hinted again.
    pub fn prefetch(&self, id: u64) {
        {
            let mut recent = self.prefetched.lock().unwrap_or_else(|p| p.into_inner());
            if recent.contains(&id) {
                return;
            }
            if recent.len() == PREFETCH_HINTS_REMEMBERED {
                recent.pop_front();
            }
            recent.push_back(id);
        }
        self.io.prefetch(&self.path_of(id));
    }

    /// Reads and checks a whole chunk (every block and the CRC64), for fsck.
    pub fn verify(&self, id: u64) -> Result<ChunkInfo> {
        let mut head = [0u8; HEADER_SIZE_BYTES];
        let n = self.io.read_at(&self.path_of(id), 0, &mut head).map_err(|e| not_found(id, e))?;
        let header = ChunkHeader::decode(id, &head[..n])?;
        let mut data = vec![0u8; header.len as usize];
        self.read(id, 0, &mut data)?;
        if crc64nvme(&data) != header.crc64 {
            return Err(ChunkError::Corrupt { id, why: "whole-chunk CRC64 mismatch".into() });
        }
        Ok(ChunkInfo { id, len: header.len, crc64: header.crc64 })
    }

    /// Deletes chunk `id`; returns whether it existed. Idempotent.
    pub fn delete(&self, id: u64) -> Result<bool> {
        self.remove_path(&self.path_of(id))
    }

    /// Removes a file found by [`ChunkStore::list`] (a chunk or a stray).
    pub fn remove_path(&self, path: &Path) -> Result<bool> {
        match self.io.remove(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ChunkError::Io(e)),
        }
    }

    /// Moves chunk `id` out of the store into `dest_dir` (created if needed;
    /// on the same filesystem, e.g. `<data>/quarantine/chunks`), keeping its
    /// name (a numbered suffix if taken), and makes the move durable.
    /// Returns the new path, or `None` when the chunk file does not exist.
    /// Used by fsck for damaged chunks: the bytes are kept for an operator,
    /// and the store no longer serves them.
    pub fn quarantine(&self, id: u64, dest_dir: &Path) -> Result<Option<PathBuf>> {
        let src = self.path_of(id);
        if !src.exists() {
            return Ok(None);
        }
        std::fs::create_dir_all(dest_dir)?;
        let mut dest = dest_dir.join(format!("{id:016x}"));
        let mut n = 1;
        while dest.exists() {
            dest = dest_dir.join(format!("{id:016x}.{n}"));
            n += 1;
        }
        match std::fs::rename(&src, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.io.sync_dir(dest_dir)?;
        self.io.sync_dir(src.parent().expect("chunk paths have a shard directory"))?;
        Ok(Some(dest))
    }

    /// Every file under the shard directories, chunks and strays alike.
    pub fn list(&self) -> Result<Vec<StoredChunk>> {
        let mut out = Vec::new();
        for shard in 0..SHARDS {
            let dir = self.root.join(format!("{shard:02x}"));
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                let name = entry.file_name();
                let id = name
                    .to_str()
                    .filter(|s| s.len() == 16)
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                    .filter(|&id| Self::shard(id) == shard);
                out.push(StoredChunk { id, path: entry.path(), modified: meta.modified()?, size_bytes: meta.len() });
            }
        }
        Ok(out)
    }
}

fn not_found(id: u64, e: std::io::Error) -> ChunkError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ChunkError::NotFound(id)
    } else {
        ChunkError::Io(e)
    }
}

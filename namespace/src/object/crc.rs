//! Full-object CRC64/NVME of any file, folded from the per-extent CRCs
//! stored at write time; only extents whose CRC is unknown are read.

use super::ObjectReader;
#[cfg(doc)]
use crate::limits::READER_EXTENTS_PINNED_MAX;
use crate::record::Extent;
use crate::{Namespace, NsError, NsResult};

/// Bytes read per step when an extent's CRC must be computed.
const CRC_READ_PIECE_BYTES: usize = 1 << 20;
/// File range whose extents are scanned per step when a file is too
/// fragmented to pin (see [`READER_EXTENTS_PINNED_MAX`]).
const CRC_WINDOW_BYTES: u64 = 1 << 30;

/// Accumulates a CRC64/NVME over a file from offset 0, one extent at a time.
struct CrcFold {
    crc: u64,
    /// Bytes folded so far.
    pos: u64,
    /// Bytes read from chunks so far (extents whose CRC is unknown).
    read_bytes: u64,
}

impl CrcFold {
    fn zeros_to(&mut self, to: u64) {
        if to > self.pos {
            let n = to - self.pos;
            self.crc = chunkstore::crc64nvme_combine(self.crc, chunkstore::crc64nvme_zeros(n), n);
            self.pos = to;
        }
    }

    /// Folds the extent at `off`, clipped to `size`; `budget` bounds the
    /// bytes read (`None` when it would be exceeded).
    fn extent(&mut self, ns: &Namespace, off: u64, e: &Extent, size: u64, budget: u64) -> NsResult<Option<()>> {
        let end = (off + e.len as u64).min(size);
        if end <= self.pos {
            return Ok(Some(()));
        }
        if e.is_remote() {
            return Ok(None); // not local: unknown without fetching it
        }
        let start = off.max(self.pos);
        self.zeros_to(start);
        match e.crc64 {
            Some(c) if start == off && end == off + e.len as u64 => {
                self.crc = chunkstore::crc64nvme_combine(self.crc, c, end - start);
            }
            _ => {
                if self.read_bytes + (end - start) > budget {
                    return Ok(None);
                }
                let mut buf = vec![0u8; ((end - start) as usize).min(CRC_READ_PIECE_BYTES)];
                let mut at = start;
                while at < end {
                    let n = ((end - at) as usize).min(buf.len());
                    ns.chunks.read(e.chunk, e.chunk_off as u64 + (at - off), &mut buf[..n])?;
                    self.crc = chunkstore::crc64nvme_combine(self.crc, chunkstore::crc64nvme(&buf[..n]), n as u64);
                    at += n as u64;
                }
                self.read_bytes += end - start;
            }
        }
        self.pos = end;
        Ok(Some(()))
    }
}

impl ObjectReader {
    /// Full-object CRC64/NVME of the content as of opening, for any file
    /// (NFS-written, partly overwritten, sparse): the per-extent CRCs
    /// stored at write time are combined arithmetically, holes contribute
    /// the CRC of a zero run, and only extents whose CRC is unknown (those
    /// trimmed by later writes or truncation) are read. Returns `None` when
    /// that would read more than `read_bytes_max` bytes. Files too
    /// fragmented to pin fail with `PreconditionFailed` if their content
    /// changes during the computation.
    pub fn full_crc64nvme(&self, read_bytes_max: u64) -> NsResult<Option<u64>> {
        let size = self.inode.size;
        let mut fold = CrcFold { crc: chunkstore::crc64nvme(&[]), pos: 0, read_bytes: 0 };
        match &self.extents {
            Some(ext) => {
                for (off, e) in ext {
                    if fold.extent(&self.ns, *off, e, size, read_bytes_max)?.is_none() {
                        return Ok(None);
                    }
                }
            }
            None => {
                let mut window_start = 0u64;
                while window_start < size {
                    let window_end = window_start.saturating_add(CRC_WINDOW_BYTES).min(size);
                    let _lock = self.ns.extent_locks.get(self.inode.ino).read().unwrap_or_else(|p| p.into_inner());
                    if self.ns.getattr(self.inode.ino)?.content_gen != self.inode.content_gen {
                        return Err(NsError::PreconditionFailed);
                    }
                    for (off, e) in self.ns.extents_overlapping(self.inode.ino, fold.pos, window_end)? {
                        if fold.extent(&self.ns, off, &e, size, read_bytes_max)?.is_none() {
                            return Ok(None);
                        }
                    }
                    window_start = window_end.max(fold.pos);
                }
            }
        }
        fold.zeros_to(size);
        Ok(Some(fold.crc))
    }
}

//! Staging: an object's bytes streamed into durable chunks that nothing
//! references yet, so a PUT's data is on disk before the metadata that
//! will point at it (data before metadata).

use std::sync::Arc;

use md5::{Digest, Md5};

use crate::record::Extent;
use crate::{Namespace, NsResult};

/// Data staged for a PUT: durable chunks nobody references yet. Dropping it
/// unpublished deletes the chunks.
pub struct StagedObject {
    ns: Arc<Namespace>,
    pub(crate) extents: Vec<(u64, Extent)>,
    /// Bytes staged.
    pub size: u64,
    /// MD5 of the bytes.
    pub md5: [u8; 16],
    /// CRC64/NVME of the bytes.
    pub crc64: u64,
    consumed: bool,
}

impl StagedObject {
    /// The chunks now belong to published metadata: do not delete on drop.
    pub(crate) fn mark_consumed(&mut self) {
        self.consumed = true;
    }
}

impl Drop for StagedObject {
    fn drop(&mut self) {
        self.ns.unstage(&self.extents, !self.consumed);
    }
}

/// Streams an object's bytes into chunks. Memory: one chunk buffer.
pub struct ObjectWriter {
    ns: Arc<Namespace>,
    buf: Vec<u8>,
    extents: Vec<(u64, Extent)>,
    size: u64,
    md5: Md5,
    crc64: u64,
}

impl ObjectWriter {
    /// Whether writing `len` more bytes would write a chunk to disk (and so
    /// block); async callers move only those writes off the runtime.
    pub fn would_block(&self, len: usize) -> bool {
        self.buf.len() + len >= self.ns.chunk_size_bytes()
    }

    /// Appends bytes.
    pub fn write(&mut self, mut data: &[u8]) -> NsResult<()> {
        let cap = self.ns.chunk_size_bytes();
        while !data.is_empty() {
            let take = (cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == cap {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> NsResult<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let e = self.ns.stage_one(&self.buf)?;
        self.md5.update(&self.buf);
        let crc = e.crc64.expect("fresh chunks know their CRC");
        self.crc64 = chunkstore::crc64nvme_combine(self.crc64, crc, self.buf.len() as u64);
        self.extents.push((self.size, e));
        self.size += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size + self.buf.len() as u64
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Flushes the last chunk and makes every chunk durable.
    pub fn finish(mut self) -> NsResult<StagedObject> {
        self.flush()?;
        self.ns.chunks.barrier()?;
        let extents = std::mem::take(&mut self.extents);
        Ok(StagedObject {
            ns: self.ns.clone(),
            extents,
            size: self.size,
            md5: std::mem::take(&mut self.md5).finalize().into(),
            crc64: self.crc64,
            consumed: false,
        })
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // Unfinished: the chunks were never referenced.
        self.ns.unstage(&self.extents, true);
    }
}

impl Namespace {
    /// Starts staging an object.
    pub fn object_writer(self: &Arc<Self>) -> ObjectWriter {
        ObjectWriter {
            ns: self.clone(),
            buf: Vec::with_capacity(self.chunk_size_bytes()),
            extents: Vec::new(),
            size: 0,
            md5: Md5::new(),
            crc64: chunkstore::crc64nvme(&[]),
        }
    }
}

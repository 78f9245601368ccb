//! The chunk file format, version 1 (all integers little-endian):
//!
//! ```text
//! 0   magic      b"GWCHUNK\0"
//! 8   version    u16 = 1
//! 10  reserved   u16 = 0
//! 12  block size u32 (bytes; 65536)
//! 16  chunk id   u64
//! 24  data len   u64
//! 32  crc64nvme  u64 of the whole data
//! 40  blocks     u32 = ceil(len / block size)
//! 44  reserved   16 bytes of zero
//! 60  crc32c     u32 of bytes 0..60
//! 64  table      `blocks` x u32 crc32c, one per data block
//! ..  data       `len` bytes
//! ```
//!
//! The table sits before the data so that a ranged read costs two preads:
//! header+table, then the data blocks it needs.

use crate::ChunkError;

/// Magic bytes at the start of every chunk file.
pub const MAGIC: [u8; 8] = *b"GWCHUNK\0";
/// Current (and only) format version.
pub const CHUNK_FORMAT_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_SIZE_BYTES: usize = 64;
/// Checksum granularity: a read verifies whole blocks.
pub const BLOCK_SIZE_BYTES: usize = 64 << 10;
/// Largest chunk the format and the store accept.
pub const CHUNK_SIZE_BYTES_MAX: usize = 64 << 20;

/// The decoded fixed header of a chunk file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    /// Chunk id, repeated in the file so a misplaced file is detected.
    pub id: u64,
    /// Data length in bytes.
    pub len: u64,
    /// CRC64/NVME of the data.
    pub crc64: u64,
    /// Number of checksummed blocks.
    pub blocks: u32,
}

impl ChunkHeader {
    /// Byte offset of the data.
    pub fn data_offset(&self) -> u64 {
        HEADER_SIZE_BYTES as u64 + 4 * self.blocks as u64
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_SIZE_BYTES] {
        let mut h = [0u8; HEADER_SIZE_BYTES];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&CHUNK_FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&(BLOCK_SIZE_BYTES as u32).to_le_bytes());
        h[16..24].copy_from_slice(&self.id.to_le_bytes());
        h[24..32].copy_from_slice(&self.len.to_le_bytes());
        h[32..40].copy_from_slice(&self.crc64.to_le_bytes());
        h[40..44].copy_from_slice(&self.blocks.to_le_bytes());
        let crc = crc32c(&h[0..60]);
        h[60..64].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and validates a header read from the file of chunk `id`.
    pub fn decode(id: u64, h: &[u8]) -> Result<Self, ChunkError> {
        let corrupt = |why: &str| ChunkError::Corrupt { id, why: why.to_string() };
        if h.len() < HEADER_SIZE_BYTES {
            return Err(corrupt("file shorter than its header"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().expect("8 bytes"));
        if crc32c(&h[0..60]) != u32_at(60) {
            return Err(corrupt("header checksum mismatch"));
        }
        if h[0..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != CHUNK_FORMAT_VERSION {
            return Err(corrupt(&format!("unknown format version {version}")));
        }
        if u32_at(12) as usize != BLOCK_SIZE_BYTES {
            return Err(corrupt("unexpected block size"));
        }
        let hdr = ChunkHeader { id: u64_at(16), len: u64_at(24), crc64: u64_at(32), blocks: u32_at(40) };
        if hdr.id != id {
            return Err(corrupt(&format!("header names chunk {:016x}", hdr.id)));
        }
        if hdr.len > CHUNK_SIZE_BYTES_MAX as u64 || hdr.blocks as u64 != blocks_for(hdr.len) {
            return Err(corrupt("length and block count disagree"));
        }
        Ok(hdr)
    }
}

/// Number of checksummed blocks for `len` data bytes.
pub fn blocks_for(len: u64) -> u64 {
    len.div_ceil(BLOCK_SIZE_BYTES as u64)
}

/// CRC32C (Castagnoli), the per-block checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = ChunkHeader { id: 7, len: 100_000, crc64: 42, blocks: 2 };
        let enc = h.encode();
        assert_eq!(ChunkHeader::decode(7, &enc).unwrap(), h);
        assert!(matches!(ChunkHeader::decode(8, &enc), Err(ChunkError::Corrupt { .. })), "wrong id");
        for byte in [0usize, 9, 20, 33, 61] {
            let mut bad = enc;
            bad[byte] ^= 0x40;
            assert!(matches!(ChunkHeader::decode(7, &bad), Err(ChunkError::Corrupt { .. })), "flip at {byte}");
        }
        assert!(ChunkHeader::decode(7, &enc[..10]).is_err(), "short header");
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}

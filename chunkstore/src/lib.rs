//! The chunked data plane on local NVMe. It knows no names: chunks are
//! immutable files identified by a `u64` the caller allocates.
//!
//! Write protocol (the caller's part is in the namespace):
//! 1. the caller allocates a chunk id that has never been used;
//! 2. [`ChunkStore::write_chunk`] creates the file exclusively, writes header,
//!    block checksums and data, and starts writeback (not yet durable);
//! 3. [`ChunkStore::barrier`] `fdatasync`s every chunk written since the last
//!    barrier, then fsyncs every shard directory that gained a file, so the
//!    bytes and the directory entries are durable;
//! 4. only then may the caller commit metadata that references the chunk.
//!
//! A crash anywhere before step 4 leaves an unreferenced chunk, which the
//! namespace's orphan scan deletes after a grace period.
//!
//! Reads verify the header checksum and the CRC32C of every 64 KiB block they
//! touch; a mismatch is [`ChunkError::Corrupt`], never wrong bytes.

mod error;
mod format;
mod io;
mod store;

pub use error::ChunkError;
pub use format::{ChunkHeader, BLOCK_SIZE_BYTES, CHUNK_FORMAT_VERSION, CHUNK_SIZE_BYTES_MAX, HEADER_SIZE_BYTES};
pub use io::{ChunkIo, Faults, FaultyIo, RealIo, WriteFailure};
pub use store::{
    ChunkInfo, ChunkStore, ChunkStoreConfig, StoredChunk, DEFAULT_CHUNK_SIZE_BYTES, DEFAULT_FREE_BYTES_RESERVED,
};

/// Result alias for chunkstore calls.
pub type Result<T> = std::result::Result<T, ChunkError>;

/// CRC64/NVME of `data` (the checksum S3 calls CRC64NVME).
pub fn crc64nvme(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data)
}

/// Combines `crc64nvme(a)` and `crc64nvme(b)` into `crc64nvme(a ‖ b)`.
pub fn crc64nvme_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Nvme, crc_a, crc_b, len_b)
}

/// CRC64/NVME of `len` zero bytes, for holes in sparse files; costs
/// O(log len) combines, so a hole of terabytes is free.
pub fn crc64nvme_zeros(len: u64) -> u64 {
    const STEP_BYTES: usize = 64 << 10;
    let zeros = [0u8; STEP_BYTES];
    let mut acc = crc64nvme(&zeros[..(len % STEP_BYTES as u64) as usize]);
    let mut acc_len = len % STEP_BYTES as u64;
    let (mut pow_crc, mut pow_len) = (crc64nvme(&zeros), STEP_BYTES as u64);
    let mut n = len / STEP_BYTES as u64;
    while n > 0 {
        if n & 1 == 1 {
            // Zeros commute, so the order of the pieces does not matter.
            acc = crc64nvme_combine(pow_crc, acc, acc_len);
            acc_len += pow_len;
        }
        n >>= 1;
        if n > 0 {
            pow_crc = crc64nvme_combine(pow_crc, pow_crc, pow_len);
            pow_len *= 2;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64nvme_matches_the_standard_check_value() {
        assert_eq!(crc64nvme(b"123456789"), 0xAE8B_1486_0A79_9888);
    }

    #[test]
    fn zero_run_crc_matches_direct_computation() {
        for len in [0u64, 1, 100, 65536, 65537, 3 * 65536 + 5, 1 << 20] {
            assert_eq!(crc64nvme_zeros(len), crc64nvme(&vec![0u8; len as usize]), "len {len}");
        }
    }

    #[test]
    fn combine_concatenates() {
        let (a, b) = (b"hello ".as_slice(), b"world".as_slice());
        assert_eq!(crc64nvme_combine(crc64nvme(a), crc64nvme(b), b.len() as u64), crc64nvme(b"hello world"));
    }
}

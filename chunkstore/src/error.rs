use thiserror::Error;

/// Everything that can go wrong in the chunk store.
#[derive(Debug, Error)]
pub enum ChunkError {
    /// The chunk file does not exist.
    #[error("chunk {0:016x} not found")]
    NotFound(u64),
    /// A chunk with this id already exists (ids must never be reused).
    #[error("chunk {0:016x} already exists")]
    AlreadyExists(u64),
    /// The chunk's bytes do not match their checksums or header.
    #[error("chunk {id:016x} is corrupt: {why}")]
    Corrupt {
        /// The chunk.
        id: u64,
        /// What did not match.
        why: String,
    },
    /// The request is outside the chunk or over a limit.
    #[error("invalid chunk request: {0}")]
    Invalid(String),
    /// The device is full.
    #[error("no space left on the data device")]
    NoSpace,
    /// An fsync failed earlier; the store refuses writes until reopened.
    #[error("chunk store poisoned by an earlier durability failure")]
    Poisoned,
    /// Any other I/O error.
    #[error("chunk I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl ChunkError {
    pub(crate) fn from_write(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            ChunkError::NoSpace
        } else {
            ChunkError::Io(e)
        }
    }
}

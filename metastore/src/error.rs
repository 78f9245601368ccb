use thiserror::Error;

/// Everything that can go wrong in the metadata store.
#[derive(Debug, Error)]
pub enum MetaError {
    /// The transaction body returned `Abort`; nothing was committed.
    #[error("transaction aborted by its body")]
    Aborted,
    /// A read inside a transaction was interrupted by the engine; the body
    /// must return at once (the engine retries or fails the transaction).
    #[error("transaction interrupted by the engine")]
    Interrupted,
    /// The engine reported an I/O or internal failure.
    #[error("metadata engine failure: {0}")]
    Engine(String),
    /// A durability barrier failed earlier: the store refuses further work
    /// until it is reopened, because a failed fsync cannot be retried safely.
    #[error("metadata store poisoned by an earlier durability failure")]
    Poisoned,
    /// Another process (or handle) holds the store's file lock: the data
    /// directory is in use.
    #[error("metadata store {} is locked by another process", .0.display())]
    Locked(std::path::PathBuf),
    /// An operating-system I/O error outside the engine (opening, fsync).
    #[error("metadata store I/O: {0}")]
    Io(#[from] std::io::Error),
}

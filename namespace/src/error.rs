use thiserror::Error;

/// The namespace's error: the only error the protocol front doors see.
///
/// Variants are domain words; each front door maps every variant to its own
/// wire error in one exhaustive `match` (no catch-all arm), so adding a
/// variant does not compile until both doors decide what to send.
#[derive(Debug, Error)]
pub enum NsError {
    /// The name, key, bucket, inode or upload does not exist.
    #[error("not found")]
    NotFound,
    /// The handle names an inode that no longer exists.
    #[error("stale handle")]
    Stale,
    /// The name is taken.
    #[error("already exists")]
    AlreadyExists,
    /// The directory (or bucket) is not empty.
    #[error("directory not empty")]
    NotEmpty,
    /// A path component (or the target) is not a directory; for S3 keys:
    /// the key needs a file to be a directory (`a` exists, `a/b` written).
    #[error("not a directory")]
    NotADirectory,
    /// The target is a directory where a file was expected; for S3 keys: the
    /// key names an existing directory.
    #[error("is a directory")]
    IsADirectory,
    /// The name or key breaks a naming rule.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// A name component is longer than 255 bytes.
    #[error("name too long")]
    NameTooLong,
    /// A key is longer than 1024 bytes.
    #[error("key too long")]
    KeyTooLong,
    /// A size or count is over its limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The request is malformed in a way no other variant names (renaming a
    /// directory into itself, a bad offset, a data-carrying marker...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// POSIX permissions refuse the caller (EACCES).
    #[error("permission denied")]
    PermissionDenied,
    /// Only the owner or root may do this (EPERM).
    #[error("operation not permitted")]
    NotPermitted,
    /// A condition (If-Match, If-None-Match, ETag) does not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A SETATTR guard did not match the current ctime.
    #[error("guard mismatch")]
    NotSync,
    /// A file would get more hard links than allowed.
    #[error("too many links")]
    TooManyLinks,
    /// The multipart upload does not exist (or is no longer open).
    #[error("no such upload")]
    NoSuchUpload,
    /// A part list names a missing part, a wrong ETag or a short part.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// A part other than the last is smaller than the minimum part size.
    #[error("part too small: {0}")]
    PartTooSmall(String),
    /// The parts of a completion are not in ascending order.
    #[error("invalid part order")]
    InvalidPartOrder,
    /// The data device is full.
    #[error("no space left")]
    NoSpace,
    /// The store cannot serve now (poisoned after an fsync failure).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The bucket's upstream object store cannot answer now (unreachable,
    /// 5xx, timed out, or its object changed during a read): retryable.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The operation is valid but not supported here (for example a rename
    /// an upstream-bound bucket cannot follow).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// Stored bytes or records failed validation.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Anything else; the cause is logged, never sent to a client.
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias for namespace calls.
pub type NsResult<T> = Result<T, NsError>;

impl From<metastore::MetaError> for NsError {
    fn from(e: metastore::MetaError) -> Self {
        use metastore::MetaError as M;
        match e {
            M::Poisoned | M::Locked(_) => NsError::Unavailable(e.to_string()),
            M::Aborted | M::Interrupted | M::Engine(_) | M::Io(_) => NsError::Internal(e.to_string()),
        }
    }
}

impl From<chunkstore::ChunkError> for NsError {
    fn from(e: chunkstore::ChunkError) -> Self {
        use chunkstore::ChunkError as C;
        match e {
            C::NoSpace => NsError::NoSpace,
            C::Poisoned => NsError::Unavailable(e.to_string()),
            // Metadata referenced the chunk, so a missing one is damage.
            C::Corrupt { .. } | C::NotFound(_) => NsError::Corrupt(e.to_string()),
            C::AlreadyExists(_) | C::Invalid(_) | C::Io(_) => NsError::Internal(e.to_string()),
        }
    }
}

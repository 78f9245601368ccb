//! The crate's one error type.

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An option is out of range or malformed (a user mistake).
    #[error("invalid option: {0}")]
    Invalid(String),
    /// A target URL could not be parsed.
    #[error("bad target {url:?}: {why}")]
    BadTarget {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// Local file I/O failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path it was done on.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An S3 request was answered with an error status or could not be sent.
    #[error("S3 {op} {key}: {why}")]
    S3 {
        /// The operation (`GET`, `PUT`, `ListObjectsV2`, ...).
        op: &'static str,
        /// The bucket/key.
        key: String,
        /// Status and body, or the transport error.
        why: String,
    },
    /// An NFS call failed (RPC error or an NFS status other than OK).
    #[error("NFS {op} {path}: {why}")]
    Nfs {
        /// The procedure.
        op: &'static str,
        /// The path inside the export.
        path: String,
        /// The status or transport error.
        why: String,
    },
    /// Data read back differs from what the pattern says was written.
    #[error("verification failed: {path} at offset {offset}: {why}")]
    Mismatch {
        /// The file.
        path: String,
        /// The first differing (or missing) byte's offset in the file.
        offset: u64,
        /// What differs.
        why: String,
    },
    /// The dataset at a target was not prepared, or with other parameters.
    #[error("dataset at {target} for {workload}: {why} (run `gateway bench prepare` with the same --seed/--scale/--sample-scale)")]
    Dataset {
        /// Target URL.
        target: String,
        /// Workload name.
        workload: String,
        /// What does not match.
        why: String,
    },
    /// A result file could not be written or read.
    #[error("report {path}: {why}")]
    Report {
        /// The file.
        path: String,
        /// The cause.
        why: String,
    },
}

/// Shorthand.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

//! S3 errors: a code, an HTTP status and a message, rendered as S3's XML
//! error document. `NsError` maps here in one exhaustive function per
//! context, so a new namespace error does not compile until it is mapped.

use http::StatusCode;
use namespace::NsError;

mod code;

pub use code::ErrorCode;

/// An error answered to the client.
///
/// Invariant: the status sent is always the code's own
/// ([`ErrorCode::status`]); no call site chooses one.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// S3 error code (`NoSuchKey`, `SignatureDoesNotMatch`...).
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Further elements of the error document, after `<Message>`, as S3
    /// sends for some codes (`InvalidRange`: `RangeRequested`,
    /// `ActualObjectSize`). Names are fixed by the code that adds them;
    /// values are escaped when sent.
    pub details: Vec<(&'static str, String)>,
    /// Headers sent with the error (`Content-Range: bytes */size` on a 416).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with a code and message, sent with the code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        S3Error { code, message: message.into(), details: Vec::new(), headers: Vec::new() }
    }
    /// Adds an element to the error document (after `<Message>`).
    pub fn with_detail(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }
    /// Adds a header to the error response.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// The HTTP status: the code's.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(ErrorCode::NotImplemented, format!("{what} is not implemented"))
    }
    /// 500 InternalError; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "internal error");
        Self::new(ErrorCode::InternalError, "We encountered an internal error. Please try again.")
    }
    /// 400 InvalidArgument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
}

/// What the failing request was doing, for choosing codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ctx {
    /// A bucket-level operation.
    Bucket,
    /// Reading an object (GET, HEAD, copy source).
    Read,
    /// Writing or deleting an object.
    Write,
    /// A multipart upload operation.
    Upload,
}

/// Maps a namespace error to the S3 error a client sees.
pub fn from_ns(e: NsError, ctx: Ctx) -> S3Error {
    match e {
        NsError::NotFound => match ctx {
            Ctx::Bucket => S3Error::new(ErrorCode::NoSuchBucket, "The specified bucket does not exist"),
            Ctx::Read | Ctx::Write => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Upload => S3Error::new(ErrorCode::NoSuchUpload, "The specified upload does not exist."),
        },
        NsError::Stale => S3Error::new(ErrorCode::NoSuchKey, "The object was removed while being accessed."),
        NsError::AlreadyExists => match ctx {
            Ctx::Bucket => S3Error::new(ErrorCode::BucketAlreadyOwnedByYou, "The bucket already exists."),
            Ctx::Read | Ctx::Write | Ctx::Upload => {
                S3Error::new(ErrorCode::PreconditionFailed, "The key already exists.")
            }
        },
        NsError::NotEmpty => S3Error::new(ErrorCode::BucketNotEmpty, "The bucket you tried to delete is not empty."),
        NsError::NotADirectory => match ctx {
            Ctx::Read => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => S3Error::new(
                ErrorCode::ObjectParentIsFile,
                "A prefix of the key names an existing object, which cannot also be a directory.",
            ),
        },
        NsError::IsADirectory => match ctx {
            Ctx::Read => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => {
                S3Error::new(ErrorCode::ExistingObjectIsDirectory, "The key names a directory that holds other keys.")
            }
        },
        NsError::InvalidName(why) => match ctx {
            Ctx::Bucket => S3Error::new(ErrorCode::InvalidBucketName, why),
            Ctx::Read => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Write | Ctx::Upload => S3Error::new(ErrorCode::InvalidObjectName, why),
        },
        NsError::NameTooLong => match ctx {
            Ctx::Read => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => {
                S3Error::new(ErrorCode::KeyTooLongError, "A key component is longer than 255 bytes.")
            }
        },
        NsError::KeyTooLong => match ctx {
            Ctx::Read => S3Error::new(ErrorCode::NoSuchKey, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => S3Error::new(ErrorCode::KeyTooLongError, "Your key is too long."),
        },
        NsError::TooLarge(why) => S3Error::new(ErrorCode::EntityTooLarge, why),
        NsError::InvalidArgument(why) => S3Error::new(ErrorCode::InvalidArgument, why),
        NsError::PermissionDenied | NsError::NotPermitted => S3Error::new(ErrorCode::AccessDenied, "Access Denied"),
        NsError::PreconditionFailed => {
            S3Error::new(ErrorCode::PreconditionFailed, "At least one of the preconditions you specified did not hold.")
        }
        NsError::NotSync => S3Error::new(ErrorCode::ConditionalRequestConflict, "A conflicting operation won."),
        NsError::TooManyLinks => S3Error::internal("too many links"),
        NsError::NoSuchUpload => S3Error::new(ErrorCode::NoSuchUpload, "The specified upload does not exist."),
        NsError::InvalidPart(why) => S3Error::new(ErrorCode::InvalidPart, why),
        NsError::PartTooSmall(why) => S3Error::new(ErrorCode::EntityTooSmall, why),
        NsError::InvalidPartOrder => {
            S3Error::new(ErrorCode::InvalidPartOrder, "The list of parts was not in ascending order.")
        }
        NsError::NoSpace => S3Error::new(ErrorCode::InsufficientStorage, "The data device is full."),
        NsError::Unavailable(why) => {
            tracing::warn!(%why, "store unavailable");
            S3Error::new(ErrorCode::ServiceUnavailable, "The store cannot serve requests now.")
        }
        NsError::UpstreamUnavailable(why) => {
            tracing::warn!(%why, "upstream unavailable");
            S3Error::new(ErrorCode::ServiceUnavailable, format!("The bucket's upstream store cannot answer now: {why}"))
                .with_header("Retry-After", UPSTREAM_RETRY_AFTER_SECS.to_string())
        }
        NsError::NotSupported(why) => S3Error::new(ErrorCode::NotImplemented, why),
        NsError::Corrupt(why) => S3Error::internal(format!("corrupt: {why}")),
        NsError::Internal(why) => S3Error::internal(why),
    }
}

/// The retry hint sent when a bucket's upstream cannot answer.
pub const UPSTREAM_RETRY_AFTER_SECS: u64 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the rows clients depend on.
    #[test]
    fn mapping_table() {
        let rows: Vec<(NsError, Ctx, &str, u16)> = vec![
            (NsError::NotFound, Ctx::Bucket, "NoSuchBucket", 404),
            (NsError::NotFound, Ctx::Read, "NoSuchKey", 404),
            (NsError::NotFound, Ctx::Upload, "NoSuchUpload", 404),
            (NsError::AlreadyExists, Ctx::Bucket, "BucketAlreadyOwnedByYou", 409),
            (NsError::NotEmpty, Ctx::Bucket, "BucketNotEmpty", 409),
            (NsError::NotADirectory, Ctx::Write, "ObjectParentIsFile", 409),
            (NsError::IsADirectory, Ctx::Write, "ExistingObjectIsDirectory", 409),
            (NsError::IsADirectory, Ctx::Read, "NoSuchKey", 404),
            (NsError::InvalidName("x".into()), Ctx::Write, "InvalidObjectName", 400),
            (NsError::InvalidName("x".into()), Ctx::Read, "NoSuchKey", 404),
            (NsError::InvalidName("x".into()), Ctx::Bucket, "InvalidBucketName", 400),
            (NsError::KeyTooLong, Ctx::Write, "KeyTooLongError", 400),
            (NsError::PermissionDenied, Ctx::Read, "AccessDenied", 403),
            (NsError::PreconditionFailed, Ctx::Write, "PreconditionFailed", 412),
            (NsError::PartTooSmall("x".into()), Ctx::Upload, "EntityTooSmall", 400),
            (NsError::InvalidPartOrder, Ctx::Upload, "InvalidPartOrder", 400),
            (NsError::Corrupt("x".into()), Ctx::Read, "InternalError", 500),
            (NsError::UpstreamUnavailable("x".into()), Ctx::Read, "ServiceUnavailable", 503),
            (NsError::NotSupported("x".into()), Ctx::Write, "NotImplemented", 501),
        ];
        for (e, ctx, code, status) in rows {
            let s = from_ns(e, ctx);
            assert_eq!((s.code.as_str(), s.status().as_u16()), (code, status));
        }
    }
}

//! S3 errors: a code, an HTTP status and a message, rendered as S3's XML
//! error document. `NsError` maps here in one exhaustive function per
//! context, so a new namespace error does not compile until it is mapped.

use http::StatusCode;
use namespace::NsError;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// S3 error code (`NoSuchKey`, `SignatureDoesNotMatch`...).
    pub code: &'static str,
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
}

impl S3Error {
    /// An error with a code, status and message.
    pub fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        S3Error { code, status, message: message.into() }
    }
    /// 400 with `code`.
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, message)
    }
    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::FORBIDDEN, message)
    }
    /// 501 NotImplemented.
    pub fn not_implemented(what: &str) -> Self {
        Self::new("NotImplemented", StatusCode::NOT_IMPLEMENTED, format!("{what} is not implemented"))
    }
    /// 500 InternalError; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "internal error");
        Self::new(
            "InternalError",
            StatusCode::INTERNAL_SERVER_ERROR,
            "We encountered an internal error. Please try again.",
        )
    }
    /// 400 InvalidArgument.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::bad("InvalidArgument", message)
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
    use StatusCode as S;
    match e {
        NsError::NotFound => match ctx {
            Ctx::Bucket => S3Error::new("NoSuchBucket", S::NOT_FOUND, "The specified bucket does not exist"),
            Ctx::Read | Ctx::Write => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Upload => S3Error::new("NoSuchUpload", S::NOT_FOUND, "The specified upload does not exist."),
        },
        NsError::Stale => S3Error::new("NoSuchKey", S::NOT_FOUND, "The object was removed while being accessed."),
        NsError::AlreadyExists => match ctx {
            Ctx::Bucket => S3Error::new("BucketAlreadyOwnedByYou", S::CONFLICT, "The bucket already exists."),
            Ctx::Read | Ctx::Write | Ctx::Upload => {
                S3Error::new("PreconditionFailed", S::PRECONDITION_FAILED, "The key already exists.")
            }
        },
        NsError::NotEmpty => {
            S3Error::new("BucketNotEmpty", S::CONFLICT, "The bucket you tried to delete is not empty.")
        }
        NsError::NotADirectory => match ctx {
            Ctx::Read => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => S3Error::new(
                "ObjectParentIsFile",
                S::CONFLICT,
                "A prefix of the key names an existing object, which cannot also be a directory.",
            ),
        },
        NsError::IsADirectory => match ctx {
            Ctx::Read => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => S3Error::new(
                "ExistingObjectIsDirectory",
                S::CONFLICT,
                "The key names a directory that holds other keys.",
            ),
        },
        NsError::InvalidName(why) => match ctx {
            Ctx::Bucket => S3Error::bad("InvalidBucketName", why),
            Ctx::Read => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Write | Ctx::Upload => S3Error::bad("InvalidObjectName", why),
        },
        NsError::NameTooLong => match ctx {
            Ctx::Read => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => {
                S3Error::bad("KeyTooLongError", "A key component is longer than 255 bytes.")
            }
        },
        NsError::KeyTooLong => match ctx {
            Ctx::Read => S3Error::new("NoSuchKey", S::NOT_FOUND, "The specified key does not exist."),
            Ctx::Bucket | Ctx::Write | Ctx::Upload => S3Error::bad("KeyTooLongError", "Your key is too long."),
        },
        NsError::TooLarge(why) => S3Error::bad("EntityTooLarge", why),
        NsError::InvalidArgument(why) => S3Error::bad("InvalidArgument", why),
        NsError::PermissionDenied | NsError::NotPermitted => S3Error::forbidden("AccessDenied", "Access Denied"),
        NsError::PreconditionFailed => S3Error::new(
            "PreconditionFailed",
            S::PRECONDITION_FAILED,
            "At least one of the preconditions you specified did not hold.",
        ),
        NsError::NotSync => S3Error::new("ConditionalRequestConflict", S::CONFLICT, "A conflicting operation won."),
        NsError::TooManyLinks => S3Error::internal("too many links"),
        NsError::NoSuchUpload => S3Error::new("NoSuchUpload", S::NOT_FOUND, "The specified upload does not exist."),
        NsError::InvalidPart(why) => S3Error::bad("InvalidPart", why),
        NsError::PartTooSmall(why) => S3Error::bad("EntityTooSmall", why),
        NsError::InvalidPartOrder => S3Error::bad("InvalidPartOrder", "The list of parts was not in ascending order."),
        NsError::NoSpace => S3Error::new("InsufficientStorage", S::INSUFFICIENT_STORAGE, "The data device is full."),
        NsError::Unavailable(why) => {
            tracing::warn!(%why, "store unavailable");
            S3Error::new("ServiceUnavailable", S::SERVICE_UNAVAILABLE, "The store cannot serve requests now.")
        }
        NsError::Corrupt(why) => S3Error::internal(format!("corrupt: {why}")),
        NsError::Internal(why) => S3Error::internal(why),
    }
}

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
        ];
        for (e, ctx, code, status) in rows {
            let s = from_ns(e, ctx);
            assert_eq!((s.code, s.status.as_u16()), (code, status));
        }
    }
}

//! The closed set of S3 error codes this crate sends, and the one table
//! that gives each its text and HTTP status.
//!
//! Invariant: a code is named only through [`ErrorCode`], so it cannot be
//! misspelt, and each code has one status, chosen here. Adding a code is
//! one line in the table below plus one row in the test that pins it.

use http::StatusCode;

/// Declares [`ErrorCode`] from the table: the enum, `ALL`, and the text and
/// status of each variant, so the three cannot drift apart.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, $status:ident; )+) => {
        /// An S3 error code (the `<Code>` of the error document), with its
        /// HTTP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code's text and HTTP status: the one table.
            const fn row(self) -> (&'static str, StatusCode) {
                match self {
                    $( ErrorCode::$variant => ($text, StatusCode::$status), )+
                }
            }
        }
    };
}

error_codes! {
    /// The key lacks a right, a header is unsigned, or the URL expired.
    AccessDenied => "AccessDenied", FORBIDDEN;
    /// The `Authorization` header cannot be parsed or its scope is wrong.
    AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed", BAD_REQUEST;
    /// A presigned URL's `X-Amz-*` parameters cannot be parsed.
    AuthorizationQueryParametersError => "AuthorizationQueryParametersError", BAD_REQUEST;
    /// Content-MD5 or a checksum does not match the bytes received.
    BadDigest => "BadDigest", BAD_REQUEST;
    /// CreateBucket of a bucket that exists.
    BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou", CONFLICT;
    /// DeleteBucket of a bucket that holds keys.
    BucketNotEmpty => "BucketNotEmpty", CONFLICT;
    /// A concurrent operation on the same key won.
    ConditionalRequestConflict => "ConditionalRequestConflict", CONFLICT;
    /// A body, part or file larger than its limit.
    EntityTooLarge => "EntityTooLarge", BAD_REQUEST;
    /// A multipart part (not the last) under the minimum size.
    EntityTooSmall => "EntityTooSmall", BAD_REQUEST;
    /// The key names a directory that holds other keys.
    ExistingObjectIsDirectory => "ExistingObjectIsDirectory", CONFLICT;
    /// The body is shorter or longer than declared, or its framing broke.
    IncompleteBody => "IncompleteBody", BAD_REQUEST;
    /// The data device is full.
    InsufficientStorage => "InsufficientStorage", INSUFFICIENT_STORAGE;
    /// A server fault; the cause is logged, never sent.
    InternalError => "InternalError", INTERNAL_SERVER_ERROR;
    /// The access key is not in the keyring.
    InvalidAccessKeyId => "InvalidAccessKeyId", FORBIDDEN;
    /// A parameter or header value is out of range or malformed.
    InvalidArgument => "InvalidArgument", BAD_REQUEST;
    /// A bucket name breaks the naming rules.
    InvalidBucketName => "InvalidBucketName", BAD_REQUEST;
    /// Content-MD5 is not 16 bytes of base64.
    InvalidDigest => "InvalidDigest", BAD_REQUEST;
    /// A key the namespace cannot hold as a path.
    InvalidObjectName => "InvalidObjectName", BAD_REQUEST;
    /// A part named in CompleteMultipartUpload is missing or differs.
    InvalidPart => "InvalidPart", BAD_REQUEST;
    /// `partNumber` on GET/HEAD beyond the object's parts (400, as S3
    /// answers; not a range error).
    InvalidPartNumber => "InvalidPartNumber", BAD_REQUEST;
    /// CompleteMultipartUpload parts not in ascending order.
    InvalidPartOrder => "InvalidPartOrder", BAD_REQUEST;
    /// A `Range` or copy-source range that cannot be satisfied.
    InvalidRange => "InvalidRange", RANGE_NOT_SATISFIABLE;
    /// A request S3 refuses as a whole (missing header, copy to itself...).
    InvalidRequest => "InvalidRequest", BAD_REQUEST;
    /// A key, or one of its components, is too long.
    KeyTooLongError => "KeyTooLongError", BAD_REQUEST;
    /// A request document is not well-formed or not what was expected.
    MalformedXML => "MalformedXML", BAD_REQUEST;
    /// User metadata over the limit.
    MetadataTooLarge => "MetadataTooLarge", BAD_REQUEST;
    /// The method is not allowed on this resource.
    MethodNotAllowed => "MethodNotAllowed", METHOD_NOT_ALLOWED;
    /// An aws-chunked body without `x-amz-decoded-content-length`.
    MissingContentLength => "MissingContentLength", LENGTH_REQUIRED;
    /// The bucket does not exist.
    NoSuchBucket => "NoSuchBucket", NOT_FOUND;
    /// The key does not exist (or cannot be read as an object).
    NoSuchKey => "NoSuchKey", NOT_FOUND;
    /// The multipart upload does not exist.
    NoSuchUpload => "NoSuchUpload", NOT_FOUND;
    /// An operation or sub-resource this gateway does not implement.
    NotImplemented => "NotImplemented", NOT_IMPLEMENTED;
    /// A prefix of the key names an existing object.
    ObjectParentIsFile => "ObjectParentIsFile", CONFLICT;
    /// A conditional header did not hold.
    PreconditionFailed => "PreconditionFailed", PRECONDITION_FAILED;
    /// The request time is too far from the server's clock.
    RequestTimeTooSkewed => "RequestTimeTooSkewed", FORBIDDEN;
    /// The store cannot serve requests now.
    ServiceUnavailable => "ServiceUnavailable", SERVICE_UNAVAILABLE;
    /// A request, chunk or trailer signature does not match.
    SignatureDoesNotMatch => "SignatureDoesNotMatch", FORBIDDEN;
    /// The body's SHA-256 differs from `x-amz-content-sha256`.
    XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch", BAD_REQUEST;
}

impl ErrorCode {
    /// The code's text, as sent in `<Code>` and used as a metric label.
    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status the code is sent with.
    pub const fn status(self) -> StatusCode {
        self.row().1
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::{self, *};

    /// Pins every code's text and status: clients and the end-to-end
    /// suites compare both exactly.
    #[test]
    fn code_table() {
        let rows: [(ErrorCode, &str, u16); 38] = [
            (AccessDenied, "AccessDenied", 403),
            (AuthorizationHeaderMalformed, "AuthorizationHeaderMalformed", 400),
            (AuthorizationQueryParametersError, "AuthorizationQueryParametersError", 400),
            (BadDigest, "BadDigest", 400),
            (BucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou", 409),
            (BucketNotEmpty, "BucketNotEmpty", 409),
            (ConditionalRequestConflict, "ConditionalRequestConflict", 409),
            (EntityTooLarge, "EntityTooLarge", 400),
            (EntityTooSmall, "EntityTooSmall", 400),
            (ExistingObjectIsDirectory, "ExistingObjectIsDirectory", 409),
            (IncompleteBody, "IncompleteBody", 400),
            (InsufficientStorage, "InsufficientStorage", 507),
            (InternalError, "InternalError", 500),
            (InvalidAccessKeyId, "InvalidAccessKeyId", 403),
            (InvalidArgument, "InvalidArgument", 400),
            (InvalidBucketName, "InvalidBucketName", 400),
            (InvalidDigest, "InvalidDigest", 400),
            (InvalidObjectName, "InvalidObjectName", 400),
            (InvalidPart, "InvalidPart", 400),
            (InvalidPartNumber, "InvalidPartNumber", 400),
            (InvalidPartOrder, "InvalidPartOrder", 400),
            (InvalidRange, "InvalidRange", 416),
            (InvalidRequest, "InvalidRequest", 400),
            (KeyTooLongError, "KeyTooLongError", 400),
            (MalformedXML, "MalformedXML", 400),
            (MetadataTooLarge, "MetadataTooLarge", 400),
            (MethodNotAllowed, "MethodNotAllowed", 405),
            (MissingContentLength, "MissingContentLength", 411),
            (NoSuchBucket, "NoSuchBucket", 404),
            (NoSuchKey, "NoSuchKey", 404),
            (NoSuchUpload, "NoSuchUpload", 404),
            (NotImplemented, "NotImplemented", 501),
            (ObjectParentIsFile, "ObjectParentIsFile", 409),
            (PreconditionFailed, "PreconditionFailed", 412),
            (RequestTimeTooSkewed, "RequestTimeTooSkewed", 403),
            (ServiceUnavailable, "ServiceUnavailable", 503),
            (SignatureDoesNotMatch, "SignatureDoesNotMatch", 403),
            (XAmzContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400),
        ];
        assert_eq!(rows.len(), ErrorCode::ALL.len(), "every code has a row");
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            let row = rows.iter().find(|r| r.0 == code).unwrap_or_else(|| panic!("{code:?} has no row"));
            assert_eq!((code.as_str(), code.status().as_u16()), (row.1, row.2), "{code:?}");
            assert_eq!(code.to_string(), row.1);
            for other in &ErrorCode::ALL[i + 1..] {
                assert_ne!(code.as_str(), other.as_str(), "code texts are unique");
                assert_ne!(code, *other, "ALL lists each code once");
            }
        }
    }
}

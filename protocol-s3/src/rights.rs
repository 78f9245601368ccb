//! Per-bucket rights of an access key: what S3 may do in each bucket,
//! checked before the operation runs. They sit on top of the POSIX checks
//! the namespace makes with the key's mapped identity: a request must pass
//! both, so S3 can never do what the mapped user could not do over NFS.

use std::collections::BTreeMap;

use crate::error::{ErrorCode, S3Error};
use crate::router::Endpoint;

/// What a key may do in a bucket; each level includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// List, HEAD and GET.
    Read,
    /// Read, plus PUT, copy, delete and multipart uploads.
    Write,
    /// Write, plus creating and deleting the bucket itself.
    Admin,
}

impl Right {
    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Option<Right> {
        match s {
            "read" => Some(Right::Read),
            "write" => Some(Right::Write),
            "admin" => Some(Right::Admin),
            _ => None,
        }
    }
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Admin => "admin",
        }
    }
}

/// The bucket name that stands for every bucket without an entry of its own.
pub const ANY_BUCKET: &str = "*";

/// Rights by bucket name; [`ANY_BUCKET`] covers buckets not named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketRights(pub BTreeMap<String, Right>);

impl BucketRights {
    /// Full rights everywhere (the root key).
    pub fn admin_everywhere() -> Self {
        BucketRights([(ANY_BUCKET.to_string(), Right::Admin)].into())
    }
    /// The right held on `bucket`: its own entry, else the `*` entry.
    pub fn on(&self, bucket: &str) -> Option<Right> {
        self.0.get(bucket).or_else(|| self.0.get(ANY_BUCKET)).copied()
    }
    /// Fails with AccessDenied unless the key holds at least `need` on
    /// `bucket`.
    pub fn require(&self, bucket: &str, need: Right) -> Result<(), S3Error> {
        match self.on(bucket) {
            Some(r) if r >= need => Ok(()),
            _ => Err(S3Error::new(
                ErrorCode::AccessDenied,
                format!("this access key lacks the {} right on bucket {bucket:?}", need.as_str()),
            )),
        }
    }
}

/// The right an operation needs on its bucket; `None` for ListBuckets
/// (which lists only buckets the key has a right on) and for requests that
/// are refused anyway. CopyObject and UploadPartCopy also need `Read` on
/// the source bucket, checked where the source is parsed.
pub fn needed(ep: &Endpoint) -> Option<Right> {
    use Endpoint as E;
    match ep {
        E::ListBuckets | E::NotImplemented(_) | E::MethodNotAllowed => None,
        E::CreateBucket | E::DeleteBucket => Some(Right::Admin),
        E::HeadBucket
        | E::GetBucketLocation
        | E::GetBucketVersioning
        | E::ListObjectsV1
        | E::ListObjectsV2
        | E::ListObjectVersions
        | E::ListMultipartUploads
        | E::GetObject
        | E::HeadObject
        | E::ListParts => Some(Right::Read),
        E::DeleteObjects
        | E::PutObject
        | E::CopyObject
        | E::DeleteObject
        | E::CreateMultipartUpload
        | E::UploadPart
        | E::UploadPartCopy
        | E::CompleteMultipartUpload
        | E::AbortMultipartUpload => Some(Right::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_bucket_overrides_the_wildcard() {
        let r = BucketRights([("*".to_string(), Right::Read), ("data".to_string(), Right::Write)].into());
        assert_eq!(r.on("data"), Some(Right::Write));
        assert_eq!(r.on("other"), Some(Right::Read));
        assert!(r.require("other", Right::Write).is_err());
        assert!(r.require("data", Right::Write).is_ok());
        assert!(r.require("data", Right::Admin).is_err());
        let none = BucketRights([("data".to_string(), Right::Admin)].into());
        assert_eq!(none.on("other"), None);
        let e = none.require("other", Right::Read).unwrap_err();
        assert_eq!((e.code.as_str(), e.status().as_u16()), ("AccessDenied", 403));
    }

    #[test]
    fn every_operation_needs_the_right_of_its_kind() {
        assert_eq!(needed(&Endpoint::GetObject), Some(Right::Read));
        assert_eq!(needed(&Endpoint::ListObjectVersions), Some(Right::Read));
        assert_eq!(needed(&Endpoint::PutObject), Some(Right::Write));
        assert_eq!(needed(&Endpoint::DeleteBucket), Some(Right::Admin));
        assert_eq!(needed(&Endpoint::ListBuckets), None);
    }
}

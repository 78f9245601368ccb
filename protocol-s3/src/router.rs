//! Method + path + query → one [`Endpoint`] per S3 operation.

use http::Method;

/// Decoded query parameters, in order.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string; `+` is literal (S3 clients encode spaces
    /// as `%20`).
    pub fn parse(raw: Option<&str>) -> Self {
        let mut out = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            out.push((dec(k), dec(v)));
        }
        Query(out)
    }
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Every S3 operation the gateway tells apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// GET /
    ListBuckets,
    /// PUT /b
    CreateBucket,
    /// HEAD /b
    HeadBucket,
    /// DELETE /b
    DeleteBucket,
    /// GET /b?location
    GetBucketLocation,
    /// GET /b?versioning (answers "never enabled")
    GetBucketVersioning,
    /// GET /b
    ListObjectsV1,
    /// GET /b?list-type=2
    ListObjectsV2,
    /// GET /b?uploads
    ListMultipartUploads,
    /// POST /b?delete
    DeleteObjects,
    /// PUT /b/k
    PutObject,
    /// PUT /b/k with x-amz-copy-source
    CopyObject,
    /// GET /b/k
    GetObject,
    /// HEAD /b/k
    HeadObject,
    /// DELETE /b/k
    DeleteObject,
    /// POST /b/k?uploads
    CreateMultipartUpload,
    /// PUT /b/k?partNumber&uploadId
    UploadPart,
    /// PUT /b/k?partNumber&uploadId with x-amz-copy-source
    UploadPartCopy,
    /// POST /b/k?uploadId
    CompleteMultipartUpload,
    /// DELETE /b/k?uploadId
    AbortMultipartUpload,
    /// GET /b/k?uploadId
    ListParts,
    /// Anything else: answered 501 NotImplemented.
    NotImplemented(String),
    /// A method S3 does not define on this resource: 405.
    MethodNotAllowed,
}

impl Endpoint {
    /// The operation's name, without detail: a closed set (metric labels).
    pub fn name(&self) -> &'static str {
        use Endpoint as E;
        match self {
            E::ListBuckets => "ListBuckets",
            E::CreateBucket => "CreateBucket",
            E::HeadBucket => "HeadBucket",
            E::DeleteBucket => "DeleteBucket",
            E::GetBucketLocation => "GetBucketLocation",
            E::GetBucketVersioning => "GetBucketVersioning",
            E::ListObjectsV1 => "ListObjectsV1",
            E::ListObjectsV2 => "ListObjectsV2",
            E::ListMultipartUploads => "ListMultipartUploads",
            E::DeleteObjects => "DeleteObjects",
            E::PutObject => "PutObject",
            E::CopyObject => "CopyObject",
            E::GetObject => "GetObject",
            E::HeadObject => "HeadObject",
            E::DeleteObject => "DeleteObject",
            E::CreateMultipartUpload => "CreateMultipartUpload",
            E::UploadPart => "UploadPart",
            E::UploadPartCopy => "UploadPartCopy",
            E::CompleteMultipartUpload => "CompleteMultipartUpload",
            E::AbortMultipartUpload => "AbortMultipartUpload",
            E::ListParts => "ListParts",
            E::NotImplemented(_) => "NotImplemented",
            E::MethodNotAllowed => "MethodNotAllowed",
        }
    }
}

/// Sub-resources that name operations the gateway does not implement.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "acl",
    "policy",
    "policyStatus",
    "tagging",
    "cors",
    "lifecycle",
    "website",
    "logging",
    "notification",
    "replication",
    "encryption",
    "object-lock",
    "retention",
    "legal-hold",
    "requestPayment",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "ownershipControls",
    "publicAccessBlock",
    "torrent",
    "restore",
    "select",
    "attributes",
    "versions",
    "versionId",
];

/// Routes a request. `bucket` and `has_key` come from the path (or the
/// virtual host).
pub fn route(method: &Method, bucket: Option<&str>, has_key: bool, q: &Query, copy_source: bool) -> Endpoint {
    if let Some(sub) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| q.has(s)) {
        return Endpoint::NotImplemented(format!("the '{sub}' sub-resource"));
    }
    let m = method.clone();
    match (bucket, has_key) {
        (None, _) => match m {
            Method::GET => Endpoint::ListBuckets,
            _ => Endpoint::MethodNotAllowed,
        },
        (Some(_), false) => match m {
            Method::PUT => Endpoint::CreateBucket,
            Method::HEAD => Endpoint::HeadBucket,
            Method::DELETE => Endpoint::DeleteBucket,
            Method::GET if q.has("location") => Endpoint::GetBucketLocation,
            Method::GET if q.has("versioning") => Endpoint::GetBucketVersioning,
            Method::GET if q.has("uploads") => Endpoint::ListMultipartUploads,
            Method::GET if q.get("list-type") == Some("2") => Endpoint::ListObjectsV2,
            Method::GET => Endpoint::ListObjectsV1,
            Method::POST if q.has("delete") => Endpoint::DeleteObjects,
            Method::POST => Endpoint::NotImplemented("POST object uploads".into()),
            _ => Endpoint::MethodNotAllowed,
        },
        (Some(_), true) => match m {
            Method::PUT if q.has("partNumber") && q.has("uploadId") => {
                if copy_source {
                    Endpoint::UploadPartCopy
                } else {
                    Endpoint::UploadPart
                }
            }
            Method::PUT if copy_source => Endpoint::CopyObject,
            Method::PUT => Endpoint::PutObject,
            Method::GET if q.has("uploadId") => Endpoint::ListParts,
            Method::GET => Endpoint::GetObject,
            Method::HEAD => Endpoint::HeadObject,
            Method::DELETE if q.has("uploadId") => Endpoint::AbortMultipartUpload,
            Method::DELETE => Endpoint::DeleteObject,
            Method::POST if q.has("uploads") => Endpoint::CreateMultipartUpload,
            Method::POST if q.has("uploadId") => Endpoint::CompleteMultipartUpload,
            _ => Endpoint::MethodNotAllowed,
        },
    }
}

/// Splits a path-style path into (bucket, key bytes).
pub fn split_path(path: &str) -> (Option<String>, Option<Vec<u8>>) {
    let p = path.strip_prefix('/').unwrap_or(path);
    if p.is_empty() {
        return (None, None);
    }
    let (b, k) = p.split_once('/').unwrap_or((p, ""));
    let bucket = percent_encoding::percent_decode_str(b).decode_utf8_lossy().into_owned();
    let key: Vec<u8> = percent_encoding::percent_decode_str(k).collect();
    (Some(bucket), if key.is_empty() { None } else { Some(key) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: Method, path: &str, query: &str, copy: bool) -> Endpoint {
        let (b, k) = split_path(path);
        route(&m, b.as_deref(), k.is_some(), &Query::parse(Some(query)), copy)
    }

    /// Cases from the AWS API reference request syntax of each operation.
    #[test]
    fn routes() {
        assert_eq!(r(Method::GET, "/", "", false), Endpoint::ListBuckets);
        assert_eq!(r(Method::PUT, "/b", "", false), Endpoint::CreateBucket);
        assert_eq!(r(Method::GET, "/b", "list-type=2&prefix=a", false), Endpoint::ListObjectsV2);
        assert_eq!(r(Method::GET, "/b/", "", false), Endpoint::ListObjectsV1);
        assert_eq!(r(Method::GET, "/b", "location", false), Endpoint::GetBucketLocation);
        assert_eq!(r(Method::POST, "/b", "delete", false), Endpoint::DeleteObjects);
        assert_eq!(r(Method::PUT, "/b/k", "", false), Endpoint::PutObject);
        assert_eq!(r(Method::PUT, "/b/k", "", true), Endpoint::CopyObject);
        assert_eq!(r(Method::PUT, "/b/k", "partNumber=1&uploadId=x", false), Endpoint::UploadPart);
        assert_eq!(r(Method::PUT, "/b/k", "partNumber=1&uploadId=x", true), Endpoint::UploadPartCopy);
        assert_eq!(r(Method::POST, "/b/k", "uploads", false), Endpoint::CreateMultipartUpload);
        assert_eq!(r(Method::POST, "/b/k", "uploadId=x", false), Endpoint::CompleteMultipartUpload);
        assert_eq!(r(Method::DELETE, "/b/k", "uploadId=x", false), Endpoint::AbortMultipartUpload);
        assert_eq!(r(Method::GET, "/b/k", "uploadId=x", false), Endpoint::ListParts);
        assert!(matches!(r(Method::PUT, "/b", "tagging", false), Endpoint::NotImplemented(_)));
        assert!(matches!(r(Method::GET, "/b/k", "acl", false), Endpoint::NotImplemented(_)));
        assert_eq!(r(Method::PATCH, "/b/k", "", false), Endpoint::MethodNotAllowed);
    }

    #[test]
    fn paths_decode_to_exact_key_bytes() {
        assert_eq!(split_path("/b/a%20b/c%2Bd+e"), (Some("b".into()), Some(b"a b/c+d+e".to_vec())));
        assert_eq!(split_path("/b/%E2%82%AC"), (Some("b".into()), Some("€".as_bytes().to_vec())));
        assert_eq!(split_path("/b//x"), (Some("b".into()), Some(b"/x".to_vec())));
    }
}

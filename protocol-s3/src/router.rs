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
    /// GET /b?versions (every object as its one version, `null`)
    ListObjectVersions,
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
            E::ListObjectVersions => "ListObjectVersions",
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

/// A sub-resource S3 defines: its query parameter and the methods S3
/// defines it for on a bucket and on an object.
#[derive(Debug)]
pub struct SubResource {
    /// The query parameter (`versioning`, `uploadId`...).
    pub name: &'static str,
    /// Methods S3 defines on `/bucket?name`.
    pub bucket: &'static [Method],
    /// Methods S3 defines on `/bucket/key?name`.
    pub object: &'static [Method],
}

const fn sub(name: &'static str, bucket: &'static [Method], object: &'static [Method]) -> SubResource {
    SubResource { name, bucket, object }
}

const NONE: &[Method] = &[];
const G: &[Method] = &[Method::GET];
const GP: &[Method] = &[Method::GET, Method::PUT];
const GPD: &[Method] = &[Method::GET, Method::PUT, Method::DELETE];
const GOD: &[Method] = &[Method::GET, Method::POST, Method::DELETE];
const P: &[Method] = &[Method::PUT];
const O: &[Method] = &[Method::POST];

/// Every sub-resource of the S3 API reference, in routing precedence: when
/// a request names several, the first here decides. The qualifiers
/// `uploadId`, `partNumber` and `versionId` come last, so `?tagging&
/// versionId=...` is about tagging.
///
/// Invariant: a request naming any of these is routed by [`route_sub`],
/// to the operation that sub-resource names, 501 NotImplemented when S3
/// defines it but the gateway does not, or 405 when S3 does not define it
/// for that method; it never falls through to a plain bucket or object
/// operation (`PUT /b?versioning` is not CreateBucket).
pub const SUBRESOURCES: &[SubResource] = &[
    sub("abac", GP, NONE),
    sub("accelerate", GP, NONE),
    sub("acl", GP, GP),
    sub("analytics", GPD, NONE),
    sub("attributes", NONE, G),
    sub("cors", GPD, NONE),
    sub("delete", O, NONE),
    sub("encryption", GPD, NONE),
    sub("intelligent-tiering", GPD, NONE),
    sub("inventory", GPD, NONE),
    sub("legal-hold", NONE, GP),
    sub("lifecycle", GPD, NONE),
    sub("location", G, NONE),
    sub("logging", GP, NONE),
    sub("metadataConfiguration", GOD, NONE),
    sub("metadataInventoryTable", P, NONE),
    sub("metadataJournalTable", P, NONE),
    sub("metadataTable", GOD, NONE),
    sub("metrics", GPD, NONE),
    sub("notification", GP, NONE),
    sub("object-lock", GP, NONE),
    sub("ownershipControls", GPD, NONE),
    sub("policy", GPD, NONE),
    sub("policyStatus", G, NONE),
    sub("publicAccessBlock", GPD, NONE),
    sub("renameObject", NONE, P),
    sub("replication", GPD, NONE),
    sub("requestPayment", GP, NONE),
    sub("restore", NONE, O),
    sub("retention", NONE, GP),
    sub("select", NONE, O),
    sub("session", G, NONE),
    sub("tagging", GPD, GPD),
    sub("torrent", NONE, G),
    sub("uploads", G, O),
    sub("versioning", GP, NONE),
    sub("versions", G, NONE),
    sub("website", GPD, NONE),
    sub("uploadId", NONE, &[Method::GET, Method::PUT, Method::POST, Method::DELETE]),
    sub("partNumber", NONE, &[Method::GET, Method::HEAD, Method::PUT]),
    sub("versionId", NONE, &[Method::GET, Method::HEAD, Method::DELETE]),
];

/// Routes a request. `bucket` and `has_key` come from the path (or the
/// virtual host).
pub fn route(method: &Method, bucket: Option<&str>, has_key: bool, q: &Query, copy_source: bool) -> Endpoint {
    // `versionId=null` names the one version every object has (buckets
    // are never versioned): a plain read or delete of the object.
    let null_version =
        has_key && matches!(*method, Method::GET | Method::HEAD | Method::DELETE) && q.get("versionId") == Some("null");
    let sub = SUBRESOURCES.iter().find(|s| q.has(s.name) && !(null_version && s.name == "versionId"));
    let m = method.clone();
    match (bucket, sub) {
        // The service itself has no sub-resources.
        (None, Some(_)) => Endpoint::MethodNotAllowed,
        (None, None) => match m {
            Method::GET => Endpoint::ListBuckets,
            _ => Endpoint::MethodNotAllowed,
        },
        (Some(_), Some(s)) => route_sub(s, method, has_key, q, copy_source),
        (Some(_), None) if !has_key => match m {
            Method::PUT => Endpoint::CreateBucket,
            Method::HEAD => Endpoint::HeadBucket,
            Method::DELETE => Endpoint::DeleteBucket,
            Method::GET if q.get("list-type") == Some("2") => Endpoint::ListObjectsV2,
            Method::GET => Endpoint::ListObjectsV1,
            Method::POST => Endpoint::NotImplemented("POST object uploads".into()),
            _ => Endpoint::MethodNotAllowed,
        },
        (Some(_), None) => match m {
            Method::PUT if copy_source => Endpoint::CopyObject,
            Method::PUT => Endpoint::PutObject,
            Method::GET => Endpoint::GetObject,
            Method::HEAD => Endpoint::HeadObject,
            Method::DELETE => Endpoint::DeleteObject,
            _ => Endpoint::MethodNotAllowed,
        },
    }
}

/// Routes a request that names sub-resource `s` (see [`SUBRESOURCES`]).
fn route_sub(s: &SubResource, method: &Method, has_key: bool, q: &Query, copy_source: bool) -> Endpoint {
    let defined = if has_key { s.object } else { s.bucket };
    if !defined.contains(method) {
        return Endpoint::MethodNotAllowed;
    }
    let m = method.clone();
    match (s.name, has_key, m) {
        ("location", false, Method::GET) => Endpoint::GetBucketLocation,
        ("versioning", false, Method::GET) => Endpoint::GetBucketVersioning,
        ("versions", false, Method::GET) => Endpoint::ListObjectVersions,
        ("uploads", false, Method::GET) => Endpoint::ListMultipartUploads,
        ("delete", false, Method::POST) => Endpoint::DeleteObjects,
        ("uploads", true, Method::POST) => Endpoint::CreateMultipartUpload,
        ("uploadId", true, Method::GET) => Endpoint::ListParts,
        ("uploadId", true, Method::POST) => Endpoint::CompleteMultipartUpload,
        ("uploadId", true, Method::DELETE) => Endpoint::AbortMultipartUpload,
        ("uploadId", true, Method::PUT) if q.has("partNumber") => {
            if copy_source {
                Endpoint::UploadPartCopy
            } else {
                Endpoint::UploadPart
            }
        }
        // A part without its upload, or an upload without its part.
        ("uploadId" | "partNumber", true, Method::PUT) => Endpoint::MethodNotAllowed,
        ("partNumber", true, Method::GET) => Endpoint::GetObject,
        ("partNumber", true, Method::HEAD) => Endpoint::HeadObject,
        (name, _, m) => Endpoint::NotImplemented(format!("{m} with the '{name}' sub-resource")),
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

    /// Every sub-resource with every method, on a bucket and on an object:
    /// the operation it names, 501 when S3 defines it but the gateway
    /// does not, 405 when S3 does not define it; never a plain operation
    /// (the bug: `PUT /b?versioning` was CreateBucket).
    #[test]
    fn sub_resources_never_fall_through() {
        use Endpoint as E;
        let methods = [Method::GET, Method::PUT, Method::POST, Method::DELETE, Method::HEAD, Method::PATCH];
        // (sub-resource, on an object, method) -> the operation, for each
        // combination the gateway serves (from the AWS API reference); the
        // others S3 defines are 501, the rest 405.
        let served: &[(&str, bool, Method, Endpoint)] = &[
            ("location", false, Method::GET, E::GetBucketLocation),
            ("versioning", false, Method::GET, E::GetBucketVersioning),
            ("versions", false, Method::GET, E::ListObjectVersions),
            ("uploads", false, Method::GET, E::ListMultipartUploads),
            ("delete", false, Method::POST, E::DeleteObjects),
            ("uploads", true, Method::POST, E::CreateMultipartUpload),
            ("uploadId", true, Method::GET, E::ListParts),
            ("uploadId", true, Method::POST, E::CompleteMultipartUpload),
            ("uploadId", true, Method::DELETE, E::AbortMultipartUpload),
            // A part needs both; see the UploadPart rows below.
            ("uploadId", true, Method::PUT, E::MethodNotAllowed),
            ("partNumber", true, Method::PUT, E::MethodNotAllowed),
            ("partNumber", true, Method::GET, E::GetObject),
            ("partNumber", true, Method::HEAD, E::HeadObject),
        ];
        let names: Vec<&str> = SUBRESOURCES.iter().map(|s| s.name).collect();
        for expected in [
            "abac",
            "accelerate",
            "acl",
            "analytics",
            "attributes",
            "cors",
            "delete",
            "encryption",
            "intelligent-tiering",
            "inventory",
            "legal-hold",
            "lifecycle",
            "location",
            "logging",
            "metadataConfiguration",
            "metadataInventoryTable",
            "metadataJournalTable",
            "metadataTable",
            "metrics",
            "notification",
            "object-lock",
            "ownershipControls",
            "policy",
            "policyStatus",
            "publicAccessBlock",
            "renameObject",
            "replication",
            "requestPayment",
            "restore",
            "retention",
            "select",
            "session",
            "tagging",
            "torrent",
            "uploads",
            "versioning",
            "versions",
            "website",
            "uploadId",
            "partNumber",
            "versionId",
        ] {
            assert!(names.contains(&expected), "{expected} is in the table");
        }
        assert_eq!(names.len(), 41, "every name is listed above");
        let mut checked = 0;
        for s in SUBRESOURCES {
            for on_object in [false, true] {
                let path = if on_object { "/b/k" } else { "/b" };
                let defined = if on_object { s.object } else { s.bucket };
                for m in &methods {
                    for copy in [false, true] {
                        let query = format!("{}=1", s.name);
                        let got = r(m.clone(), path, &query, copy);
                        let what = format!("{m} {path}?{query} copy={copy}: {got:?}");
                        match served.iter().find(|row| row.0 == s.name && row.1 == on_object && row.2 == *m) {
                            Some(row) => assert_eq!(got, row.3, "{what}"),
                            None if defined.contains(m) => assert!(matches!(got, E::NotImplemented(_)), "{what}"),
                            None => assert_eq!(got, E::MethodNotAllowed, "{what}"),
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 41 * 2 * 6 * 2);
        assert_eq!(r(Method::PUT, "/b/k", "partNumber=2&uploadId=x", false), E::UploadPart);
        assert_eq!(r(Method::PUT, "/b/k", "uploadId=x&partNumber=2", true), E::UploadPartCopy);
        // The rows of the issue, and qualifiers next to other sub-resources.
        assert!(matches!(r(Method::PUT, "/b", "versioning", false), E::NotImplemented(_)));
        assert!(matches!(r(Method::GET, "/b/k", "tagging&versionId=abc", false), E::NotImplemented(_)));
        assert!(matches!(r(Method::GET, "/b/k", "versionId=abc", false), E::NotImplemented(_)));
        assert_eq!(r(Method::GET, "/b/k", "versionId=null", false), E::GetObject);
        assert_eq!(r(Method::DELETE, "/b/k", "versionId=null", false), E::DeleteObject);
        assert_eq!(r(Method::PUT, "/b/k", "versionId=null", false), E::MethodNotAllowed);
        assert_eq!(r(Method::GET, "/", "acl", false), E::MethodNotAllowed);
        assert_eq!(r(Method::GET, "/b", "versions&prefix=a&encoding-type=url", false), E::ListObjectVersions);
        // Ordinary parameters are not sub-resources.
        assert_eq!(r(Method::PUT, "/b/k", "x-id=PutObject", false), E::PutObject);
        assert_eq!(r(Method::GET, "/b", "prefix=a&max-keys=2&encoding-type=url", false), E::ListObjectsV1);
    }

    #[test]
    fn paths_decode_to_exact_key_bytes() {
        assert_eq!(split_path("/b/a%20b/c%2Bd+e"), (Some("b".into()), Some(b"a b/c+d+e".to_vec())));
        assert_eq!(split_path("/b/%E2%82%AC"), (Some("b".into()), Some("€".as_bytes().to_vec())));
        assert_eq!(split_path("/b//x"), (Some("b".into()), Some(b"/x".to_vec())));
    }
}

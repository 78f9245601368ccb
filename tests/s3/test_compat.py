"""S3 compatibility fixes of round 2, each as S3 documents it: 416 with the
object size, sub-resources that never fall through to another operation,
ListObjectVersions, keys URL-encoded only when asked, aws-chunked only
with a STREAMING-* payload, partNumber past the count, paginated
ListBuckets, a part uploaded again, and checksum mismatches."""

import base64
import hashlib
import http.client
import ssl
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.handlers
import pytest

from s3util import (
    MIB,
    REGION,
    checksum_b64,
    botocore_supports_checksum,
    expect_error,
    last_raw_response,
    multipart_etag,
    object_exists,
    quoted_md5,
    random_bytes,
    unique_bucket_name,
)

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def signed_request(gw, method, path, query="", headers=None, body=b"", content_sha=None):
    """A SigV4-signed request built by hand (botocore signs it), for what
    boto3 will not send. Returns (status, lower-cased headers, body)."""
    url = f"{gw.url}{path}" + (f"?{query}" if query else "")
    headers = dict(headers or {})
    headers["x-amz-content-sha256"] = content_sha or hashlib.sha256(body).hexdigest()
    req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers, data=body)
    creds = botocore.credentials.Credentials(gw.access_key, gw.secret_key)
    # SigV4Auth (not S3SigV4Auth, which replaces x-amz-content-sha256)
    # signs the payload hash given here.
    botocore.auth.SigV4Auth(creds, "s3", REGION).add_auth(req)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        ctx = ssl.create_default_context(cafile=gw.ca_path)
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=ctx)
    else:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for k, v in req.headers.items():
        conn.putheader(k, v)
    conn.putheader("Host", parsed.netloc)
    if "content-length" not in {k.lower() for k in req.headers}:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    if body:
        conn.send(body)
    resp = conn.getresponse()
    out = (resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    conn.close()
    return out


def error_fields(body: bytes) -> dict:
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {c.tag: (c.text or "") for c in root}


# ------------------------------------------------------------ 1. 416 with the size


def test_ranged_get_of_empty_object_is_416_with_size(s3, bucket):
    """s3torchconnector's CRT reader asks bytes=0-8388607 first; on an empty
    object S3 answers 416 with Content-Range bytes */0 and the size and the
    range asked for in the error document (the reader then knows the
    object is empty)."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    expect_error(
        s3, "get_object", code="InvalidRange", status=416, Bucket=bucket, Key="empty", Range="bytes=0-8388607"
    )
    raw = last_raw_response()
    assert raw["headers"].get("content-range") == "bytes */0"
    fields = error_fields(raw["body"])
    assert fields["Code"] == "InvalidRange"
    assert fields["ActualObjectSize"] == "0"
    assert fields["RangeRequested"] == "bytes=0-8388607"
    # The object itself reads fine without a range.
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_any_unsatisfiable_range_tells_the_size(s3, bucket, header):
    s3.put_object(Bucket=bucket, Key="hundred", Body=bytes(100))
    expect_error(s3, "get_object", code="InvalidRange", status=416, Bucket=bucket, Key="hundred", Range=header)
    raw = last_raw_response()
    assert raw["headers"].get("content-range") == "bytes */100"
    fields = error_fields(raw["body"])
    assert (fields["ActualObjectSize"], fields["RangeRequested"]) == ("100", header)


def test_head_with_unsatisfiable_range_has_content_range(gw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    status, headers, body = signed_request(gw, "HEAD", f"/{bucket}/empty", headers={"Range": "bytes=0-10"})
    assert status == 416
    assert headers.get("content-range") == "bytes */0"
    assert body == b""


# ------------------------------------------------------------ 2. sub-resources


@pytest.mark.parametrize(
    "method, on_object, sub",
    [
        ("PUT", False, "versioning"),
        ("PUT", False, "acl"),
        ("PUT", False, "cors"),
        ("DELETE", False, "cors"),
        ("PUT", False, "lifecycle"),
        ("DELETE", False, "policy"),
        ("GET", False, "policyStatus"),
        ("PUT", False, "object-lock"),
        ("PUT", False, "ownershipControls"),
        ("DELETE", False, "publicAccessBlock"),
        ("PUT", False, "requestPayment"),
        ("GET", False, "intelligent-tiering"),
        ("GET", False, "metrics"),
        ("GET", False, "session"),
        ("PUT", True, "acl"),
        ("PUT", True, "tagging"),
        ("DELETE", True, "tagging"),
        ("GET", True, "attributes"),
        ("PUT", True, "legal-hold"),
        ("PUT", True, "retention"),
        ("GET", True, "torrent"),
        ("POST", True, "restore"),
        ("POST", True, "select"),
        ("GET", True, "versionId=3HL4kqtJlcpXroDTDmJ"),
    ],
)
def test_sub_resources_are_501_and_change_nothing(gw, s3, bucket, method, on_object, sub):
    """A sub-resource the gateway does not implement is 501 NotImplemented
    as XML; it never runs the plain bucket or object operation (PUT
    /b?versioning was CreateBucket, 409; PUT /b/k?acl would have
    overwritten the object)."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"keep me")
    path = f"/{bucket}/k" if on_object else f"/{bucket}"
    body = b"<x/>" if method in ("PUT", "POST") else b""
    status, headers, got = signed_request(gw, method, path, sub, body=body)
    assert status == 501, (status, got)
    assert error_fields(got)["Code"] == "NotImplemented"
    assert headers.get("x-amz-request-id")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep me"
    s3.head_bucket(Bucket=bucket)


def test_put_bucket_versioning_is_not_implemented(s3, bucket):
    """The issue's case through boto3: not 409 BucketAlreadyOwnedByYou."""
    expect_error(
        s3, "put_bucket_versioning", code="NotImplemented", status=501,
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"},
    )
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None


@pytest.mark.parametrize(
    "method, on_object, sub",
    [("POST", False, "versioning"), ("DELETE", False, "versions"), ("GET", True, "uploads"), ("PUT", True, "partNumber=1")],
)
def test_sub_resource_with_a_method_s3_does_not_define_is_405(gw, s3, bucket, method, on_object, sub):
    s3.put_object(Bucket=bucket, Key="k", Body=b"keep me")
    path = f"/{bucket}/k" if on_object else f"/{bucket}"
    status, _, got = signed_request(gw, method, path, sub, body=b"x" if method == "PUT" else b"")
    assert status == 405, (status, got)
    assert error_fields(got)["Code"] == "MethodNotAllowed"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"keep me"


def test_version_id_null_reads_and_deletes_the_object(s3, bucket):
    """Every object's one version is `null`: GET/HEAD/DELETE with
    VersionId=null act on the object."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"v"
    assert s3.head_object(Bucket=bucket, Key="k", VersionId="null")["ContentLength"] == 1
    s3.delete_object(Bucket=bucket, Key="k", VersionId="null")
    assert not object_exists(s3, bucket, "k")


# ------------------------------------------------------------ 3. ListObjectVersions


def versions_of(resp):
    return [(v["Key"], v["VersionId"], v["IsLatest"]) for v in resp.get("Versions", [])]


def test_list_object_versions_lists_every_object_as_null(s3, bucket):
    keys = ["a", "b+c", "dir/x", "dir/y", "e f", "z"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    resp = s3.list_object_versions(Bucket=bucket)
    assert versions_of(resp) == [(k, "null", True) for k in keys]
    assert resp["IsTruncated"] is False
    assert "DeleteMarkers" not in resp
    first = resp["Versions"][0]
    assert first["ETag"] == quoted_md5(b"a") and first["Size"] == 1 and first["LastModified"]

    resp = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [k for k, _, _ in versions_of(resp)] == ["a", "b+c", "e f", "z"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/"]

    resp = s3.list_object_versions(Bucket=bucket, Prefix="dir/")
    assert [k for k, _, _ in versions_of(resp)] == ["dir/x", "dir/y"]
    assert resp["Prefix"] == "dir/"


def test_list_object_versions_pages_with_markers(s3, bucket):
    keys = [f"k{i:02}" for i in range(7)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.list_object_versions(Bucket=bucket, MaxKeys=3)
    assert [k for k, _, _ in versions_of(resp)] == keys[:3]
    assert resp["IsTruncated"] is True
    assert (resp["NextKeyMarker"], resp["NextVersionIdMarker"]) == ("k02", "null")
    resp = s3.list_object_versions(
        Bucket=bucket, MaxKeys=3, KeyMarker=resp["NextKeyMarker"], VersionIdMarker=resp["NextVersionIdMarker"]
    )
    assert [k for k, _, _ in versions_of(resp)] == keys[3:6]
    assert resp["KeyMarker"] == "k02"
    walked = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        walked += [k for k, _, _ in versions_of(page)]
    assert walked == keys
    resp = s3.list_object_versions(Bucket=bucket, KeyMarker="k05")
    assert [k for k, _, _ in versions_of(resp)] == ["k06"]
    assert "NextKeyMarker" not in resp


def test_list_object_versions_url_encoding(s3, bucket):
    """boto3 asks for encoding-type=url and decodes; with it passed
    explicitly the raw answer is URL-encoded."""
    keys = ["a+b", "c d", "e%f", "nl\nkey"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    assert [k for k, _, _ in versions_of(s3.list_object_versions(Bucket=bucket))] == sorted(keys)
    raw = s3.list_object_versions(Bucket=bucket, EncodingType="url")
    assert raw["EncodingType"] == "url"
    assert [v["Key"] for v in raw["Versions"]] == ["a%2Bb", "c%20d", "e%25f", "nl%0Akey"]


def test_list_object_versions_errors(s3, bucket):
    expect_error(s3, "list_object_versions", code="NoSuchBucket", status=404, Bucket=unique_bucket_name("missing"))
    expect_error(s3, "list_object_versions", code="InvalidArgument", status=400, Bucket=bucket, VersionIdMarker="null")
    expect_error(
        s3, "list_object_versions", code="InvalidArgument", status=400,
        Bucket=bucket, KeyMarker="a", VersionIdMarker="3HL4kqtJlcpXroDTDmJ",
    )


# ------------------------------------------------------------ 4. encode only when asked

ODD_KEYS = ["line\nbreak", "cr\rkey", "amp&<lt>", "plus+sign", "100%"]


def unregister_auto_encoding(client):
    for op in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        client.meta.events.unregister(
            f"before-parameter-build.s3.{op}", botocore.handlers.set_list_objects_encoding_type_url
        )


def test_listings_without_encoding_type_are_xml_escaped_not_url_encoded(s3, bucket):
    """Without encoding-type=url the keys come back as they are (XML-escaped,
    CR included), not %0A."""
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    unregister_auto_encoding(s3)
    want = sorted(ODD_KEYS, key=lambda k: k.encode())
    v2 = s3.list_objects_v2(Bucket=bucket)
    assert "EncodingType" not in v2
    assert [o["Key"] for o in v2["Contents"]] == want
    v1 = s3.list_objects(Bucket=bucket)
    assert [o["Key"] for o in v1["Contents"]] == want
    versions = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in versions["Versions"]] == want
    raw = last_raw_response()["body"]
    assert b"%0A" not in raw and b"&#10;" in raw and b"&#13;" in raw


def test_list_multipart_uploads_encodes_only_when_asked(s3, bucket):
    ids = {k: s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in ODD_KEYS}
    want = sorted(ODD_KEYS, key=lambda k: k.encode())
    plain = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["Key"] for u in plain["Uploads"]] == want
    assert "EncodingType" not in plain
    encoded = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url")
    assert encoded["EncodingType"] == "url"
    assert [urllib.parse.unquote(u["Key"]) for u in encoded["Uploads"]] == want
    assert "line%0Abreak" in [u["Key"] for u in encoded["Uploads"]]
    parts = s3.list_parts(Bucket=bucket, Key="line\nbreak", UploadId=ids["line\nbreak"])
    assert parts["Key"] == "line\nbreak"
    for k, upload_id in ids.items():
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=upload_id)
    expect_error(s3, "list_multipart_uploads", code="InvalidArgument", status=400, Bucket=bucket, EncodingType="b64")


# ------------------------------------------------------------ 5. aws-chunked only with STREAMING-*


@pytest.mark.parametrize("payload", ["hex", "UNSIGNED-PAYLOAD"])
def test_content_encoding_aws_chunked_with_plain_payload_is_a_plain_body(gw, s3, bucket, payload):
    """Only the STREAMING-* payload hashes mean an aws-chunked body; with a
    hex hash or UNSIGNED-PAYLOAD the body is the object (and aws-chunked is
    not stored as its encoding)."""
    body = b"plain bytes, not chunk framing"
    sha = None if payload == "hex" else payload
    status, _, got = signed_request(
        gw, "PUT", f"/{bucket}/plain", headers={"Content-Encoding": "aws-chunked"}, body=body, content_sha=sha
    )
    assert status == 200, got
    obj = s3.get_object(Bucket=bucket, Key="plain")
    assert obj["Body"].read() == body
    assert obj.get("ContentEncoding") in (None, "")
    status, _, got = signed_request(
        gw, "PUT", f"/{bucket}/gz", headers={"Content-Encoding": "gzip, aws-chunked"}, body=body, content_sha=sha
    )
    assert status == 200, got
    assert s3.get_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"


def test_streaming_payload_without_decoded_length_is_missing_content_length(gw, bucket):
    """The error path: a STREAMING-* body must say its decoded length."""
    status, _, got = signed_request(
        gw, "PUT", f"/{bucket}/chunked", headers={"Content-Encoding": "aws-chunked"},
        body=b"5\r\nhello\r\n0\r\n\r\n", content_sha="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    assert status == 411, got
    assert error_fields(got)["Code"] == "MissingContentLength"


# ------------------------------------------------------------ 6. partNumber past the count


def test_get_part_number_past_the_count_is_400_invalid_part_number(s3, bucket):
    s3.put_object(Bucket=bucket, Key="single", Body=b"one piece")
    got = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert got["Body"].read() == b"one piece"
    expect_error(s3, "get_object", code="InvalidPartNumber", status=400, Bucket=bucket, Key="single", PartNumber=2)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"p1")["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )
    expect_error(s3, "get_object", code="InvalidPartNumber", status=400, Bucket=bucket, Key="mp", PartNumber=2)
    expect_error(s3, "head_object", code=("InvalidPartNumber", "400"), status=400, Bucket=bucket, Key="mp", PartNumber=3)


# ------------------------------------------------------------ 7. paginated ListBuckets


def test_list_buckets_pages_with_max_buckets_token_and_prefix(s3, bucket_factory):
    hint = unique_bucket_name("lb")[2:10]
    made = sorted(bucket_factory(f"lb {hint} {i}") for i in range(5))
    prefix = made[0][: made[0].index(hint) + len(hint)]
    assert all(b.startswith(prefix) for b in made)
    first = s3.list_buckets(Prefix=prefix, MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == made[:2]
    assert first["Prefix"] == prefix
    token = first["ContinuationToken"]
    second = s3.list_buckets(Prefix=prefix, MaxBuckets=2, ContinuationToken=token)
    assert [b["Name"] for b in second["Buckets"]] == made[2:4]
    third = s3.list_buckets(Prefix=prefix, MaxBuckets=2, ContinuationToken=second["ContinuationToken"])
    assert [b["Name"] for b in third["Buckets"]] == made[4:]
    assert "ContinuationToken" not in third
    walked = []
    for page in s3.get_paginator("list_buckets").paginate(Prefix=prefix, PaginationConfig={"PageSize": 3}):
        walked += [b["Name"] for b in page["Buckets"]]
    assert walked == made
    everything = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert set(made) <= set(everything) and everything == sorted(everything)
    assert s3.list_buckets(Prefix=prefix + "-nothing")["Buckets"] == []


@pytest.mark.parametrize("params", [{"MaxBuckets": 10001}, {"ContinuationToken": "%%%"}])
def test_list_buckets_bad_page_parameters_are_invalid_argument(s3, params):
    expect_error(s3, "list_buckets", code="InvalidArgument", status=400, **params)


@pytest.mark.parametrize("query", ["max-buckets=0", "max-buckets=x", "max-buckets=-1"])
def test_list_buckets_max_buckets_out_of_range_by_hand(gw, query):
    """botocore refuses MaxBuckets=0 itself; sent by hand it is InvalidArgument."""
    status, _, got = signed_request(gw, "GET", "/", query)
    assert status == 400, got
    assert error_fields(got)["Code"] == "InvalidArgument"


# ------------------------------------------------------------ 8. a part uploaded again


def test_part_uploaded_again_after_the_others_last_upload_wins(s3, bucket):
    """Part 1 is sent again after parts 2..n finished; a client that records
    every upload as it finishes lists part 1 twice (sorted by part number,
    in the order they finished). The last upload wins; a descending list is
    still InvalidPartOrder."""
    key = "again.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    old, new, p2 = (random_bytes(5 * MIB, seed=s) for s in (71, 72, 73))
    p3 = b"tail"
    done = []
    for n, data in ((1, old), (2, p2), (3, p3), (1, new)):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        done.append({"PartNumber": n, "ETag": etag})
    expect_error(
        s3, "complete_multipart_upload", code="InvalidPartOrder", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done},
    )
    ordered = sorted(done, key=lambda p: p["PartNumber"])  # stable: old 1, new 1, 2, 3
    resp = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": ordered})
    assert resp["ETag"] == multipart_etag([new, p2, p3])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == new + p2 + p3


# ------------------------------------------------------------ 9. checksum mismatch is BadDigest


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_wrong_checksum_value_is_bad_digest(s3, bucket, algorithm):
    if algorithm in ("CRC32C", "CRC64NVME") and not botocore_supports_checksum(algorithm):
        pytest.skip(f"botocore cannot send {algorithm} without awscrt")
    body = b"the body that was sent"
    wrong = checksum_b64(algorithm, b"some other body")
    expect_error(
        s3, "put_object", code="BadDigest", status=400,
        Bucket=bucket, Key="obj", Body=body, **{f"Checksum{algorithm}": wrong},
    )
    assert not object_exists(s3, bucket, "obj")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm=algorithm)["UploadId"]
    expect_error(
        s3, "upload_part", code="BadDigest", status=400,
        Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=body,
        **{f"Checksum{algorithm}": wrong},
    )
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    # The matching value is accepted.
    right = checksum_b64(algorithm, body)
    s3.put_object(Bucket=bucket, Key="obj", Body=body, **{f"Checksum{algorithm}": right})
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == body


@pytest.mark.parametrize("algorithm", ["crc32", "sha256"])
def test_wrong_checksum_value_by_hand_is_bad_digest(gw, bucket, algorithm):
    """The same with the header sent by hand (no SDK checksum logic)."""
    body = b"hand made"
    wrong = checksum_b64(algorithm.upper(), b"not it")
    status, _, got = signed_request(gw, "PUT", f"/{bucket}/obj", headers={f"x-amz-checksum-{algorithm}": wrong}, body=body)
    assert status == 400, got
    assert error_fields(got)["Code"] == "BadDigest"

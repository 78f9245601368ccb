"""Signature Version 2: presigned `AWSAccessKeyId`/`Expires`/`Signature`
URLs (what boto3's `generate_presigned_url` makes with a default client)
and `Authorization: AWS key:signature` headers (`signature_version="s3"`),
with the same rights and POSIX checks as SigV4."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
from botocore.exceptions import ClientError

from s3util import (
    REGION,
    Gateway,
    assert_error,
    assert_error_xml,
    http_request,
    make_client,
    random_bytes,
    start_gateway,
)

USERS_TOML = """
s3_file_mode = 0o644
s3_dir_mode = 0o755
[[user]]
name = "alice"
access_key = "ALICEKEY"
secret_key = "alice-secret-0001"
uid = 1000
gid = 1000
buckets = { "*" = "admin" }
[[user]]
name = "bob"
access_key = "BOBKEY"
secret_key = "bob-secret-0001"
uid = 1001
gid = 1001
buckets = { "*" = "write" }
[[user]]
name = "reader"
access_key = "READERKEY"
secret_key = "reader-secret-01"
uid = 1002
gid = 1002
buckets = { "*" = "read" }
[[user]]
name = "narrow"
access_key = "NARROWKEY"
secret_key = "narrow-secret-01"
uid = 1000
gid = 1000
buckets = { "narrow-only" = "write" }
"""


def presign(client, op: str, bucket: str, key: str, expires: int = 300, **params) -> str:
    return client.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=expires)


def assert_sigv2_url(url: str) -> None:
    q = parse_qs(urlsplit(url).query)
    assert {"AWSAccessKeyId", "Signature", "Expires"} <= set(q), url
    assert "X-Amz-Signature" not in q, url


@pytest.fixture
def v2(gw):
    """A client that signs headers with SigV2 (and presigns with it)."""
    return make_client(gw, signature_version="s3")


# ------------------------------------------------------------ presigned URLs


def test_default_client_presigns_with_sigv2_and_get_works(gw, s3, bucket):
    """A default-config client's presigned GET is SigV2 and verifies."""
    body = random_bytes(70_000, seed=21)
    s3.put_object(Bucket=bucket, Key="shared/file.bin", Body=body)
    url = presign(make_client(gw), "get_object", bucket, "shared/file.bin")
    assert_sigv2_url(url)
    resp = http_request(gw, url)
    assert resp.status == 200, resp.body
    assert resp.body == body


def test_presigned_get_of_odd_key_and_response_override(gw, s3, bucket):
    """Encoded characters in the key and a signed response-* sub-resource."""
    key = "dir with space/ü+plus%.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    url = presign(make_client(gw), "get_object", bucket, key, ResponseContentType="text/x-odd")
    assert_sigv2_url(url)
    resp = http_request(gw, url)
    assert resp.status == 200, resp.body
    assert resp.body == b"odd"
    assert resp.headers["content-type"] == "text/x-odd"


def test_presigned_put_and_head(gw, s3, bucket):
    """A presigned PUT (Content-Type is signed in SigV2, so it is presigned
    and sent alike) stores the bytes; a presigned HEAD sees them."""
    client = make_client(gw)
    body = random_bytes(40_000, seed=22)
    url = presign(client, "put_object", bucket, "up/by-url.bin", ContentType="application/octet-stream")
    assert_sigv2_url(url)
    resp = http_request(gw, url, method="PUT", data=body, headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200, resp.body
    assert s3.get_object(Bucket=bucket, Key="up/by-url.bin")["Body"].read() == body
    head = http_request(gw, presign(client, "head_object", bucket, "up/by-url.bin"), method="HEAD")
    assert head.status == 200
    assert int(head.headers["content-length"]) == len(body)
    assert head.headers["etag"] == resp.headers["etag"]


def test_presigned_put_with_another_content_type_is_refused(gw, s3, bucket):
    url = presign(make_client(gw), "put_object", bucket, "k", ContentType="text/plain")
    resp = http_request(gw, url, method="PUT", data=b"x", headers={"Content-Type": "image/png"})
    assert resp.status == 403
    assert_error_xml(resp.body, "SignatureDoesNotMatch")


def test_expired_presigned_url_is_refused(gw, s3, bucket):
    """An Expires in the past answers 403 AccessDenied (no sleeping: the URL
    is made already expired)."""
    s3.put_object(Bucket=bucket, Key="brief", Body=b"x")
    url = presign(make_client(gw), "get_object", bucket, "brief", expires=-60)
    assert_sigv2_url(url)
    resp = http_request(gw, url)
    assert resp.status == 403
    err = assert_error_xml(resp.body, "AccessDenied")
    assert "expired" in err.findtext("Message", "").lower()


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    q.update(changes)
    return urlunsplit(parts._replace(query=urlencode(q)))


def test_tampered_presigned_url_is_refused(gw, s3, bucket):
    """A changed signature, expiry or key answers 403 SignatureDoesNotMatch;
    an unknown key InvalidAccessKeyId."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = presign(make_client(gw), "get_object", bucket, "a")
    sig = parse_qs(urlsplit(url).query)["Signature"][0]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    for bad in (
        _with_query(url, Signature=flipped),
        _with_query(url, Expires=str(int(parse_qs(urlsplit(url).query)["Expires"][0]) + 10)),
        url.replace(f"/{bucket}/a?", f"/{bucket}/b?"),
    ):
        resp = http_request(gw, bad)
        assert resp.status == 403, bad
        assert_error_xml(resp.body, "SignatureDoesNotMatch")
    resp = http_request(gw, _with_query(url, AWSAccessKeyId="NOSUCHKEY"))
    assert resp.status == 403
    assert_error_xml(resp.body, "InvalidAccessKeyId")


# ------------------------------------------------------------ header auth


def test_header_signed_client_round_trip(v2, gw):
    """signature_version="s3": create a bucket, put, get, list (v1, v2),
    delete, delete the bucket."""
    name = f"sigv2-rt-{gw.scheme}"
    v2.create_bucket(Bucket=name)
    try:
        body = random_bytes(30_000, seed=23)
        v2.put_object(Bucket=name, Key="dir/one.bin", Body=body, Metadata={"who": "v2"})
        v2.put_object(Bucket=name, Key="two words+plus.txt", Body=b"two", ContentType="text/plain")
        got = v2.get_object(Bucket=name, Key="dir/one.bin")
        assert got["Body"].read() == body
        assert got["Metadata"] == {"who": "v2"}
        assert v2.get_object(Bucket=name, Key="dir/one.bin", Range="bytes=0-9")["Body"].read() == body[:10]
        assert v2.head_object(Bucket=name, Key="two words+plus.txt")["ContentType"] == "text/plain"
        keys = [o["Key"] for o in v2.list_objects_v2(Bucket=name)["Contents"]]
        assert keys == ["dir/one.bin", "two words+plus.txt"]
        v1 = v2.list_objects(Bucket=name, Delimiter="/")
        assert [p["Prefix"] for p in v1["CommonPrefixes"]] == ["dir/"]
        assert name in [b["Name"] for b in v2.list_buckets()["Buckets"]]
        assert v2.get_bucket_location(Bucket=name)["LocationConstraint"] in (None, "", REGION)
        v2.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "two words+plus.txt"}]})
        v2.delete_object(Bucket=name, Key="dir/one.bin")
        assert v2.list_objects_v2(Bucket=name)["KeyCount"] == 0
    finally:
        for o in v2.list_objects_v2(Bucket=name).get("Contents", []):
            v2.delete_object(Bucket=name, Key=o["Key"])
        v2.delete_bucket(Bucket=name)


def test_header_signed_multipart(v2, bucket):
    """uploads/uploadId/partNumber are signed sub-resources."""
    part = random_bytes(5 * 1024 * 1024, seed=24)
    up = v2.create_multipart_upload(Bucket=bucket, Key="mp.bin")
    e1 = v2.upload_part(Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"], PartNumber=1, Body=part)["ETag"]
    e2 = v2.upload_part(Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"tail")["ETag"]
    assert len(v2.list_parts(Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"])["Parts"]) == 2
    v2.complete_multipart_upload(
        Bucket=bucket, Key="mp.bin", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
    )
    assert v2.head_object(Bucket=bucket, Key="mp.bin")["ContentLength"] == len(part) + 4


def test_header_signed_wrong_secret_and_unknown_key(gw, bucket):
    bad = make_client(gw, secret_key="wrong-secret", signature_version="s3")
    with pytest.raises(ClientError) as ei:
        bad.list_objects_v2(Bucket=bucket)
    assert_error(ei.value, "SignatureDoesNotMatch", 403)
    nobody = make_client(gw, access_key="NOSUCHKEY", signature_version="s3")
    with pytest.raises(ClientError) as ei:
        nobody.list_objects_v2(Bucket=bucket)
    assert_error(ei.value, "InvalidAccessKeyId", 403)


# ------------------------------------------------------------ rights and POSIX


@pytest.fixture(scope="module")
def users_gw(tmp_path_factory) -> Gateway:
    base = tmp_path_factory.mktemp("sigv2-users")
    cfg = base / "gateway.toml"
    cfg.write_text(USERS_TOML)
    gw = start_gateway(base / "data", base / "gateway.log", extra_args=["--config", str(cfg)])
    yield gw
    gw.stop()


def _code(e: ClientError) -> tuple[str, int]:
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def test_sigv2_keys_get_the_same_rights_and_posix_checks(users_gw):
    """Bucket rights and the mapped user's POSIX permissions apply to SigV2
    exactly as to SigV4, header-signed and presigned."""
    alice = make_client(users_gw, "ALICEKEY", "alice-secret-0001", signature_version="s3")
    bob = make_client(users_gw, "BOBKEY", "bob-secret-0001", signature_version="s3")
    reader = make_client(users_gw, "READERKEY", "reader-secret-01", signature_version="s3")
    narrow = make_client(users_gw, "NARROWKEY", "narrow-secret-01", signature_version="s3")
    alice.create_bucket(Bucket="v2-rights")
    alice.put_object(Bucket="v2-rights", Key="dir/a.txt", Body=b"alice's")
    # Rights: the reader reads but cannot write; narrow has no right here.
    assert reader.get_object(Bucket="v2-rights", Key="dir/a.txt")["Body"].read() == b"alice's"
    with pytest.raises(ClientError) as ei:
        reader.put_object(Bucket="v2-rights", Key="r.txt", Body=b"r")
    assert _code(ei.value) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as ei:
        narrow.list_objects_v2(Bucket="v2-rights")
    assert _code(ei.value) == ("AccessDenied", 403)
    # POSIX: bob holds the write right but alice's 0755 directory is not his.
    with pytest.raises(ClientError) as ei:
        bob.put_object(Bucket="v2-rights", Key="dir/b.txt", Body=b"bob's")
    assert _code(ei.value) == ("AccessDenied", 403)
    # Presigned by a key without the right: refused when used.
    url = presign(narrow, "get_object", "v2-rights", "dir/a.txt")
    assert_sigv2_url(url)
    resp = http_request(users_gw, url)
    assert resp.status == 403
    assert_error_xml(resp.body, "AccessDenied")
    ok = http_request(users_gw, presign(reader, "get_object", "v2-rights", "dir/a.txt"))
    assert (ok.status, ok.body) == (200, b"alice's")


# The pinned AWS CLI (1.46.3) signs S3 requests with SigV4 whatever
# `s3.signature_version` says (checked with --debug), so it cannot exercise
# SigV2; boto3 clients with `signature_version="s3"` do above.

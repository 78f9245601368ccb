"""Presigned URLs (SigV4 query authentication) used by plain HTTP clients."""

import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from s3util import assert_error_xml, http_request, make_client, random_bytes


@pytest.fixture
def signer(gw):
    """A client that presigns with SigV4 (botocore would otherwise presign
    S3 URLs with legacy SigV2 for a custom endpoint)."""
    return make_client(gw, signature_version="s3v4")


def presign(signer, method, bucket, key, expires=300):
    return signer.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)


def test_presigned_get_returns_the_bytes(gw, s3, signer, bucket):
    """A presigned GET URL works from a plain HTTP client with no credentials."""
    body = random_bytes(100_000, seed=11)
    s3.put_object(Bucket=bucket, Key="shared/file.bin", Body=body)
    url = presign(signer, "get_object", bucket, "shared/file.bin")
    assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    resp = http_request(gw, url)
    assert resp.status == 200
    assert resp.body == body
    assert resp.headers["etag"] == s3.head_object(Bucket=bucket, Key="shared/file.bin")["ETag"]


def test_presigned_get_of_odd_key(gw, s3, signer, bucket):
    """Presigned URLs with encoded characters in the key verify and resolve correctly."""
    key = "dir with space/ü+plus%.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    resp = http_request(gw, presign(signer, "get_object", bucket, key))
    assert resp.status == 200
    assert resp.body == b"odd"


def test_presigned_put_stores_the_bytes(gw, s3, signer, bucket):
    """A holder of a presigned PUT URL can upload without credentials."""
    body = random_bytes(50_000, seed=12)
    url = presign(signer, "put_object", bucket, "uploaded/by-url.bin")
    resp = http_request(gw, url, method="PUT", data=body, headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 200, resp.body
    got = s3.get_object(Bucket=bucket, Key="uploaded/by-url.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == resp.headers["etag"]


def test_presigned_url_expires(gw, s3, signer, bucket):
    """After X-Amz-Expires seconds the URL is refused with AccessDenied."""
    s3.put_object(Bucket=bucket, Key="brief", Body=b"x")
    url = presign(signer, "get_object", bucket, "brief", expires=1)
    time.sleep(2.5)
    resp = http_request(gw, url)
    assert resp.status == 403
    assert b"AccessDenied" in resp.body
    assert_error_xml(resp.body, "AccessDenied")
    assert resp.headers.get("x-amz-request-id")


def tamper(url, param, change):
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query[param] = [change(query[param][0])]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def flip_last_hex(signature):
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


def test_tampered_signature_is_signature_does_not_match(gw, s3, signer, bucket):
    """A modified signature is refused and no content leaks."""
    s3.put_object(Bucket=bucket, Key="guarded", Body=b"secret")
    url = tamper(presign(signer, "get_object", bucket, "guarded"), "X-Amz-Signature", flip_last_hex)
    resp = http_request(gw, url)
    assert resp.status == 403
    assert_error_xml(resp.body, "SignatureDoesNotMatch")
    assert b"secret" not in resp.body


def test_presigned_url_for_another_key_does_not_work(gw, s3, signer, bucket):
    """The key is part of what is signed: editing the path breaks the signature."""
    s3.put_object(Bucket=bucket, Key="allowed", Body=b"a")
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    url = presign(signer, "get_object", bucket, "allowed").replace("/allowed?", "/private?")
    resp = http_request(gw, url)
    assert resp.status == 403
    assert_error_xml(resp.body, "SignatureDoesNotMatch")


def test_presigned_url_with_extended_expiry_is_refused(gw, s3, signer, bucket):
    """X-Amz-Expires is signed too: raising it invalidates the signature."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = tamper(presign(signer, "get_object", bucket, "k", expires=60), "X-Amz-Expires", lambda _: "3600")
    resp = http_request(gw, url)
    assert resp.status == 403
    assert_error_xml(resp.body, "SignatureDoesNotMatch")


def test_presigned_get_of_missing_key_is_no_such_key(gw, signer, bucket):
    """A valid presigned URL for a missing key gets NoSuchKey, not an auth error."""
    resp = http_request(gw, presign(signer, "get_object", bucket, "absent"))
    assert resp.status == 404
    assert_error_xml(resp.body, "NoSuchKey")

"""Authentication and error-format checks, plus unimplemented operations."""

import pytest

from s3util import (
    assert_error_xml,
    checksum_b64,
    content_md5,
    expect_error,
    http_request,
    make_client,
    object_exists,
    temporary_bucket,
)


def test_unknown_access_key_is_invalid_access_key_id(raw_client, bucket):
    """A key id the gateway does not know is named as such (403), on service and object calls."""
    stranger = raw_client(access_key="AKIDNOSUCHKEY000000", secret_key="whatever-secret")
    expect_error(stranger, "list_buckets", code="InvalidAccessKeyId", status=403)
    expect_error(stranger, "get_object", code="InvalidAccessKeyId", status=403, Bucket=bucket, Key="k")


def test_wrong_secret_is_signature_does_not_match(s3, raw_client, bucket):
    """A request signed with the wrong secret is refused, and has no effect."""
    imposter = raw_client(secret_key="not-the-secret-0123456789")
    expect_error(imposter, "list_buckets", code="SignatureDoesNotMatch", status=403)
    expect_error(
        imposter, "put_object", code="SignatureDoesNotMatch", status=403,
        Bucket=bucket, Key="forged", Body=b"forged",
    )
    assert not object_exists(s3, bucket, "forged")


def test_anonymous_bucket_listing_is_access_denied(gw, s3, bucket):
    """An unsigned request gets 403 AccessDenied as an S3 XML error with a
    request id in body and header, and learns nothing of the content."""
    s3.put_object(Bucket=bucket, Key="hidden-key-name", Body=b"x")
    resp = http_request(gw, f"{gw.url}/{bucket}")
    assert resp.status == 403
    assert_error_xml(resp.body, "AccessDenied")
    assert resp.headers.get("x-amz-request-id")
    assert b"hidden-key-name" not in resp.body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_anonymous_object_requests_are_access_denied(gw, s3, bucket, method):
    """Unsigned reads and writes of an object are refused and change nothing."""
    s3.put_object(Bucket=bucket, Key="obj", Body=b"private bytes")
    data = b"overwrite" if method == "PUT" else None
    resp = http_request(gw, f"{gw.url}/{bucket}/obj", method=method, data=data)
    assert resp.status == 403
    assert_error_xml(resp.body, "AccessDenied")
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"private bytes"


def test_anonymous_service_listing_is_access_denied(gw):
    """Even the bucket list needs a signature."""
    resp = http_request(gw, f"{gw.url}/")
    assert resp.status == 403
    assert_error_xml(resp.body, "AccessDenied")


def test_every_error_carries_a_request_id(s3, bucket):
    """Request ids are what operators grep logs for; they must differ per request."""
    first = expect_error(s3, "get_object", code="NoSuchKey", status=404, Bucket=bucket, Key="a")
    second = expect_error(s3, "get_object", code="NoSuchKey", status=404, Bucket=bucket, Key="b")
    ids = [e.response["ResponseMetadata"]["RequestId"] for e in (first, second)]
    assert all(ids) and ids[0] != ids[1]


def test_successful_responses_carry_a_request_id(s3, bucket):
    """Successes carry x-amz-request-id too, so any call can be traced in the logs."""
    resp = s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert resp["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")


def test_payload_not_matching_signed_sha256_is_rejected(gateway):
    """Over plain HTTP boto3 signs the payload's SHA-256. A body changed in
    transit after signing (same length, with a Content-MD5 and CRC32 that
    match the new body, so only x-amz-content-sha256 disagrees) must be
    refused, not stored."""
    client = make_client(gateway)
    original, tampered = b"A" * 64, b"B" * 64

    def swap_body(request, **_):
        if request.method == "PUT" and request.url.endswith("/victim"):
            request.body = tampered

    with temporary_bucket(client, "sha-mismatch") as bucket:
        client.meta.events.register("before-send.s3.PutObject", swap_body)
        try:
            expect_error(
                client, "put_object", code="XAmzContentSHA256Mismatch", status=400,
                Bucket=bucket, Key="victim", Body=original,
                ContentMD5=content_md5(tampered), ChecksumCRC32=checksum_b64("CRC32", tampered),
            )
        finally:
            client.meta.events.unregister("before-send.s3.PutObject", swap_body)
        assert not object_exists(client, bucket, "victim")


@pytest.mark.parametrize(
    "operation, params",
    [
        ("put_bucket_tagging", {"Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
        ("get_bucket_policy", {}),
    ],
)
def test_unimplemented_operation_is_501_not_implemented(s3, bucket, operation, params):
    """Operations the gateway does not support say so plainly (501), rather
    than pretending to succeed or being mistaken for another call."""
    expect_error(s3, operation, code="NotImplemented", status=501, Bucket=bucket, **params)

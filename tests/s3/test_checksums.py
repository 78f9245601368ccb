"""Flexible checksums (x-amz-checksum-*) and Content-MD5 integrity checks."""

import base64
import zlib

import pytest

from s3util import (
    MIB,
    botocore_supports_checksum,
    checksum_b64,
    content_md5,
    expect_error,
    object_exists,
    random_bytes,
)

ALGORITHMS = ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]


def require_client_support(algorithm):
    """Only CRC64NVME may be skipped, and only if this botocore lacks it
    (tests/requirements.txt installs botocore[crt], which has it)."""
    if botocore_supports_checksum(algorithm):
        return
    if algorithm == "CRC64NVME":
        pytest.skip("installed botocore cannot compute CRC64NVME (awscrt missing)")
    pytest.fail(f"installed botocore cannot compute {algorithm}: check tests/requirements.txt")


@pytest.mark.parametrize("size", [1000, 5 * MIB + 3], ids=["1KB", "5MiB"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_put_checksum_is_stored_and_returned(s3, bucket, algorithm, size):
    """A PUT with ChecksumAlgorithm=X is verified and stored; GET and HEAD
    with ChecksumMode=ENABLED return the same value, which is X of the bytes
    (botocore also re-verifies the GET body against it)."""
    require_client_support(algorithm)
    body = random_bytes(size, seed=size)
    expected = checksum_b64(algorithm, body)
    field = f"Checksum{algorithm}"

    put = s3.put_object(Bucket=bucket, Key="obj", Body=body, ChecksumAlgorithm=algorithm)
    assert put.get(field) == expected

    got = s3.get_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert got.get(field) == expected
    assert got["Body"].read() == body

    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head.get(field) == expected


def test_default_crc32_from_sdk_is_stored(s3, bucket):
    """boto3 sends a CRC32 by default; the gateway keeps it and returns it."""
    body = b"default checksum body" * 100
    s3.put_object(Bucket=bucket, Key="obj", Body=body)
    got = s3.get_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got.get("ChecksumCRC32") == checksum_b64("CRC32", body)


def test_wrong_content_md5_is_bad_digest_and_stores_nothing(s3, bucket):
    """A Content-MD5 that does not match the body fails the PUT with
    BadDigest and leaves no object behind."""
    expect_error(
        s3, "put_object", code="BadDigest", status=400,
        Bucket=bucket, Key="obj", Body=b"actual body", ContentMD5=content_md5(b"another body"),
    )
    assert not object_exists(s3, bucket, "obj")


def test_wrong_content_md5_keeps_the_previous_version(s3, bucket):
    """A failed overwrite does not disturb the object that was there."""
    s3.put_object(Bucket=bucket, Key="obj", Body=b"old")
    expect_error(
        s3, "put_object", code="BadDigest", status=400,
        Bucket=bucket, Key="obj", Body=b"new", ContentMD5=content_md5(b"not new"),
    )
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"old"


def test_correct_content_md5_is_accepted(s3, bucket):
    """The positive case of the Content-MD5 check: a matching digest is stored normally."""
    body = b"md5 checked body"
    put = s3.put_object(Bucket=bucket, Key="obj", Body=body, ContentMD5=content_md5(body))
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == body


def test_malformed_content_md5_is_invalid_digest(s3, bucket):
    """A Content-MD5 that is not base64 of 16 bytes is InvalidDigest."""
    expect_error(
        s3, "put_object", code="InvalidDigest", status=400,
        Bucket=bucket, Key="obj", Body=b"x", ContentMD5="not-an-md5",
    )
    assert not object_exists(s3, bucket, "obj")


def test_wrong_explicit_crc32_is_bad_digest(s3, bucket):
    """A caller-supplied x-amz-checksum-crc32 that does not match the body is
    refused (BadDigest) and nothing is stored."""
    wrong = base64.b64encode(((zlib.crc32(b"x") + 1) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    expect_error(
        s3, "put_object", code="BadDigest", status=400,
        Bucket=bucket, Key="obj", Body=b"x", ChecksumCRC32=wrong,
    )
    assert not object_exists(s3, bucket, "obj")


def test_ranged_get_with_checksum_mode_does_not_fail_validation(s3, bucket):
    """botocore asks for checksums on every GET; a 206 must not carry the
    whole-object checksum (the client would check it against the range)."""
    body = random_bytes(4096, seed=9)
    s3.put_object(Bucket=bucket, Key="obj", Body=body, ChecksumAlgorithm="CRC32")
    got = s3.get_object(Bucket=bucket, Key="obj", Range="bytes=100-199", ChecksumMode="ENABLED")
    assert got["Body"].read() == body[100:200]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206

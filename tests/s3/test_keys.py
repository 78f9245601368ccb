"""Keys the gateway's file-system namespace cannot hold: empty, '.' and '..'
components, over-long keys, and file/directory conflicts."""

import pytest

from s3util import expect_error, object_exists

BAD_NAME_CODES = ("InvalidObjectName", "InvalidArgument")


def key_of_length(n, component=200):
    """A key of exactly n bytes made of components of at most `component`
    bytes, so only the total length is over any limit."""
    parts, left = [], n
    while left > 0:
        take = min(component, left)
        if left - take == 1:  # never leave a lone '/' or an empty last part
            take -= 1
        parts.append("k" * take)
        left -= take + 1
    key = "/".join(parts)
    assert len(key.encode()) == n, (len(key), n)
    return key


@pytest.mark.parametrize("key", ["a//b", "a/../b", "../x", "x/..", "a/./b", "./a", "..", "."])
def test_key_with_empty_or_dot_component_is_rejected(s3, bucket, key):
    """These keys cannot be paths: the PUT fails with 400 and stores nothing."""
    expect_error(s3, "put_object", code=BAD_NAME_CODES, status=400, Bucket=bucket, Key=key, Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_multipart_upload_to_bad_key_is_rejected(s3, bucket):
    """The key rules apply when an upload starts, not only at completion."""
    expect_error(s3, "create_multipart_upload", code=BAD_NAME_CODES, status=400, Bucket=bucket, Key="a//b")


def test_copy_to_bad_key_is_rejected(s3, bucket):
    """The key rules apply to copy destinations too."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    expect_error(
        s3, "copy_object", code=BAD_NAME_CODES, status=400,
        Bucket=bucket, Key="x/../y", CopySource={"Bucket": bucket, "Key": "src"},
    )


def test_key_of_1024_bytes_is_accepted(s3, bucket):
    """The limit is inclusive: exactly 1024 bytes is a valid key."""
    key = key_of_length(1024)
    s3.put_object(Bucket=bucket, Key=key, Body=b"max")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"max"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]


@pytest.mark.parametrize("length", [1025, 2000])
def test_key_over_1024_bytes_is_key_too_long(s3, bucket, length):
    """S3's 1024-byte key limit, reported as KeyTooLongError."""
    expect_error(
        s3, "put_object", code="KeyTooLongError", status=400,
        Bucket=bucket, Key=key_of_length(length), Body=b"x",
    )


def test_multibyte_key_length_counts_bytes(s3, bucket):
    """The limit is 1024 UTF-8 bytes, not characters: this key is 516
    characters but 1027 bytes (each 'é' is 2 bytes; components stay short)."""
    key = "/".join(["é" * 100] * 5 + ["é" * 11])
    assert len(key) == 516 and len(key.encode()) == 1027
    expect_error(s3, "put_object", code="KeyTooLongError", status=400, Bucket=bucket, Key=key, Body=b"x")


def test_overlong_component_is_rejected(s3, bucket):
    """A single path component over 255 bytes cannot be a file name."""
    expect_error(
        s3, "put_object", code=("KeyTooLongError", "InvalidObjectName", "InvalidArgument"), status=400,
        Bucket=bucket, Key="d/" + "x" * 256, Body=b"x",
    )


def test_put_below_a_file_is_object_parent_is_file(s3, bucket):
    """'a' is a file, so 'a/b' would need it to be a directory: 409, and 'a'
    is untouched."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"i am a file")
    expect_error(s3, "put_object", code="ObjectParentIsFile", status=409, Bucket=bucket, Key="a/b", Body=b"x")
    expect_error(
        s3, "put_object", code="ObjectParentIsFile", status=409, Bucket=bucket, Key="a/b/c/d", Body=b"x",
    )
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"i am a file"
    assert not object_exists(s3, bucket, "a/b")


def test_put_over_a_directory_is_existing_object_is_directory(s3, bucket):
    """'d/x' makes 'd' a directory, so a file 'd' cannot be written: 409."""
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"inside")
    expect_error(s3, "put_object", code="ExistingObjectIsDirectory", status=409, Bucket=bucket, Key="d", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="d/x")["Body"].read() == b"inside"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/x"]


def test_copy_over_a_directory_is_existing_object_is_directory(s3, bucket):
    """The file/directory rule also holds for copy destinations."""
    s3.put_object(Bucket=bucket, Key="d/x", Body=b"inside")
    s3.put_object(Bucket=bucket, Key="src", Body=b"file")
    expect_error(
        s3, "copy_object", code="ExistingObjectIsDirectory", status=409,
        Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"},
    )


def test_conflict_clears_once_the_file_is_deleted(s3, bucket):
    """Deleting file 'a' frees the name for directory use."""
    s3.put_object(Bucket=bucket, Key="a", Body=b"file")
    s3.delete_object(Bucket=bucket, Key="a")
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"now a directory")
    assert s3.get_object(Bucket=bucket, Key="a/b")["Body"].read() == b"now a directory"

"""Ranged GETs: 206 with the right bytes and Content-Range, 416 past the end."""

import pytest

from s3util import MIB, expect_error, random_bytes

BODY = bytes(range(100))  # byte i has value i: a wrong offset shows at once


@pytest.fixture
def hundred_bytes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    return bucket


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 99),
        ("bytes=-5", 95, 99),
        ("bytes=99-99", 99, 99),
        ("bytes=50-1000", 50, 99),  # an end past the object is clamped
        ("bytes=-500", 0, 99),  # a suffix longer than the object is all of it
    ],
)
def test_satisfiable_range_is_206_with_exact_bytes(s3, hundred_bytes, header, start, end):
    """The response is 206 Partial Content with exactly the asked bytes, a
    Content-Range 'bytes start-end/size' and the matching Content-Length."""
    got = s3.get_object(Bucket=hundred_bytes, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == BODY[start : end + 1]
    assert got["ContentRange"] == f"bytes {start}-{end}/100"
    assert got["ContentLength"] == end - start + 1


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=5000-5001"])
def test_range_starting_past_the_end_is_invalid_range(s3, hundred_bytes, header):
    """A range that starts at or after the object size cannot be satisfied: 416."""
    expect_error(s3, "get_object", code="InvalidRange", status=416, Bucket=hundred_bytes, Key="r", Range=header)


def test_full_get_advertises_byte_ranges(s3, hundred_bytes):
    """Accept-Ranges: bytes tells downloaders (aws s3 cp, s3transfer) to split."""
    got = s3.get_object(Bucket=hundred_bytes, Key="r")
    assert got["Body"].read() == BODY
    assert got["AcceptRanges"] == "bytes"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_head_with_range_reports_partial_length(s3, hundred_bytes):
    """HEAD with a Range answers like the GET would (206, partial length)."""
    head = s3.head_object(Bucket=hundred_bytes, Key="r", Range="bytes=0-9")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == 10
    assert head["ContentRange"] == "bytes 0-9/100"


@pytest.mark.parametrize(
    "start, end",
    [(4 * MIB - 50, 4 * MIB + 49), (0, 8 * MIB), (8 * MIB - 1, 9 * MIB - 1), (65536 * 3 - 1, 65536 * 3)],
    ids=["across-chunk", "two-chunks-and-a-byte", "last-mib", "across-block"],
)
def test_ranges_across_storage_chunk_boundaries(s3, bucket, start, end):
    """Objects are stored in 4 MiB chunks of 64 KiB checksummed blocks;
    ranges that straddle those boundaries must still be exact."""
    body = random_bytes(9 * MIB, seed=4)
    s3.put_object(Bucket=bucket, Key="big", Body=body)
    got = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={start}-{end}")
    assert got["Body"].read() == body[start : end + 1]
    assert got["ContentRange"] == f"bytes {start}-{end}/{len(body)}"


def test_range_on_empty_object_is_invalid_range(s3, bucket):
    """An empty object has no satisfiable byte range."""
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    expect_error(s3, "get_object", code="InvalidRange", status=416, Bucket=bucket, Key="empty", Range="bytes=0-0")

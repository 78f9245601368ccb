"""Conditional requests: If-Match, If-None-Match, If-(Un)Modified-Since on
GET and HEAD, and conditional writes (If-None-Match: *, If-Match) on PUT."""

import datetime as dt

import pytest

from s3util import expect_error, quoted_md5, utc_now

WRONG_ETAG = '"00000000000000000000000000000000"'
DAY = dt.timedelta(days=1)


@pytest.fixture
def obj(s3, bucket):
    """(bucket, key, etag, last_modified) of a freshly written object."""
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    head = s3.head_object(Bucket=bucket, Key="c")
    return bucket, "c", head["ETag"], head["LastModified"]


# ---- conditional writes


def test_put_if_none_match_star_on_new_key_succeeds(s3, bucket):
    """Create-only writes succeed when the key is free."""
    s3.put_object(Bucket=bucket, Key="new", Body=b"1", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"1"


def test_put_if_none_match_star_on_existing_key_is_412(s3, obj):
    """Create-only writes must not clobber an existing object."""
    bucket, key, etag, _ = obj
    expect_error(
        s3, "put_object", code="PreconditionFailed", status=412,
        Bucket=bucket, Key=key, Body=b"clobber", IfNoneMatch="*",
    )
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"conditional"
    assert got["ETag"] == etag


def test_put_if_match_compares_the_current_etag(s3, obj):
    """Compare-and-swap: a PUT with the current ETag wins, a stale one is 412."""
    bucket, key, etag, _ = obj
    expect_error(
        s3, "put_object", code="PreconditionFailed", status=412,
        Bucket=bucket, Key=key, Body=b"stale writer", IfMatch=WRONG_ETAG,
    )
    s3.put_object(Bucket=bucket, Key=key, Body=b"fresh writer", IfMatch=etag)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"fresh writer"
    assert got["ETag"] == quoted_md5(b"fresh writer")


def test_put_if_match_on_missing_key_fails(s3, bucket):
    """If-Match needs an object to compare with: S3 answers 404 NoSuchKey."""
    expect_error(
        s3, "put_object", code="NoSuchKey", status=404,
        Bucket=bucket, Key="absent", Body=b"x", IfMatch=WRONG_ETAG,
    )


# ---- conditional reads


def test_get_if_match_right_etag_returns_body(s3, obj):
    """If-Match with the current ETag is a normal 200."""
    bucket, key, etag, _ = obj
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read() == b"conditional"


def test_get_if_match_wrong_etag_is_412(s3, obj):
    """If-Match with a stale ETag refuses the read (optimistic readers rely on it)."""
    bucket, key, _, _ = obj
    expect_error(s3, "get_object", code="PreconditionFailed", status=412, Bucket=bucket, Key=key, IfMatch=WRONG_ETAG)


def test_get_if_none_match_current_etag_is_304(s3, obj):
    """A cache revalidation hit: 304 with no body (botocore's code is '304')."""
    bucket, key, etag, _ = obj
    expect_error(s3, "get_object", code="304", status=304, Bucket=bucket, Key=key, IfNoneMatch=etag)


def test_get_if_none_match_other_etag_returns_body(s3, obj):
    """A cache holding another version gets the new body."""
    bucket, key, _, _ = obj
    got = s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=WRONG_ETAG)
    assert got["Body"].read() == b"conditional"


def test_get_if_modified_since_future_is_304(s3, obj):
    """Not modified since a time after the write (S3 does not ignore future dates)."""
    bucket, key, _, _ = obj
    expect_error(s3, "get_object", code="304", status=304, Bucket=bucket, Key=key, IfModifiedSince=utc_now() + DAY)


def test_get_if_modified_since_last_modified_is_304(s3, obj):
    """Dates are compared at HTTP-date (whole second) precision: the
    object's own Last-Modified means 'not modified since'."""
    bucket, key, _, last_modified = obj
    expect_error(s3, "get_object", code="304", status=304, Bucket=bucket, Key=key, IfModifiedSince=last_modified)


def test_get_if_modified_since_past_returns_body(s3, obj):
    """Modified since yesterday: the body is sent."""
    bucket, key, _, _ = obj
    got = s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=utc_now() - DAY)
    assert got["Body"].read() == b"conditional"


def test_get_if_unmodified_since_past_is_412(s3, obj):
    """Modified after the given date: the condition fails with 412."""
    bucket, key, _, _ = obj
    expect_error(
        s3, "get_object", code="PreconditionFailed", status=412,
        Bucket=bucket, Key=key, IfUnmodifiedSince=utc_now() - DAY,
    )


def test_get_if_unmodified_since_future_returns_body(s3, obj):
    """Not modified since a later date: the body is sent."""
    bucket, key, _, _ = obj
    got = s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=utc_now() + DAY)
    assert got["Body"].read() == b"conditional"


def test_if_match_true_overrides_if_unmodified_since_false(s3, obj):
    """RFC 7232 / S3: when If-Match holds, If-Unmodified-Since is ignored."""
    bucket, key, etag, _ = obj
    got = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfUnmodifiedSince=utc_now() - DAY)
    assert got["Body"].read() == b"conditional"


def test_if_none_match_false_with_if_modified_since_true_is_304(s3, obj):
    """RFC 7232 / S3: when If-None-Match is present, If-Modified-Since is ignored."""
    bucket, key, etag, _ = obj
    expect_error(
        s3, "get_object", code="304", status=304,
        Bucket=bucket, Key=key, IfNoneMatch=etag, IfModifiedSince=utc_now() - DAY,
    )


def test_head_conditionals_answer_with_bare_status(s3, obj):
    """HEAD applies the same conditions; with no body, the code is the status."""
    bucket, key, etag, _ = obj
    expect_error(s3, "head_object", code="412", status=412, Bucket=bucket, Key=key, IfMatch=WRONG_ETAG)
    expect_error(s3, "head_object", code="304", status=304, Bucket=bucket, Key=key, IfNoneMatch=etag)
    assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag

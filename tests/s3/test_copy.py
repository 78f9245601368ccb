"""CopyObject within and across buckets, metadata directives, errors."""

from s3util import expect_error, quoted_md5, random_bytes

BODY = random_bytes(300_000, seed=7)
META = {"origin": "source", "n": "1"}


def put_source(s3, bucket, key="src/object.bin"):
    s3.put_object(Bucket=bucket, Key=key, Body=BODY, ContentType="application/x-test", Metadata=META)
    return key


def test_copy_within_bucket_copies_bytes_and_metadata(s3, bucket):
    """The default directive (COPY) carries body, Content-Type and user
    metadata over; the copy's ETag is the MD5 of the same bytes."""
    src = put_source(s3, bucket)
    resp = s3.copy_object(Bucket=bucket, Key="dst/copy.bin", CopySource={"Bucket": bucket, "Key": src})
    assert resp["CopyObjectResult"]["ETag"] == quoted_md5(BODY)
    got = s3.get_object(Bucket=bucket, Key="dst/copy.bin")
    assert got["Body"].read() == BODY
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == META
    assert got["ETag"] == quoted_md5(BODY)


def test_copy_with_explicit_copy_directive(s3, bucket):
    """MetadataDirective=COPY ignores metadata given on the request."""
    src = put_source(s3, bucket)
    s3.copy_object(
        Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": src},
        MetadataDirective="COPY", Metadata={"ignored": "yes"},
    )
    assert s3.head_object(Bucket=bucket, Key="c")["Metadata"] == META


def test_copy_across_buckets_with_replace_directive(s3, bucket_factory):
    """REPLACE takes metadata and Content-Type from the request; the source
    keeps its own."""
    src_bucket, dst_bucket = bucket_factory("copy-src"), bucket_factory("copy-dst")
    src = put_source(s3, src_bucket)
    s3.copy_object(
        Bucket=dst_bucket, Key="replaced", CopySource={"Bucket": src_bucket, "Key": src},
        MetadataDirective="REPLACE", Metadata={"fresh": "value"}, ContentType="text/plain",
    )
    dst = s3.get_object(Bucket=dst_bucket, Key="replaced")
    assert dst["Body"].read() == BODY
    assert dst["Metadata"] == {"fresh": "value"}
    assert dst["ContentType"] == "text/plain"
    source = s3.head_object(Bucket=src_bucket, Key=src)
    assert source["Metadata"] == META
    assert source["ContentType"] == "application/x-test"


def test_copy_across_buckets_default_directive(s3, bucket_factory):
    """CopySource given as the 'bucket/key' string form, across buckets."""
    src_bucket, dst_bucket = bucket_factory("xsrc"), bucket_factory("xdst")
    src = put_source(s3, src_bucket)
    s3.copy_object(Bucket=dst_bucket, Key="same/name", CopySource=f"{src_bucket}/{src}")
    got = s3.get_object(Bucket=dst_bucket, Key="same/name")
    assert got["Body"].read() == BODY
    assert got["Metadata"] == META


def test_copy_is_independent_of_later_source_changes(s3, bucket):
    """The copy is a snapshot: overwriting or deleting the source later does
    not change it."""
    src = put_source(s3, bucket)
    s3.copy_object(Bucket=bucket, Key="snapshot", CopySource={"Bucket": bucket, "Key": src})
    s3.put_object(Bucket=bucket, Key=src, Body=b"changed")
    assert s3.get_object(Bucket=bucket, Key="snapshot")["Body"].read() == BODY
    s3.delete_object(Bucket=bucket, Key=src)
    assert s3.get_object(Bucket=bucket, Key="snapshot")["Body"].read() == BODY


def test_copy_onto_itself_without_replace_is_invalid_request(s3, bucket):
    """S3 refuses a self-copy that changes nothing."""
    src = put_source(s3, bucket)
    expect_error(
        s3, "copy_object", code="InvalidRequest", status=400,
        Bucket=bucket, Key=src, CopySource={"Bucket": bucket, "Key": src},
    )
    assert s3.get_object(Bucket=bucket, Key=src)["Body"].read() == BODY


def test_copy_onto_itself_with_replace_updates_metadata(s3, bucket):
    """The S3 way to change an object's metadata in place."""
    src = put_source(s3, bucket)
    s3.copy_object(
        Bucket=bucket, Key=src, CopySource={"Bucket": bucket, "Key": src},
        MetadataDirective="REPLACE", Metadata={"edited": "true"},
    )
    got = s3.get_object(Bucket=bucket, Key=src)
    assert got["Body"].read() == BODY
    assert got["Metadata"] == {"edited": "true"}


def test_copy_from_missing_source_is_no_such_key(s3, bucket):
    """A missing copy source is NoSuchKey, and nothing is written."""
    expect_error(
        s3, "copy_object", code="NoSuchKey", status=404,
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "missing"},
    )


def test_copy_source_if_match_wrong_etag_is_412(s3, bucket):
    """x-amz-copy-source-if-match protects copy-on-condition workflows."""
    src = put_source(s3, bucket)
    expect_error(
        s3, "copy_object", code="PreconditionFailed", status=412,
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": src},
        CopySourceIfMatch='"00000000000000000000000000000000"',
    )


def test_copy_keys_with_special_characters(s3, bucket):
    """x-amz-copy-source is URL-encoded by the client and must be decoded."""
    src = "dir with space/plus+percent%/ü.bin"
    s3.put_object(Bucket=bucket, Key=src, Body=b"special")
    s3.copy_object(Bucket=bucket, Key="dst/ü copy+", CopySource={"Bucket": bucket, "Key": src})
    assert s3.get_object(Bucket=bucket, Key="dst/ü copy+")["Body"].read() == b"special"

"""Bucket operations: create, head, list, location, delete, and their errors."""

import pytest

from s3util import expect_error, unique_bucket_name


def test_bucket_lifecycle_create_head_list_locate_delete(s3):
    """A created bucket is visible to HEAD, ListBuckets and GetBucketLocation,
    and is gone for all of them once deleted."""
    name = unique_bucket_name("lifecycle")
    created = s3.create_bucket(Bucket=name)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    try:
        assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert name in names
        # us-east-1 is reported as an empty LocationConstraint (None in boto3).
        assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "us-east-1")
    finally:
        deleted = s3.delete_bucket(Bucket=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3, "head_bucket", code="404", status=404, Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_list_buckets_entries_have_creation_dates(s3, bucket):
    """ListBuckets carries a CreationDate per bucket (clients sort and display it)."""
    entry = next(b for b in s3.list_buckets()["Buckets"] if b["Name"] == bucket)
    assert entry["CreationDate"].year >= 2024


def test_delete_non_empty_bucket_is_refused(s3, bucket):
    """A bucket holding an object cannot be deleted (and stays intact)."""
    s3.put_object(Bucket=bucket, Key="keep/me.txt", Body=b"still here")
    expect_error(s3, "delete_bucket", code="BucketNotEmpty", status=409, Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="keep/me.txt")["Body"].read() == b"still here"


def test_delete_bucket_emptied_by_s3_deletes_succeeds(s3):
    """Deleting the last (deeply nested) key also removes the implicit
    directories, so the bucket is empty again and can be deleted."""
    name = unique_bucket_name("emptied")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="a/b/c/d.txt", Body=b"x")
    s3.delete_object(Bucket=name, Key="a/b/c/d.txt")
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_head_missing_bucket_is_404(s3):
    """HEAD has no body, so the client sees the bare status as the code."""
    expect_error(s3, "head_bucket", code="404", status=404, Bucket=unique_bucket_name("missing"))


def test_delete_missing_bucket_is_no_such_bucket(s3):
    """Deleting a bucket that does not exist names the missing bucket."""
    expect_error(s3, "delete_bucket", code="NoSuchBucket", status=404, Bucket=unique_bucket_name("missing"))


def test_object_calls_on_missing_bucket_are_no_such_bucket(s3):
    """Object and listing calls name the missing bucket, not a missing key."""
    name = unique_bucket_name("missing")
    expect_error(s3, "put_object", code="NoSuchBucket", status=404, Bucket=name, Key="k", Body=b"x")
    expect_error(s3, "get_object", code="NoSuchBucket", status=404, Bucket=name, Key="k")
    expect_error(s3, "list_objects_v2", code="NoSuchBucket", status=404, Bucket=name)


@pytest.mark.parametrize("bad_name", ["Bad_Name", "ab", "a..b", "-leading-dash", "192.168.1.1", "x" * 64])
def test_create_bucket_with_invalid_name_is_rejected(s3, bad_name):
    """S3 bucket naming rules are enforced by the server (boto3 lets these through)."""
    expect_error(s3, "create_bucket", code="InvalidBucketName", status=400, Bucket=bad_name)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bad_name not in names


def test_create_existing_bucket_is_already_owned_by_you(s3, bucket):
    """Re-creating one's own bucket is a 409, and the bucket keeps its content."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    expect_error(s3, "create_bucket", code="BucketAlreadyOwnedByYou", status=409, Bucket=bucket)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"

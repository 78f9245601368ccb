"""DeleteObject and DeleteObjects (multi-object delete)."""

from s3util import object_exists


def keys_in(s3, bucket, **params):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, **params).get("Contents", [])]


def test_delete_object_removes_it(s3, bucket):
    """DELETE answers 204 and the key is gone from GET and from listings."""
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    resp = s3.delete_object(Bucket=bucket, Key="gone")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert not object_exists(s3, bucket, "gone")
    assert keys_in(s3, bucket) == []


def test_delete_missing_key_succeeds_with_204(s3, bucket):
    """S3 deletes are idempotent: deleting what is not there is not an error."""
    resp = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    resp = s3.delete_object(Bucket=bucket, Key="no/such/deep/key")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_last_key_removes_implicit_directories(s3, bucket):
    """Directories made implicitly by PUT 'x/y/z' vanish with their last key:
    no stale common prefix is left in delimiter listings."""
    s3.put_object(Bucket=bucket, Key="x/y/z", Body=b"1")
    s3.put_object(Bucket=bucket, Key="top", Body=b"2")
    s3.delete_object(Bucket=bucket, Key="x/y/z")
    resp = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert resp.get("CommonPrefixes", []) == []
    assert [o["Key"] for o in resp["Contents"]] == ["top"]


def test_delete_keeps_siblings(s3, bucket):
    """Deleting one key of a directory leaves the others and the directory."""
    for k in ("d/a", "d/b", "d/c"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    s3.delete_object(Bucket=bucket, Key="d/b")
    assert keys_in(s3, bucket) == ["d/a", "d/c"]


def test_delete_objects_reports_each_key(s3, bucket):
    """Multi-object delete lists every requested key under Deleted, including
    one that did not exist (S3 treats it as deleted), and removes them all."""
    present = ["one", "dir/two", "dir/sub/three"]
    for k in present:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    s3.put_object(Bucket=bucket, Key="survivor", Body=b"y")
    requested = present + ["not-there"]
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in requested]})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(d["Key"] for d in resp.get("Deleted", [])) == sorted(requested)
    assert resp.get("Errors", []) == []
    assert keys_in(s3, bucket) == ["survivor"]


def test_delete_objects_quiet_reports_only_errors(s3, bucket):
    """Quiet mode omits successful deletions from the response."""
    keys = [f"q/{i}" for i in range(5)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp.get("Deleted", []) == []
    assert resp.get("Errors", []) == []
    assert keys_in(s3, bucket) == []


def test_delete_objects_with_odd_keys(s3, bucket):
    """Keys travel in the XML body here, not the URL: XML escaping must work."""
    keys = ["a&b", "<angle>", "quote\"s", "space d", "unicodé", "plus+"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in resp.get("Deleted", [])) == sorted(keys)
    assert keys_in(s3, bucket) == []

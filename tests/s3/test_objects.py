"""PUT, GET and HEAD of single objects: bytes, headers, metadata, keys."""

import concurrent.futures
import datetime as dt

import pytest

from s3util import (
    MIB,
    expect_error,
    make_client,
    quoted_md5,
    random_bytes,
    utc_now,
)


def put_and_get(s3, bucket, key, body, **put_args):
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, **put_args)
    got = s3.get_object(Bucket=bucket, Key=key)
    return put, got, got["Body"].read()


@pytest.mark.parametrize(
    "size",
    [0, 11, 20 * MIB + 7],
    ids=["empty", "small", "20MiB"],
)
def test_bytes_round_trip_with_md5_etag_and_length(s3, bucket, size):
    """What was PUT comes back byte for byte; a single PUT's ETag is the
    quoted MD5 hex; Content-Length matches on GET and HEAD. 20 MiB spans
    several 4 MiB storage chunks."""
    body = random_bytes(size, seed=size)
    put, got, data = put_and_get(s3, bucket, "blob.bin", body)
    assert data == body
    assert put["ETag"] == quoted_md5(body)
    assert got["ETag"] == quoted_md5(body)
    assert got["ContentLength"] == size
    head = s3.head_object(Bucket=bucket, Key="blob.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == quoted_md5(body)


def test_last_modified_is_present_and_recent(s3, bucket):
    """Last-Modified is sent on GET and HEAD and is the time of the PUT."""
    before = utc_now() - dt.timedelta(seconds=2)
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    after = utc_now() + dt.timedelta(seconds=2)
    head = s3.head_object(Bucket=bucket, Key="t")
    got = s3.get_object(Bucket=bucket, Key="t")
    got["Body"].read()
    for lm in (head["LastModified"], got["LastModified"]):
        assert before <= lm <= after, (before, lm, after)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["LastModified"]
    assert abs((listed - head["LastModified"]).total_seconds()) < 1


def test_content_type_is_kept(s3, bucket):
    """An explicit Content-Type is stored and returned by GET and HEAD."""
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>", ContentType="text/html; charset=utf-8")
    assert s3.head_object(Bucket=bucket, Key="page.html")["ContentType"] == "text/html; charset=utf-8"
    got = s3.get_object(Bucket=bucket, Key="page.html")
    got["Body"].read()
    assert got["ContentType"] == "text/html; charset=utf-8"


def test_content_type_defaults_to_binary_octet_stream(s3, bucket):
    """With no Content-Type on the PUT, S3 answers binary/octet-stream."""
    s3.put_object(Bucket=bucket, Key="untyped", Body=b"\x00\x01")
    assert s3.head_object(Bucket=bucket, Key="untyped")["ContentType"] == "binary/octet-stream"


def test_user_metadata_round_trips(s3, bucket):
    """x-amz-meta-* headers are stored and returned unchanged (keys lowercase)."""
    meta = {"color": "blue", "owner-id": "42", "note": "spaces are fine"}
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata=meta)
    assert s3.head_object(Bucket=bucket, Key="m")["Metadata"] == meta
    got = s3.get_object(Bucket=bucket, Key="m")
    got["Body"].read()
    assert got["Metadata"] == meta


def test_standard_headers_round_trip(s3, bucket):
    """Cache-Control, Content-Disposition, Content-Encoding and
    Content-Language are object headers that GET must replay."""
    headers = dict(
        CacheControl="max-age=60",
        ContentDisposition='attachment; filename="x.txt"',
        ContentEncoding="identity",
        ContentLanguage="en",
    )
    s3.put_object(Bucket=bucket, Key="h", Body=b"x", **headers)
    head = s3.head_object(Bucket=bucket, Key="h")
    for name, value in headers.items():
        assert head[name] == value, name


def test_overwrite_replaces_content_and_metadata(s3, bucket):
    """A second PUT replaces body, ETag and metadata as a whole."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["ETag"] == quoted_md5(b"second")
    assert got["Metadata"] == {}
    assert got["ContentType"] == "text/plain"


def test_get_missing_key_is_no_such_key(s3, bucket):
    """A missing key is NoSuchKey (404) with an XML body."""
    expect_error(s3, "get_object", code="NoSuchKey", status=404, Bucket=bucket, Key="nope")


def test_head_missing_key_is_404(s3, bucket):
    """HEAD of a missing key is a bare 404 (no body, so the code is '404')."""
    expect_error(s3, "head_object", code="404", status=404, Bucket=bucket, Key="nope")


def test_get_of_a_directory_prefix_is_no_such_key(s3, bucket):
    """'a' is only an implicit directory made by PUT 'a/b': it is not an object."""
    s3.put_object(Bucket=bucket, Key="a/b", Body=b"x")
    expect_error(s3, "get_object", code="NoSuchKey", status=404, Bucket=bucket, Key="a")


ODD_KEYS = [
    "with space.txt",
    "plus+sign",
    "percent%25literal%",
    "unicodé/ключ/日本語.txt",
    "a/b/c/d.txt",
    "tilde~and'quote",
    "question?mark&amp=1",
    "hash#fragment",
    "semi;colon,comma",
    "emoji-\U0001f600",
    "star*(parens)!",
    "caret^brackets[]{}",
    "equals=and@at$dollar",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip_and_list_exactly(s3, bucket, key):
    """Keys are byte-exact: URL-special characters, unicode and deep paths
    are stored, fetched and listed as given."""
    body = key.encode() * 3
    _, got, data = put_and_get(s3, bucket, key, body)
    assert data == body
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)


def test_directory_marker_object(s3, bucket):
    """An empty 'dir/' PUT makes a listable marker that GET returns as empty."""
    s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="folder/")["Body"].read() == b""
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == ["folder/"]
    s3.put_object(Bucket=bucket, Key="folder/inside", Body=b"1")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == ["folder/", "folder/inside"]


def test_concurrent_overwrites_are_atomic(gw, bucket):
    """Readers racing writers of one key only ever see a whole version, never
    a mix, and the final object is one of the written versions."""
    client = make_client(gw, max_pool_connections=16)
    versions = [random_bytes(MIB + 17 * i, seed=100 + i) for i in range(6)]
    by_etag = {quoted_md5(v): v for v in versions}
    client.put_object(Bucket=bucket, Key="hot", Body=versions[0])

    def write(i):
        client.put_object(Bucket=bucket, Key="hot", Body=versions[i % len(versions)])

    def read(_):
        got = client.get_object(Bucket=bucket, Key="hot")
        data = got["Body"].read()
        assert got["ETag"] in by_etag, got["ETag"]
        assert data == by_etag[got["ETag"]], "GET returned bytes of another version than its ETag"
        return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        writes = [pool.submit(write, i) for i in range(24)]
        reads = [pool.submit(read, i) for i in range(24)]
        for f in writes + reads:
            f.result()
    final = client.get_object(Bucket=bucket, Key="hot")
    assert final["Body"].read() == by_etag[final["ETag"]]

"""Multipart uploads: create, parts, list, complete, abort, errors, part
copies, part-number GETs, and a 1 GiB transfer through boto3's manager."""

import hashlib
import os
import random

import pytest
from boto3.s3.transfer import TransferConfig

from s3util import (
    MIB,
    expect_error,
    make_client,
    multipart_etag,
    quoted_md5,
    random_bytes,
    temporary_bucket,
)

PART1 = random_bytes(5 * MIB, seed=1)
PART2 = random_bytes(5 * MIB, seed=2)
PART3 = random_bytes(1024, seed=3)
PARTS = [PART1, PART2, PART3]


def start_upload(s3, bucket, key, **args):
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **args)["UploadId"]


def upload_parts(s3, bucket, key, upload_id, parts, first_number=1):
    """Uploads parts; returns the CompleteMultipartUpload part list."""
    done = []
    for number, data in enumerate(parts, start=first_number):
        resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        assert resp["ETag"] == quoted_md5(data), f"part {number} ETag is not its MD5"
        done.append({"PartNumber": number, "ETag": resp["ETag"]})
    return done


def complete(s3, bucket, key, upload_id, parts):
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


@pytest.fixture
def three_part_object(s3, bucket):
    """(bucket, key, upload_id, etag) of a completed 5 MiB + 5 MiB + 1 KiB upload."""
    key = "mp/three.bin"
    upload_id = start_upload(s3, bucket, key, ContentType="application/x-parts", Metadata={"kind": "mpu"})
    parts = upload_parts(s3, bucket, key, upload_id, PARTS)
    resp = complete(s3, bucket, key, upload_id, parts)
    return bucket, key, upload_id, resp["ETag"], parts


def test_three_part_upload_etag_and_content(s3, three_part_object):
    """The object is the parts joined; its ETag is md5(part md5s)-3; the
    metadata given at creation is the object's."""
    bucket, key, _, etag, _ = three_part_object
    assert etag == multipart_etag(PARTS)
    assert etag.endswith('-3"')
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(PARTS)
    assert got["ETag"] == etag
    assert got["ContentLength"] == sum(map(len, PARTS))
    assert got["ContentType"] == "application/x-parts"
    assert got["Metadata"] == {"kind": "mpu"}


def test_repeated_complete_returns_same_etag(s3, three_part_object):
    """A client retrying CompleteMultipartUpload (lost response) gets the same
    answer, and the object is unchanged."""
    bucket, key, upload_id, etag, parts = three_part_object
    again = complete(s3, bucket, key, upload_id, parts)
    assert again["ETag"] == etag
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == etag


def test_get_part_number_returns_that_part(s3, three_part_object):
    """GET ?partNumber=N returns part N alone, with x-amz-mp-parts-count."""
    bucket, key, _, _, _ = three_part_object
    total = sum(map(len, PARTS))
    first = s3.get_object(Bucket=bucket, Key=key, PartNumber=1)
    assert first["Body"].read() == PART1
    assert first["PartsCount"] == 3
    assert first["ResponseMetadata"]["HTTPHeaders"]["x-amz-mp-parts-count"] == "3"
    assert first["ContentLength"] == len(PART1)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert first["ContentRange"] == f"bytes 0-{len(PART1) - 1}/{total}"
    last = s3.get_object(Bucket=bucket, Key=key, PartNumber=3)
    assert last["Body"].read() == PART3
    assert last["ContentRange"] == f"bytes {len(PART1) + len(PART2)}-{total - 1}/{total}"
    head = s3.head_object(Bucket=bucket, Key=key, PartNumber=2)
    assert head["ContentLength"] == len(PART2)
    assert head["PartsCount"] == 3


def test_list_parts_and_uploads_before_completion(s3, bucket):
    """An open upload is listed with its parts (number, size, ETag), and is
    no longer listed once completed."""
    key = "mp/listed.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, PARTS)

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert listed["UploadId"] == upload_id
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in listed["Parts"]] == [
        (n, len(d), quoted_md5(d)) for n, d in enumerate(PARTS, start=1)
    ]
    assert listed["IsTruncated"] is False

    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]

    complete(s3, bucket, key, upload_id, parts)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_list_parts_pagination(s3, bucket):
    """ListParts pages with MaxParts and NextPartNumberMarker."""
    key = "mp/paged.bin"
    upload_id = start_upload(s3, bucket, key)
    small = [bytes([i]) * 100 for i in range(5)]
    upload_parts(s3, bucket, key, upload_id, small)
    first = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] is True
    rest = s3.list_parts(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=first["NextPartNumberMarker"]
    )
    assert [p["PartNumber"] for p in rest["Parts"]] == [3, 4, 5]
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_uploads_are_listed_per_key_and_prefix(s3, bucket):
    """ListMultipartUploads filters by prefix and shows each upload id."""
    ids = {k: start_upload(s3, bucket, k) for k in ("x/one", "x/two", "y/three")}
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="x/")["Uploads"]
    assert sorted((u["Key"], u["UploadId"]) for u in uploads) == sorted(
        (k, ids[k]) for k in ("x/one", "x/two")
    )
    for k, upload_id in ids.items():
        s3.abort_multipart_upload(Bucket=bucket, Key=k, UploadId=upload_id)


def test_part_reupload_replaces_the_part(s3, bucket):
    """Uploading a part number again replaces it; completion uses the last."""
    key = "mp/redo.bin"
    upload_id = start_upload(s3, bucket, key)
    upload_parts(s3, bucket, key, upload_id, [random_bytes(5 * MIB, seed=50)])
    parts = upload_parts(s3, bucket, key, upload_id, [PART1, PART3])
    resp = complete(s3, bucket, key, upload_id, parts)
    assert resp["ETag"] == multipart_etag([PART1, PART3])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == PART1 + PART3


def test_completion_may_skip_part_numbers(s3, bucket):
    """Part numbers need not be contiguous: 1, 3, 7 is a valid 3-part object."""
    key = "mp/gaps.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = []
    for number, data in ((1, PART1), (3, PART2), (7, PART3)):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    assert complete(s3, bucket, key, upload_id, parts)["ETag"] == multipart_etag(PARTS)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(PARTS)


def test_abort_then_no_such_upload(s3, bucket):
    """After an abort the upload id is dead for every call, and no object appears."""
    key = "mp/aborted.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, [PART3])
    resp = s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3, "list_parts", code="NoSuchUpload", status=404, Bucket=bucket, Key=key, UploadId=upload_id)
    expect_error(
        s3, "upload_part", code="NoSuchUpload", status=404,
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=b"late",
    )
    expect_error(
        s3, "complete_multipart_upload", code="NoSuchUpload", status=404,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
    )
    expect_error(s3, "head_object", code="404", status=404, Bucket=bucket, Key=key)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_unknown_upload_id_is_no_such_upload(s3, bucket):
    """A made-up upload id is NoSuchUpload, not a server error."""
    expect_error(
        s3, "upload_part", code="NoSuchUpload", status=404,
        Bucket=bucket, Key="k", UploadId="not-an-upload-id", PartNumber=1, Body=b"x",
    )


def test_small_non_last_part_is_entity_too_small(s3, bucket):
    """Every part but the last must be at least 5 MiB."""
    key = "mp/small.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, [b"a" * 1024, b"b" * 1024])
    expect_error(
        s3, "complete_multipart_upload", code="EntityTooSmall", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
    )
    expect_error(s3, "head_object", code="404", status=404, Bucket=bucket, Key=key)


def test_wrong_part_etag_is_invalid_part(s3, bucket):
    """A part list naming an ETag the part does not have is refused."""
    key = "mp/wrong-etag.bin"
    upload_id = start_upload(s3, bucket, key)
    upload_parts(s3, bucket, key, upload_id, [PART3])
    expect_error(
        s3, "complete_multipart_upload", code="InvalidPart", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]},
    )


def test_missing_part_number_is_invalid_part(s3, bucket):
    """A part list naming a part that was never uploaded is refused."""
    key = "mp/missing-part.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, [PART1])  # 5 MiB: size is not the issue
    expect_error(
        s3, "complete_multipart_upload", code="InvalidPart", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": parts + [{"PartNumber": 2, "ETag": parts[0]["ETag"]}]},
    )


def test_parts_out_of_order_is_invalid_part_order(s3, bucket):
    """Part numbers in a completion must ascend."""
    key = "mp/order.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, [PART1, PART2])
    expect_error(
        s3, "complete_multipart_upload", code="InvalidPartOrder", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": list(reversed(parts))},
    )


def test_failed_completion_leaves_upload_open(s3, bucket):
    """A refused completion can be retried with a correct part list."""
    key = "mp/retry.bin"
    upload_id = start_upload(s3, bucket, key)
    parts = upload_parts(s3, bucket, key, upload_id, [PART1, PART2])
    expect_error(
        s3, "complete_multipart_upload", code="InvalidPartOrder", status=400,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": list(reversed(parts))},
    )
    assert complete(s3, bucket, key, upload_id, parts)["ETag"] == multipart_etag([PART1, PART2])


def test_upload_part_copy_with_ranges(s3, bucket):
    """UploadPartCopy takes byte ranges of an existing object as parts."""
    source = random_bytes(10 * MIB + 100, seed=60)
    s3.put_object(Bucket=bucket, Key="src.bin", Body=source)
    key = "mp/copied.bin"
    upload_id = start_upload(s3, bucket, key)
    # Two 5 MiB ranges (non-last parts must be >= 5 MiB), the second not
    # chunk-aligned, then a small uploaded last part.
    ranges = [(0, 5 * MIB - 1), (5 * MIB + 100, 10 * MIB + 99)]
    parts = []
    for number, (start, end) in enumerate(ranges, start=1):
        resp = s3.upload_part_copy(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "src.bin"}, CopySourceRange=f"bytes={start}-{end}",
        )
        assert resp["CopyPartResult"]["ETag"] == quoted_md5(source[start : end + 1])
        parts.append({"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]})
    extra = upload_parts(s3, bucket, key, upload_id, [b"tail"], first_number=3)
    resp = complete(s3, bucket, key, upload_id, parts + extra)
    expected = [source[s : e + 1] for s, e in ranges] + [b"tail"]
    assert resp["ETag"] == multipart_etag(expected)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(expected)


def test_upload_part_copy_of_whole_object_from_other_bucket(s3, bucket_factory):
    """UploadPartCopy without a range copies the whole source, across buckets."""
    src_bucket, dst_bucket = bucket_factory("pc-src"), bucket_factory("pc-dst")
    s3.put_object(Bucket=src_bucket, Key="whole", Body=PART3)
    upload_id = start_upload(s3, dst_bucket, "joined")
    resp = s3.upload_part_copy(
        Bucket=dst_bucket, Key="joined", UploadId=upload_id, PartNumber=1,
        CopySource={"Bucket": src_bucket, "Key": "whole"},
    )
    complete(s3, dst_bucket, "joined", upload_id, [{"PartNumber": 1, "ETag": resp["CopyPartResult"]["ETag"]}])
    assert s3.get_object(Bucket=dst_bucket, Key="joined")["Body"].read() == PART3


def test_complete_replaces_existing_object(s3, bucket):
    """Completing an upload replaces a single-PUT object at the key."""
    s3.put_object(Bucket=bucket, Key="mp/over.bin", Body=b"old single put")
    upload_id = start_upload(s3, bucket, "mp/over.bin")
    parts = upload_parts(s3, bucket, "mp/over.bin", upload_id, [PART3])
    complete(s3, bucket, "mp/over.bin", upload_id, parts)
    got = s3.get_object(Bucket=bucket, Key="mp/over.bin")
    assert got["Body"].read() == PART3
    assert got["ETag"] == multipart_etag([PART3])


def sha256_file(path, chunk=8 * MIB):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_random_file(path, size, seed, chunk=64 * MIB):
    """Writes `size` pseudo-random bytes; returns their sha256."""
    rng = random.Random(seed)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(chunk, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


@pytest.mark.slow
def test_one_gib_upload_file_and_download_file(gateway, tmp_path):
    """boto3's transfer manager (64 MiB parts, parallel threads, ranged
    parallel download) moves 1 GiB through the gateway intact."""
    size, chunk = 1024 * MIB, 64 * MIB
    client = make_client(gateway, max_pool_connections=16)
    src, dst = tmp_path / "upload.bin", tmp_path / "download.bin"
    try:
        digest = write_random_file(src, size, seed=1234)
        config = TransferConfig(
            multipart_threshold=chunk,
            multipart_chunksize=chunk,
            max_concurrency=4,
            preferred_transfer_client="classic",
        )
        with temporary_bucket(client, "onegib") as bucket:
            client.upload_file(str(src), bucket, "one-gib.bin", Config=config)
            head = client.head_object(Bucket=bucket, Key="one-gib.bin")
            assert head["ContentLength"] == size
            assert head["ETag"].endswith(f'-{size // chunk}"')
            client.download_file(bucket, "one-gib.bin", str(dst), Config=config)
            assert dst.stat().st_size == size
            assert sha256_file(dst) == digest
    finally:
        for p in (src, dst):
            if p.exists():
                os.unlink(p)

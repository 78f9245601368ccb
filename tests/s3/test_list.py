"""ListObjectsV2 and ListObjects (v1): prefix, delimiter, pagination,
StartAfter, URL encoding, KeyCount and S3's byte ordering."""

import concurrent.futures
from urllib.parse import unquote_plus

import pytest

from s3util import list_all_v2, model_list, utf8

TREE = [
    "docs/readme.md",
    "photos/2024/a.jpg",
    "photos/2024/b.jpg",
    "photos/2025/c.jpg",
    "photos/top.jpg",
    "root.txt",
]


def put_keys(s3, bucket, keys, parallel=8):
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=utf8(k)), keys))


def listed(resp):
    keys = [o["Key"] for o in resp.get("Contents", [])]
    prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
    return keys, prefixes


@pytest.fixture
def tree(s3, bucket):
    put_keys(s3, bucket, TREE)
    return bucket


@pytest.mark.parametrize(
    "prefix, delimiter",
    [
        ("", None),
        ("", "/"),
        ("photos/", None),
        ("photos/", "/"),
        ("photos/20", "/"),
        ("pho", None),
        ("photos/2024/", "/"),
        ("nothing-here/", "/"),
        ("", "o"),  # a delimiter other than '/'
        ("photos/", "2"),
    ],
)
def test_prefix_and_delimiter_match_the_model(s3, tree, prefix, delimiter):
    """Contents, CommonPrefixes and KeyCount are what S3 semantics give."""
    params = {"Prefix": prefix}
    if delimiter:
        params["Delimiter"] = delimiter
    resp = s3.list_objects_v2(Bucket=tree, **params)
    want_keys, want_prefixes = model_list(TREE, prefix, delimiter)
    keys, prefixes = listed(resp)
    assert keys == want_keys
    assert prefixes == want_prefixes
    assert resp["KeyCount"] == len(want_keys) + len(want_prefixes)
    assert resp["IsTruncated"] is False
    assert resp.get("Prefix", "") == prefix
    if delimiter:
        assert resp["Delimiter"] == delimiter


def test_objects_in_listing_carry_size_etag_and_date(s3, tree):
    """Each listed object has Size, the same ETag as HEAD, and LastModified."""
    resp = s3.list_objects_v2(Bucket=tree, Prefix="root.txt")
    (entry,) = resp["Contents"]
    assert entry["Size"] == len(b"root.txt")
    head = s3.head_object(Bucket=tree, Key="root.txt")
    assert entry["ETag"] == head["ETag"]
    assert entry["LastModified"] is not None
    assert entry.get("StorageClass", "STANDARD") == "STANDARD"


def test_manual_pagination_with_continuation_token(s3, bucket):
    """MaxKeys pages with IsTruncated/NextContinuationToken cover every key once, in order."""
    keys = [f"k{i:03d}" for i in range(25)]
    put_keys(s3, bucket, keys)
    seen, token, pages = [], None, 0
    while True:
        params = {"Bucket": bucket, "MaxKeys": 10}
        if token:
            params["ContinuationToken"] = token
        resp = s3.list_objects_v2(**params)
        pages += 1
        page_keys, _ = listed(resp)
        assert resp["KeyCount"] == len(page_keys) <= 10
        assert resp["MaxKeys"] == 10
        seen += page_keys
        if not resp["IsTruncated"]:
            assert "NextContinuationToken" not in resp
            break
        token = resp["NextContinuationToken"]
        assert token
    assert seen == keys
    assert pages == 3


@pytest.mark.parametrize("page_size", [1, 7, 1000])
def test_paginator_walks_everything(s3, bucket, page_size):
    """boto3's paginator at several page sizes yields every key once, in order, in the expected number of pages."""
    keys = [f"p/{i % 5}/{i:04d}" for i in range(40)]
    put_keys(s3, bucket, keys)
    got, prefixes, pages = list_all_v2(s3, bucket, page_size=page_size)
    assert got == sorted(keys, key=utf8)
    assert prefixes == []
    assert len(pages) == -(-len(keys) // page_size)


def test_pagination_with_delimiter_counts_prefixes(s3, bucket):
    """Common prefixes count towards MaxKeys and a continuation after a
    prefix resumes after that whole subtree (no prefix listed twice)."""
    keys = [f"dir{i:02d}/file{j}" for i in range(12) for j in range(3)] + ["zz-top"]
    put_keys(s3, bucket, keys)
    got_keys, got_prefixes, pages = list_all_v2(s3, bucket, page_size=5, Delimiter="/")
    want_keys, want_prefixes = model_list(keys, "", "/")
    assert got_prefixes == want_prefixes
    assert got_keys == want_keys
    for page in pages:
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        assert page["KeyCount"] <= 5
    assert len(pages) == 3  # 13 entries, 5 per page


@pytest.mark.parametrize("start_after, expected_first", [("k05", "k06"), ("k05a", "k06"), ("", "k00"), ("a", "k00")])
def test_start_after(s3, bucket, start_after, expected_first):
    """StartAfter skips keys up to and including it, whether or not it exists."""
    keys = [f"k{i:02d}" for i in range(10)]
    put_keys(s3, bucket, keys)
    resp = s3.list_objects_v2(Bucket=bucket, StartAfter=start_after)
    got, _ = listed(resp)
    assert got == model_list(keys, start_after=start_after or None)[0]
    assert got[0] == expected_first


def test_start_after_last_key_is_empty(s3, bucket):
    """StartAfter the last key gives an empty, untruncated page."""
    put_keys(s3, bucket, ["a", "b"])
    resp = s3.list_objects_v2(Bucket=bucket, StartAfter="b")
    assert resp["KeyCount"] == 0
    assert "Contents" not in resp


SPECIAL_KEYS = ["a+b", "c d", "e%f", "g/h i", "plus+/x", "ü/ß", "tab\tkey", "amp&lt;"]


def test_keys_come_back_exactly_with_automatic_url_encoding(s3, bucket):
    """boto3 asks for EncodingType=url itself and decodes the answer, so the
    keys and prefixes must come back exactly as written. A server that leaves
    '+' unencoded makes boto3 turn it into a space."""
    put_keys(s3, bucket, SPECIAL_KEYS)
    resp = s3.list_objects_v2(Bucket=bucket)
    assert resp.get("EncodingType") == "url"
    assert listed(resp)[0] == sorted(SPECIAL_KEYS, key=utf8)
    resp = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    keys, prefixes = listed(resp)
    want_keys, want_prefixes = model_list(SPECIAL_KEYS, "", "/")
    assert keys == want_keys
    assert prefixes == want_prefixes
    resp = s3.list_objects_v2(Bucket=bucket, Prefix="plus+/")
    assert listed(resp)[0] == ["plus+/x"]
    assert resp["Prefix"] == "plus+/"


def test_explicit_url_encoding_returns_encoded_keys(s3, bucket):
    """With EncodingType=url passed explicitly, boto3 does not decode: the
    raw values are the server's encoding, which must decode (as botocore
    does, with unquote_plus) to the exact keys."""
    put_keys(s3, bucket, SPECIAL_KEYS)
    resp = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert resp["EncodingType"] == "url"
    raw = listed(resp)[0]
    assert [unquote_plus(k) for k in raw] == sorted(SPECIAL_KEYS, key=utf8)
    encoded = dict(zip(sorted(SPECIAL_KEYS, key=utf8), raw))
    assert encoded["c d"] != "c d", "a space must be encoded"
    assert "+" not in encoded["a+b"], "'+' must be encoded as %2B"
    assert "%" in encoded["e%f"] and encoded["e%f"] != "e%f"


def test_ordering_is_utf8_byte_order_across_directories(s3, bucket):
    """The classic trap: 'a/b' sorts between 'a.d' and 'a0' ('/' is 0x2F),
    although 'a' is a directory on the server."""
    keys = ["a0", "a/b", "a.d", "a-c"]
    put_keys(s3, bucket, keys)
    got, _ = listed(s3.list_objects_v2(Bucket=bucket))
    assert got == ["a-c", "a.d", "a/b", "a0"]
    got_keys, got_prefixes = listed(s3.list_objects_v2(Bucket=bucket, Delimiter="/"))
    assert got_keys == ["a-c", "a.d", "a0"]
    assert got_prefixes == ["a/"]
    paged, _, _ = list_all_v2(s3, bucket, page_size=1)
    assert paged == ["a-c", "a.d", "a/b", "a0"]


def test_ordering_of_non_ascii_and_case(s3, bucket):
    """Uppercase before lowercase, ASCII before multi-byte UTF-8."""
    # "é" and "é/x" would be a file and a directory of one name: use "ê/x".
    keys = ["b", "B", "~", "é", "日本", "z", "Z/x", "ê/x"]
    put_keys(s3, bucket, keys)
    got, _ = listed(s3.list_objects_v2(Bucket=bucket))
    assert got == sorted(keys, key=utf8)


def test_max_keys_zero_returns_nothing(s3, tree):
    """MaxKeys=0 is legal and returns no entries."""
    resp = s3.list_objects_v2(Bucket=tree, MaxKeys=0)
    assert resp["KeyCount"] == 0
    assert "Contents" not in resp


# ---- ListObjects (v1)


def test_v1_marker_pagination(s3, bucket):
    """v1 pages by Marker: without a delimiter the client continues after the
    last key of the page (NextMarker is optional there)."""
    keys = [f"m{i:02d}" for i in range(15)]
    put_keys(s3, bucket, keys)
    seen, marker = [], ""
    for _ in range(10):
        resp = s3.list_objects(Bucket=bucket, Marker=marker, MaxKeys=6)
        page, _ = listed(resp)
        assert len(page) <= 6
        assert resp.get("Marker", "") == marker
        seen += page
        if not resp["IsTruncated"]:
            break
        marker = resp.get("NextMarker") or page[-1]
    assert seen == keys


def test_v1_delimiter_with_next_marker(s3, tree):
    """With a delimiter, v1 returns CommonPrefixes and, when truncated, a
    NextMarker that resumes after the last key or prefix."""
    resp = s3.list_objects(Bucket=tree, Delimiter="/")
    keys, prefixes = listed(resp)
    want_keys, want_prefixes = model_list(TREE, "", "/")
    assert keys == want_keys
    assert prefixes == want_prefixes

    entries, marker = [], ""
    for _ in range(10):
        resp = s3.list_objects(Bucket=tree, Delimiter="/", MaxKeys=1, Marker=marker)
        k, p = listed(resp)
        assert len(k) + len(p) <= 1
        entries += k + p
        if not resp["IsTruncated"]:
            break
        marker = resp["NextMarker"]
    assert sorted(entries, key=utf8) == sorted(want_keys + want_prefixes, key=utf8)
    assert len(entries) == len(set(entries))


def test_v1_prefix_and_delimiter(s3, tree):
    """v1 groups by delimiter under a prefix like v2 does."""
    resp = s3.list_objects(Bucket=tree, Prefix="photos/", Delimiter="/")
    keys, prefixes = listed(resp)
    assert keys == ["photos/top.jpg"]
    assert prefixes == ["photos/2024/", "photos/2025/"]
    assert resp["Prefix"] == "photos/"


def test_v1_paginator(s3, bucket):
    """boto3's v1 paginator (Marker from the last key) walks every key once."""
    keys = [f"v/{i:03d}" for i in range(23)]
    put_keys(s3, bucket, keys)
    got = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4}):
        got += [o["Key"] for o in page.get("Contents", [])]
    assert got == keys

"""A 10,000-key listing walk compared with a sorted Python model.

The keys spread over nested prefixes (d{i%37}/s{i%11}/k{i}), so listings
cross many directories, page boundaries land inside and between them, and
delimiter listings must skip whole subtrees. Plain HTTP only: this tests
the listing logic, which does not depend on the transport.
"""

import concurrent.futures

import pytest

from s3util import list_all_v2, make_client, model_list, temporary_bucket, utf8

N_KEYS = 10_000
KEYS = [f"d{i % 37}/s{i % 11}/k{i}" for i in range(N_KEYS)]

CASES = [
    # (prefix, delimiter, page size)
    ("", None, None),
    ("", None, 997),
    ("", "/", None),
    ("", "/", 5),
    ("d1", "/", 3),
    ("d17/", "/", None),
    ("d36/", "/", 4),
    ("d5/s3/", "/", 50),
    ("d5/s3/", None, 7),
    ("d2/", "k", 6),  # a non-'/' delimiter folds d2/s*/k... into d2/s*/k
    ("d3", "s", None),
    ("d9/s10/k9", None, None),
    ("zzz", "/", None),
]


@pytest.fixture(scope="module")
def walk_bucket(gateway):
    """One bucket filled once with all keys by 16 parallel writers."""
    client = make_client(gateway, max_pool_connections=32)
    with temporary_bucket(client, "walk") as bucket:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(client.put_object, Bucket=bucket, Key=k, Body=utf8(k)) for k in KEYS]
            for f in concurrent.futures.as_completed(futures):
                f.result()
        yield client, bucket


@pytest.mark.slow
@pytest.mark.parametrize("prefix, delimiter, page_size", CASES)
def test_walk_matches_model(walk_bucket, prefix, delimiter, page_size):
    """Paginated ListObjectsV2 (all pages joined) equals the model: same keys
    and common prefixes, in UTF-8 byte order, none twice, pages within MaxKeys."""
    client, bucket = walk_bucket
    params = {"Prefix": prefix}
    if delimiter:
        params["Delimiter"] = delimiter
    keys, prefixes, pages = list_all_v2(client, bucket, page_size=page_size, **params)
    want_keys, want_prefixes = model_list(KEYS, prefix, delimiter)
    assert len(keys) == len(want_keys)
    assert keys == want_keys
    assert prefixes == want_prefixes
    limit = page_size or 1000
    for page in pages:
        entries = len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        assert page["KeyCount"] == entries <= limit
    assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]


@pytest.mark.slow
def test_walk_with_start_after(walk_bucket):
    """StartAfter in the middle of a deep tree resumes at the right key."""
    client, bucket = walk_bucket
    start = "d20/s5/k5000"
    keys, _, _ = list_all_v2(client, bucket, StartAfter=start)
    assert keys == model_list(KEYS, start_after=start)[0]


@pytest.mark.slow
def test_walk_v1_with_delimiter_at_every_level(walk_bucket):
    """ListObjects (v1) paginated with markers, descending level by level
    through the delimiter listing, reaches exactly every key."""
    client, bucket = walk_bucket
    found = []
    pending = [""]
    paginator = client.get_paginator("list_objects")
    while pending:
        prefix = pending.pop()
        for page in paginator.paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": 250}
        ):
            found += [o["Key"] for o in page.get("Contents", [])]
            pending += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert sorted(found, key=utf8) == sorted(KEYS, key=utf8)
    assert len(found) == len(set(found))


@pytest.mark.slow
def test_walk_key_count_totals(walk_bucket):
    """Every top-level directory holds the number of keys the formula gives."""
    client, bucket = walk_bucket
    for d in (0, 18, 36):
        keys, _, _ = list_all_v2(client, bucket, Prefix=f"d{d}/")
        assert len(keys) == sum(1 for i in range(N_KEYS) if i % 37 == d)

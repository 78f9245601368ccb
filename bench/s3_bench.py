#!/usr/bin/env python3
"""S3 benchmark, run against one endpoint at a time with the same client:
1 GiB as 16 objects of 64 MiB PUT and GET over 4 parallel streams, and 2000
objects of 64 KiB PUT, GET and LIST. Prints MB/s, ops/s, p50/p99 latency
and the server's peak RSS (VmHWM of --pid). `--disk-baseline DIR` also
reads 1 GiB from a file in DIR (page cache dropped) with 4 streams, the
local-disk yardstick for large GETs.

Used by bench/bench-s3, which runs the gateway and s3s-fs side by side."""

import argparse
import concurrent.futures as cf
import os
import statistics
import time

import boto3
import botocore.config

MIB = 1 << 20


def client(endpoint, ak, sk):
    cfg = botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=32, retries={"total_max_attempts": 1})
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1", config=cfg)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_parallel(n, threads, fn):
    """Runs fn(i) for i < n on `threads` threads; returns (wall, latencies)."""
    lat = [0.0] * n
    def one(i):
        lat[i] = timed(lambda: fn(i))
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, range(n)))
    return time.perf_counter() - t, lat


def pct(lat, p):
    s = sorted(lat)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000


def peak_rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def disk_baseline(d):
    path = os.path.join(d, "baseline.bin")
    block = os.urandom(64 * MIB)
    with open(path, "wb") as f:
        for _ in range(16):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    def read(i):
        os.pread(fd, 64 * MIB, i * 64 * MIB)
    wall, _ = run_parallel(16, 4, read)
    os.close(fd)
    os.unlink(path)
    return 1024 / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--ak", required=True)
    ap.add_argument("--sk", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--disk-baseline")
    a = ap.parse_args()
    s3 = client(a.endpoint, a.ak, a.sk)
    bucket = "bench-" + str(int(time.time() * 1000))
    s3.create_bucket(Bucket=bucket)
    rows = []
    big = os.urandom(64 * MIB)
    wall, lat = run_parallel(16, 4, lambda i: s3.put_object(Bucket=bucket, Key=f"big/{i}", Body=big))
    rows.append(("PUT 16 x 64 MiB, 4 streams", f"{1024 / wall:.0f} MB/s", pct(lat, 50), pct(lat, 99)))
    wall, lat = run_parallel(16, 4, lambda i: s3.get_object(Bucket=bucket, Key=f"big/{i}")["Body"].read())
    get_mbps = 1024 / wall
    rows.append(("GET 16 x 64 MiB, 4 streams", f"{get_mbps:.0f} MB/s", pct(lat, 50), pct(lat, 99)))
    small = os.urandom(64 * 1024)
    wall, lat = run_parallel(2000, 8, lambda i: s3.put_object(Bucket=bucket, Key=f"small/{i:05}", Body=small))
    rows.append(("PUT 2000 x 64 KiB, 8 threads", f"{2000 / wall:.0f} ops/s", pct(lat, 50), pct(lat, 99)))
    wall, lat = run_parallel(2000, 8, lambda i: s3.get_object(Bucket=bucket, Key=f"small/{i:05}")["Body"].read())
    rows.append(("GET 2000 x 64 KiB, 8 threads", f"{2000 / wall:.0f} ops/s", pct(lat, 50), pct(lat, 99)))
    def list_all(_):
        n = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="small/"):
            n += page.get("KeyCount", 0)
        assert n == 2000, n
    wall, lat = run_parallel(10, 1, list_all)
    rows.append(("LIST 2000 keys (2 pages), x10", f"{10 / wall:.1f} listings/s", pct(lat, 50), pct(lat, 99)))
    print(f"== {a.label}: peak RSS {peak_rss_mib(a.pid):.0f} MiB" if a.pid else f"== {a.label}")
    for name, rate, p50, p99 in rows:
        print(f"  {name:<32} {rate:>16}   p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")
    if a.disk_baseline:
        disk = disk_baseline(a.disk_baseline)
        print(f"  local disk read 1 GiB, 4 streams {disk:.0f} MB/s; large GET / disk = {get_mbps / disk:.2f}")


if __name__ == "__main__":
    main()

"""Checks of tests/diskfull/diskfull-suite (see there): the gateway on a
small tmpfs is filled through S3 and NFS, then space is freed."""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

OBJECT_BYTES = 4 << 20
FILL_OBJECTS_MAX = 200  # 800 MiB: far more than the 160 MiB volume holds
RESERVED_MIB = 24
RECOVERY_WAIT_SECS = 60

failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(("PASS " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        failures.append(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"gateway exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"port {port} never opened")


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def nfs_errors(port: int, status: str) -> float:
    """gateway_nfs_errors_total summed over procedures for `status`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("gateway_nfs_errors_total{") and f'status="{status}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--volume", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    s3_port, nfs_port, metrics_port = free_port(), free_port(), free_port()
    cfg = os.path.join(a.tmp, "gateway.toml")
    with open(cfg, "w") as f:
        f.write(
            f'free_space_reserved_mib = {RESERVED_MIB}\ngc_grace_secs = 0\ngc_interval_secs = 1\n'
            f'metrics_listen = "127.0.0.1:{metrics_port}"\n[nfs_export_defaults]\nsquash = "none"\n'
        )
    key, secret = "diskfullroot", secrets.token_hex(20)
    env = dict(os.environ, GATEWAY_ACCESS_KEY=key, GATEWAY_SECRET_KEY=secret, GATEWAY_LOG="warn")
    log = open(os.path.join(a.tmp, "gateway.log"), "w")
    gw = subprocess.Popen(
        [a.gateway, "serve", "--config", cfg, "--data-dir", os.path.join(a.volume, "data"),
         "--s3-listen", f"127.0.0.1:{s3_port}", "--nfs-listen", f"127.0.0.1:{nfs_port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(s3_port, gw)
        wait_port(nfs_port, gw)
        run(a, gw, key, secret, s3_port, nfs_port, metrics_port)
    finally:
        gw.terminate()
        gw.wait(timeout=60)
    if failures:
        print(f"diskfull checks: {len(failures)} failed: {', '.join(failures)}")
        with open(os.path.join(a.tmp, "gateway.log")) as f:
            print("".join(f.readlines()[-30:]))
        sys.exit(1)
    print("diskfull checks: all passed")


def run(a, gw, key, secret, s3_port, nfs_port, metrics_port) -> None:
    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", aws_access_key_id=key, aws_secret_access_key=secret,
        region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="full")
    # 1. Fill the volume through S3: every PUT is either acknowledged or
    # refused with 507 InsufficientStorage.
    acked: dict[str, str] = {}
    refused = None
    for i in range(FILL_OBJECTS_MAX):
        body = secrets.token_bytes(OBJECT_BYTES)
        try:
            s3.put_object(Bucket="full", Key=f"obj/{i:04}", Body=body)
            acked[f"obj/{i:04}"] = hashlib.md5(body).hexdigest()
        except ClientError as e:
            refused = e
            break
    check("s3-put-fills-then-is-refused", refused is not None and len(acked) > 0, f"{len(acked)} acknowledged")
    if refused is not None:
        r = refused.response
        check("s3-put-refused-507-insufficient-storage",
              r["ResponseMetadata"]["HTTPStatusCode"] == 507 and r["Error"]["Code"] == "InsufficientStorage", str(r))
    # 2. A multipart upload's part is refused the same way.
    up = s3.create_multipart_upload(Bucket="full", Key="mpu")["UploadId"]
    try:
        s3.upload_part(Bucket="full", Key="mpu", UploadId=up, PartNumber=1, Body=secrets.token_bytes(8 << 20))
        check("s3-upload-part-refused-507", False, "the part was accepted on a full volume")
    except ClientError as e:
        check("s3-upload-part-refused-507", e.response["ResponseMetadata"]["HTTPStatusCode"] == 507, str(e.response))
    s3.abort_multipart_upload(Bucket="full", Key="mpu", UploadId=up)
    # 3. An NFS write of a file is refused with NFS3ERR_NOSPC (nfs-cp does
    # not print the status; the gateway's per-status error counter does).
    src = os.path.join(a.tmp, "nfs-src")
    with open(src, "wb") as f:
        f.write(secrets.token_bytes(16 << 20))
    url = f"nfs://127.0.0.1/full/nfs-file?nfsport={nfs_port}&mountport={nfs_port}"
    before = nfs_errors(metrics_port, "NFS3ERR_NOSPC")
    p = subprocess.run(["nfs-cp", src, url], capture_output=True, text=True, timeout=120)
    nospc = nfs_errors(metrics_port, "NFS3ERR_NOSPC") - before
    check("nfs-write-refused-nospc", p.returncode != 0 and nospc > 0,
          f"exit {p.returncode}, NOSPC replies {nospc}: {(p.stdout + p.stderr).strip()}")
    # What was written before the refusal stays, no more than was sent.
    partial = s3.head_object(Bucket="full", Key="nfs-file")["ContentLength"]
    check("nfs-partial-file-within-what-was-sent", partial <= 16 << 20, str(partial))
    # 4. Nothing acknowledged is damaged, the stores are not poisoned, and
    # metadata is consistent.
    bad = [k for k, md5 in acked.items()
           if hashlib.md5(s3.get_object(Bucket="full", Key=k)["Body"].read()).hexdigest() != md5]
    check("acknowledged-objects-intact", not bad, f"damaged: {bad[:5]}")
    status, body = readyz(metrics_port)
    check("readyz-200-on-a-full-volume", status == 200, f"{status} {body!r}")
    fsck = subprocess.run([a.gateway, "fsck", "--data-dir", os.path.join(a.volume, "data")],
                          capture_output=True, text=True, timeout=300)
    check("fsck-clean-on-a-full-volume", fsck.returncode == 0, fsck.stdout[-2000:] + fsck.stderr[-2000:])
    # 5. Metadata changes still work on the full volume: delete half of the
    # objects; once GC has reclaimed their chunks, writes succeed again.
    doomed = sorted(acked)[: len(acked) // 2 + 1]
    for k in doomed:
        s3.delete_object(Bucket="full", Key=k)
        del acked[k]
    check("deletes-work-on-a-full-volume", True)
    deadline, ok, last = time.time() + RECOVERY_WAIT_SECS, False, None
    while time.time() < deadline and not ok:
        body = secrets.token_bytes(OBJECT_BYTES)
        try:
            s3.put_object(Bucket="full", Key="after", Body=body)
            acked["after"] = hashlib.md5(body).hexdigest()
            ok = True
        except ClientError as e:
            last = e.response
            time.sleep(1)
    check("s3-put-works-once-space-is-freed", ok, str(last))
    url2 = url.replace("/nfs-file?", "/nfs-file-2?")
    p = subprocess.run(["nfs-cp", src, url2], capture_output=True, text=True, timeout=120)
    check("nfs-write-works-once-space-is-freed", p.returncode == 0, p.stdout + p.stderr)
    got = s3.get_object(Bucket="full", Key="nfs-file-2")["Body"].read()
    with open(src, "rb") as f:
        check("nfs-written-file-reads-back-over-s3", got == f.read())
    bad = [k for k, md5 in acked.items()
           if hashlib.md5(s3.get_object(Bucket="full", Key=k)["Body"].read()).hexdigest() != md5]
    check("objects-intact-after-recovery", not bad, f"damaged: {bad[:5]}")
    status, body = readyz(metrics_port)
    check("readyz-200-after-recovery", status == 200, f"{status} {body!r}")


if __name__ == "__main__":
    main()

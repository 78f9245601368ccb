"""The checks of tests/upstream/upstream-suite: two gateways caching a Ceph RGW
bucket, driven with boto3 (against the gateways and directly against RGW) and
the Linux kernel NFS client in the nfs-vm guest (mounting gateway 1, through
tests/cross/guest-agent). The checks run in order and build on each other
(the dataset seeded first is read, changed, cached, evicted...).

    upstream_checks.py --rgw URL --rgw-keys AK SK --rgw-script PATH --tmp DIR
                       --gateway-bin PATH --out DIR [--vm-pid PID] [--only RE] [--skip RE]

Prints PASS/FAIL per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cross"))

from crossutil import Guest, Results, client, deterministic_bytes, error_code, q  # noqa: E402

MiB = 1 << 20
BUCKET, UP_BUCKET, PREFIX = "cache", "datasets", "train/"
ROOT = ("suite-root", "suite-root-secret-0001")
# The bindings' revalidation time is 1 s: waiting this long sees upstream changes.
REVALIDATE_S = 1.3


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def eventually(fn, what: str, timeout: float = 30.0, every: float = 0.25):
    """Calls fn until it returns a true value (returned) or raises no more."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = fn()
            if got:
                return got
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s (last error: {last})")


class Suite:
    def __init__(self, a):
        self.a = a
        self.tmp = Path(a.tmp)
        self.rgw = client(a.rgw, a.rgw_keys[0], a.rgw_keys[1])
        self.g1 = self.gw_client("g1")
        self.g2 = self.gw_client("g2")
        self.guest = Guest(Path(a.out), vm_pid=a.vm_pid)
        self.data: dict[str, bytes] = {}

    def gw_client(self, g: str):
        port = (self.tmp / g / "s3port").read_text().strip()
        return client(f"http://127.0.0.1:{port}", *ROOT)

    def admin(self, g: str, *args: str) -> str:
        r = subprocess.run(
            [self.a.gateway_bin, *args, "--data-dir", str(self.tmp / g / "data")], capture_output=True, text=True
        )
        assert r.returncode == 0, f"gateway {' '.join(args)}: {r.stderr.strip()}"
        return r.stdout

    def up_get(self, key: str) -> bytes:
        return self.rgw.get_object(Bucket=UP_BUCKET, Key=PREFIX + key)["Body"].read()

    def up_missing(self, key: str) -> bool:
        return error_code(self.rgw.head_object, Bucket=UP_BUCKET, Key=PREFIX + key)[0] == 404

    def get(self, s3, key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    # ------------------------------------------------------------------ checks

    def seed_upstream(self):
        self.rgw.create_bucket(Bucket=UP_BUCKET)
        for i in range(12):
            self.data[f"imagenet/{i:03d}.jpg"] = deterministic_bytes(90_000 + 7_919 * i, seed=i)
        self.data["shards/shard-000.tar"] = deterministic_bytes(9 * MiB + 123, seed=100)
        self.data["imagenet/cold.jpg"] = deterministic_bytes(200_000, seed=101)
        for k, v in self.data.items():
            self.rgw.put_object(Bucket=UP_BUCKET, Key=PREFIX + k, Body=v)
        # Outside the bound prefix: never seen through the gateways.
        self.rgw.put_object(Bucket=UP_BUCKET, Key="eval/secret.bin", Body=b"not under train/")
        return f"{len(self.data)} objects under s3://{UP_BUCKET}/{PREFIX} in Ceph RGW"

    def list_through_cache(self):
        keys = []
        for page in self.g1.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 5}):
            keys += [o["Key"] for o in page.get("Contents", [])]
        assert sorted(keys) == sorted(self.data), f"listed {sorted(keys)}"
        r = self.g1.list_objects_v2(Bucket=BUCKET, Delimiter="/")
        assert [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["imagenet/", "shards/"], r.get("CommonPrefixes")
        sizes = {o["Key"]: o["Size"] for o in self.g1.list_objects_v2(Bucket=BUCKET, Prefix="imagenet/")["Contents"]}
        assert all(sizes[k] == len(self.data[k]) for k in sizes), sizes

    def read_through_cache_s3(self):
        for k, v in self.data.items():
            if k == "imagenet/cold.jpg":
                continue  # left uncached for the outage check
            got = self.get(self.g1, k)
            assert sha(got) == sha(v), f"{k}: wrong bytes"
        r = self.g1.get_object(Bucket=BUCKET, Key="shards/shard-000.tar", Range="bytes=5000000-5100000")
        assert r["Body"].read() == self.data["shards/shard-000.tar"][5_000_000:5_100_001]
        assert r["ContentRange"] == f"bytes 5000000-5100000/{len(self.data['shards/shard-000.tar'])}"

    def read_through_cache_kernel_nfs(self):
        self.guest.wait_ready()
        out = self.guest.sh(f"cd {BUCKET} && sha256sum imagenet/0*.jpg shards/shard-000.tar")
        got = {line.split()[1]: line.split()[0] for line in out.splitlines()}
        want = {k: sha(v) for k, v in self.data.items() if k != "imagenet/cold.jpg"}
        assert got == want, f"kernel client read {got}"

    def checkpoint_over_nfs_lands_upstream(self):
        out = self.guest.sh(
            f"mkdir -p {BUCKET}/ckpt && cd {BUCKET}/ckpt && dd if=/dev/urandom of=model.pt.tmp bs=1M count=12 "
            "status=none && sync && mv model.pt.tmp model.pt && sha256sum model.pt"
        )
        want = out.split()[0]
        flushed = self.admin("g1", "cache", "flush", BUCKET)
        assert "uploaded" in flushed, flushed
        got = self.up_get("ckpt/model.pt")
        assert sha(got) == want and len(got) == 12 * MiB, "RGW holds other bytes than the kernel client wrote"
        assert self.up_missing("ckpt/model.pt.tmp"), "the temporary name reached RGW and stayed"
        self.data["ckpt/model.pt"] = got
        return f"12 MiB checkpoint written by the kernel client, in RGW after `gateway cache flush`: {flushed.strip()}"

    def s3_write_through_and_deletes(self):
        body = deterministic_bytes(3 * MiB + 5, seed=200)
        self.g1.put_object(Bucket=BUCKET, Key="ckpt/s3.bin", Body=body)
        assert self.up_get("ckpt/s3.bin") == body, "write-through: not in RGW when the PUT was answered"
        self.g1.delete_object(Bucket=BUCKET, Key="ckpt/s3.bin")
        assert self.up_missing("ckpt/s3.bin"), "S3 delete did not reach RGW"
        self.rgw.put_object(Bucket=UP_BUCKET, Key=PREFIX + "ckpt/old.bin", Body=b"old")
        time.sleep(REVALIDATE_S)
        self.guest.sh(f"cat {BUCKET}/ckpt/old.bin >/dev/null && rm {BUCKET}/ckpt/old.bin")
        assert self.up_missing("ckpt/old.bin"), "NFS remove did not reach RGW"

    def upstream_change_revalidates(self):
        new = deterministic_bytes(120_000, seed=300)
        self.rgw.put_object(Bucket=UP_BUCKET, Key=PREFIX + "imagenet/000.jpg", Body=new)
        self.rgw.delete_object(Bucket=UP_BUCKET, Key=PREFIX + "imagenet/011.jpg")
        time.sleep(REVALIDATE_S)
        assert self.get(self.g1, "imagenet/000.jpg") == new, "S3 still serves the old version"
        out = self.guest.sh(f"sha256sum {BUCKET}/imagenet/000.jpg; ls {BUCKET}/imagenet")
        assert sha(new) in out, f"kernel client: {out}"
        assert "011.jpg" not in out, "an object deleted upstream is still listed over NFS"
        assert error_code(self.g1.head_object, Bucket=BUCKET, Key="imagenet/011.jpg")[0] == 404
        self.data["imagenet/000.jpg"] = new
        del self.data["imagenet/011.jpg"]

    def conflict_keeps_both(self):
        key = "imagenet/001.jpg"
        self.guest.sh(f"printf 'local edit' | dd of={BUCKET}/{key} conv=notrunc status=none && sync")
        self.rgw.put_object(Bucket=UP_BUCKET, Key=PREFIX + key, Body=b"upstream edit")
        self.admin("g1", "cache", "flush", BUCKET)
        self.admin("g1", "cache", "flush", BUCKET)
        assert self.up_get(key) == b"upstream edit", "the local change overwrote a newer upstream version"
        listed = self.rgw.list_objects_v2(Bucket=UP_BUCKET, Prefix=PREFIX + key + ".conflict-").get("Contents", [])
        assert len(listed) == 1, listed
        kept = self.rgw.get_object(Bucket=UP_BUCKET, Key=listed[0]["Key"])["Body"].read()
        want = b"local edit" + self.data[key][10:]
        assert kept == want, "the conflict copy holds other bytes than the local change"
        self.data[key] = b"upstream edit"
        self.data[listed[0]["Key"][len(PREFIX):]] = want
        return f"kept as {listed[0]['Key']}"

    def two_gateways_one_bucket(self):
        assert sha(self.get(self.g2, "ckpt/model.pt")) == sha(self.data["ckpt/model.pt"]), "g2 reads g1's checkpoint"
        self.g2.put_object(Bucket=BUCKET, Key="from-g2.txt", Body=b"written through gateway 2")
        time.sleep(REVALIDATE_S)
        assert self.guest.sh(f"cat {BUCKET}/from-g2.txt") == "written through gateway 2", "g1 over NFS"
        assert self.get(self.g1, "from-g2.txt") == b"written through gateway 2", "g1 over S3"

    def kill9_with_dirty_queue(self):
        out = self.guest.sh(
            f"cd {BUCKET}/ckpt && dd if=/dev/urandom of=dirty.bin bs=1M count=6 status=none && sync && "
            "sha256sum dirty.bin"
        )
        want = out.split()[0]
        pid = int((self.tmp / "g1" / "pid").read_text())
        subprocess.run(["kill", "-KILL", str(pid)], check=True)
        uploaded_before = not self.up_missing("ckpt/dirty.bin")
        subprocess.run([str(self.tmp / "g1" / "start")], check=True)
        got = eventually(lambda: self.up_get("ckpt/dirty.bin"), "dirty.bin in RGW after the restart")
        assert sha(got) == want, "RGW holds other bytes than were acknowledged"
        # The kernel mount rode out the restart (same port, same handles).
        assert self.guest.sh(f"sha256sum {BUCKET}/ckpt/dirty.bin").split()[0] == want
        return "uploaded before the kill" if uploaded_before else "uploaded after the restart, from the persistent queue"

    def upstream_outage(self):
        rgw = [self.a.rgw_script, "--dir", str(self.tmp / "rgw")]
        port = self.a.rgw.rsplit(":", 1)[1]
        again = ["--port", port, "--access-key", self.a.rgw_keys[0], "--secret-key", self.a.rgw_keys[1]]
        subprocess.run([rgw[0], "stop", *rgw[1:]], check=True, capture_output=True)
        try:
            time.sleep(REVALIDATE_S)
            # Cached data: both doors.
            assert sha(self.get(self.g1, "shards/shard-000.tar")) == sha(self.data["shards/shard-000.tar"])
            cached = self.guest.sh(f"sha256sum {BUCKET}/imagenet/002.jpg").split()[0]
            assert cached == sha(self.data["imagenet/002.jpg"])
            # Uncached: a clear, retryable 503, fast.
            t = time.monotonic()
            status, code = error_code(self.g1.get_object, Bucket=BUCKET, Key="imagenet/cold.jpg")
            assert (status, code) == (503, "ServiceUnavailable"), (status, code)
            assert time.monotonic() - t < 30, f"the 503 took {time.monotonic() - t:.1f}s"
            # The kernel client gets NFS3ERR_JUKEBOX and waits: its read
            # completes once the upstream is back.
            reader = self.guest.start(f"sha256sum {BUCKET}/imagenet/cold.jpg", "read uncached during the outage")
            # Writes keep landing locally.
            out = self.guest.sh(
                f"cd {BUCKET}/ckpt && dd if=/dev/urandom of=outage.bin bs=1M count=2 status=none && sync && "
                "sha256sum outage.bin"
            )
            want_outage = out.split()[0]
            time.sleep(3)
            assert not reader.done(), "an uncached read finished with the upstream down"
        finally:
            subprocess.run([rgw[0], "start", *rgw[1:], *again], check=True, capture_output=True)
        got = reader.wait(120).check("uncached read after the outage").out.split()[0]
        assert got == sha(self.data["imagenet/cold.jpg"]), "the waiting read got other bytes"
        self.admin("g1", "cache", "flush", BUCKET)
        assert sha(self.up_get("ckpt/outage.bin")) == want_outage, "the write made during the outage"
        return "cached reads served, uncached S3 GET 503, kernel read waited (JUKEBOX) and completed, queue drained"

    def warm_and_evict(self):
        ev = self.admin("g1", "cache", "evict", f"{BUCKET}/imagenet/")
        assert "evicted" in ev, ev
        warm = self.admin("g1", "cache", "warm", f"{BUCKET}/imagenet/", "--parallel", "4")
        assert "complete" in warm and "bytes fetched" in warm, warm
        again = self.admin("g1", "cache", "warm", f"{BUCKET}/imagenet/")
        assert " 0 bytes fetched" in again, again
        status = self.admin("g1", "cache", "status")
        assert "upload queue: 0 item(s)" in status, status
        return warm.strip() + "\n" + status.strip()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rgw", required=True)
    p.add_argument("--rgw-keys", nargs=2, required=True)
    p.add_argument("--rgw-script", required=True)
    p.add_argument("--tmp", required=True)
    p.add_argument("--gateway-bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--vm-pid", type=int)
    p.add_argument("--only", default="")
    p.add_argument("--skip", default="")
    a = p.parse_args()
    s = Suite(a)
    r = Results(a.only, a.skip)
    for name in [
        "seed_upstream",
        "list_through_cache",
        "read_through_cache_s3",
        "read_through_cache_kernel_nfs",
        "checkpoint_over_nfs_lands_upstream",
        "s3_write_through_and_deletes",
        "upstream_change_revalidates",
        "conflict_keeps_both",
        "two_gateways_one_bucket",
        "kill9_with_dirty_queue",
        "upstream_outage",
        "warm_and_evict",
    ]:
        r.check(name.replace("_", "-"), getattr(s, name))
    s.guest.quit()
    print(f"upstream-suite: {len(r.passed)} passed, {len(r.failed)} failed", flush=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())

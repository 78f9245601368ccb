"""Host side of bench/bench-cross (see there): drives the guest agent in one
VM boot (one set of mount options) and prints JSON lines of figures.

    bench_cross.py --s3 URL --out DIR --label NAME [--rounds N] [--checkpoint-bytes N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from crossutil import REPO, Guest, client

# The guest sees the host's files only where the rig shares them (not a
# checkout under /tmp or /var/tmp, where it mounts its own): the helper
# travels into the VM with `nfs-vm --copy` and runs from $NFSVM_IN.
GT = "python3 /tmp/in/guest_tools.py"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--s3", required=True)
    ap.add_argument("--guest-s3", required=True, help="the S3 endpoint as the guest reaches it")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vm-pid", type=int)
    ap.add_argument("--label", required=True)
    ap.add_argument("--root-key", required=True)
    ap.add_argument("--root-secret", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--checkpoint-bytes", type=int, default=1 << 30)
    ap.add_argument("--checkpoint-rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    g = Guest(a.out, vm_pid=a.vm_pid)
    g.wait_ready()
    s3 = client(a.s3, a.root_key, a.root_secret)
    # Presigned URLs are signed for the host name the guest uses.
    signer = client(a.guest_s3, a.root_key, a.root_secret, signature_version="s3v4")
    bucket = f"bench-{a.label}".lower().replace("_", "-").replace("=", "-")
    s3.create_bucket(Bucket=bucket)
    g.sh(f"ls {bucket} >/dev/null")

    def report(name, rows, field):
        vals = [r[field] for r in rows if r.get(field) is not None]
        out = {
            "label": a.label,
            "figure": name,
            "median_s": statistics.median(vals) if vals else None,
            "min_s": min(vals) if vals else None,
            "max_s": max(vals) if vals else None,
            "rounds": len(rows),
            "all_s": [round(v, 4) for v in vals],
        }
        print(json.dumps(out), flush=True)

    for kind in ("overwrite", "new"):
        rows = []
        for i in range(a.rounds):
            key = f"vis-{kind}-{i}" if kind == "new" else "vis-overwrite"
            size = 1000 + i
            if kind == "overwrite" and i == 0:
                s3.put_object(Bucket=bucket, Key=key, Body=b"x")
                g.sh(f"stat {bucket}/{key} >/dev/null")
            url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)
            res = g.run(f"{GT} putwatch {url!r} {bucket}/{key} {size} {a.timeout}", timeout=a.timeout + 60,
                        check=False)
            row = json.loads(res.out.strip().splitlines()[-1]) if res.out.strip() else {"visible_s": None}
            rows.append(row)
            print(json.dumps({"label": a.label, "kind": kind, "round": i, **row}), flush=True)
        report(f"s3-put-to-nfs-visible-{kind}", rows, "visible_s")
        report(f"s3-put-reply-{kind}", rows, "put_s")

    rows = []
    for i in range(a.checkpoint_rounds):
        name = f"ckpt-{i}.pt"
        url = signer.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": name}, ExpiresIn=600)
        g.sh(f"mkdir -p {bucket}")
        res = g.run(f"{GT} publish {bucket} {name} {a.checkpoint_bytes} {url!r}", timeout=900)
        row = json.loads(res.out.strip().splitlines()[-1])
        t0 = time.monotonic()
        r = s3.get_object(Bucket=bucket, Key=name, ChecksumMode="ENABLED")
        n = 0
        for piece in r["Body"].iter_chunks(8 << 20):
            n += len(piece)
        row["host_get_s"] = time.monotonic() - t0
        row["host_get_crc64nvme"] = r.get("ChecksumCRC64NVME")
        assert n == a.checkpoint_bytes
        rows.append(row)
        print(json.dumps({"label": a.label, "kind": "checkpoint", "round": i, **row}), flush=True)
        g.sh(f"rm {bucket}/{name}")
    for f in ("write_fsync_s", "rename_s", "head_ok_after_rename_s", "host_get_s") if rows else ():
        report(f"checkpoint-{a.checkpoint_bytes >> 20}MiB-{f}", rows, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

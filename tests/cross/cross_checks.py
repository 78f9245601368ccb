"""The checks of tests/cross/cross-suite: every rule of "one dataset, two
protocols" driven from both sides, boto3 on the host and the Linux kernel
NFSv3 client in the nfs-vm guest (through tests/cross/guest-agent), against
one gateway. Started by cross-suite, which boots the VM and the gateway:

    cross_checks.py --s3 URL --out DIR [--vm-pid PID] [--only RE] [--skip RE]

Prints PASS/FAIL per check; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import subprocess
import json
import os
import threading
import time
import urllib.parse

from crossutil import (
    REPO,
    Guest,
    Results,
    client,
    crc64nvme,
    crc64nvme_b64,
    deterministic_bytes,
    error_code,
    expect_code,
    q,
)
from s3util import http_request

# The guest sees the host's files only where the rig shares them (not a
# checkout under /tmp or /var/tmp, where it mounts its own): the helper
# travels into the VM with `nfs-vm --copy` and runs from $NFSVM_IN.
GT = "python3 /tmp/in/guest_tools.py"
MiB = 1 << 20
GiB = 1 << 30
ALICE = (1000, 1000)
BOB = (1001, 1001)


def asuser(uid_gid, cmd: str) -> str:
    uid, gid = uid_gid
    return f"setpriv --reuid={uid} --regid={gid} --clear-groups bash -c {q(cmd)}"


def get_bytes(s3, bucket, key, **kw) -> tuple[bytes, dict]:
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return r["Body"].read(), r


def head_headers(r) -> dict:
    return r["ResponseMetadata"]["HTTPHeaders"]


class Suite:
    def __init__(self, args):
        self.g = Guest(args.out, vm_pid=args.vm_pid)
        self.root = client(args.s3, args.root_key, args.root_secret)
        self.alice = client(args.s3, "ALICEACCESSKEY", "alice-secret-key-0001")
        self.bob = client(args.s3, "BOBACCESSKEY0001", "bob-secret-key-0001")
        self.big_bytes = args.big_bytes
        self.nfs_port = args.nfs_port
        self.url, self.root_key, self.root_secret = args.s3, args.root_key, args.root_secret
        self.b = "cross"  # the main bucket, made by root over S3

    # ---------------------------------------------------------- buckets

    def bucket_s3_made_is_a_directory(self):
        self.root.create_bucket(Bucket=self.b)
        self.root.create_bucket(Bucket="made-by-s3")
        out = self.g.sh("stat -c '%F %u' made-by-s3 cross")
        assert out.split("\n")[:2] == ["directory 0", "directory 0"], out

    def bucket_nfs_mkdir_is_a_bucket(self):
        self.g.sh("mkdir made-by-nfs")
        self.root.head_bucket(Bucket="made-by-nfs")
        names = [b["Name"] for b in self.root.list_buckets()["Buckets"]]
        assert {"made-by-nfs", "made-by-s3", "cross"} <= set(names), names
        # invalid bucket names are refused at the root, and never appear
        res = self.g.run("mkdir Bad_Name; mkdir ab; mkdir -- -dash", check=False)
        assert res.rc != 0, "mkdir of invalid bucket names succeeded"
        out = self.g.sh("ls -1a")
        for bad in ("Bad_Name", "ab", "-dash"):
            assert bad not in out.split("\n"), f"{bad} was created: {out}"
        assert not {"Bad_Name", "ab", "-dash"} & {b["Name"] for b in self.root.list_buckets()["Buckets"]}
        return f"NFS mkdir of invalid names: {res.err.strip().splitlines()[:1]}"

    def bucket_nonempty_delete_refused_both_sides(self):
        self.root.put_object(Bucket="made-by-s3", Key="f", Body=b"x")
        self.g.sh("echo y > made-by-nfs/g")
        for b in ("made-by-s3", "made-by-nfs"):
            expect_code(409, "BucketNotEmpty", self.root.delete_bucket, Bucket=b)
            res = self.g.run(f"rmdir {b}", check=False)
            assert res.rc != 0 and "not empty" in res.err.lower(), (res.rc, res.err)
        # emptied from the other side, then deleted: gone on both sides
        self.g.sh("rm made-by-s3/f")
        self.root.delete_object(Bucket="made-by-nfs", Key="g")
        self.root.delete_bucket(Bucket="made-by-s3")
        self.g.sh("rmdir made-by-nfs")
        assert self.g.sh("ls -1 | grep -c '^made-by' || true").strip() == "0"
        expect_code(404, "", self.root.head_bucket, Bucket="made-by-nfs")
        expect_code(404, "", self.root.head_bucket, Bucket="made-by-s3")

    # ---------------------------------------------------------- keys

    def invalid_keys_rejected_and_not_found(self):
        b = self.b
        cases = [
            ("a//b", "InvalidObjectName"),
            ("/lead", "InvalidObjectName"),
            ("a/./b", "InvalidObjectName"),
            ("a/../b", "InvalidObjectName"),
            ("..", "InvalidObjectName"),
            ("nul\x00byte", "InvalidObjectName"),
            ("c" * 256, "KeyTooLongError"),
            ("d/" * 512 + "e", "KeyTooLongError"),
        ]
        seen = []
        # The gateway answers these PUTs before reading their body and then
        # closes the connection; a client that reuses it in that instant sees
        # it closed. Real clients retry that (as boto3 does by default).
        s3 = client(self.url, self.root_key, self.root_secret, signature_version="s3v4",
                    retries={"mode": "standard", "total_max_attempts": 3})
        for key, code in cases:
            st = error_code(s3.put_object, Bucket=b, Key=key, Body=b"x")
            assert st == (400, code), f"PUT {key[:40]!r}: expected 400 {code}, got {st}"
            if any(c in (".", "..") for c in key.split("/")):
                # urllib3 removes dot segments from request paths (the
                # signature then fails): read through a presigned URL with
                # a client that sends the path as it is.
                url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": key})
                raw = http_request(None, url)
                st = (raw.status, "NoSuchKey" if b"<Code>NoSuchKey</Code>" in raw.body else raw.body[:200])
            else:
                st = error_code(s3.get_object, Bucket=b, Key=key)
            assert st == (404, "NoSuchKey"), f"GET {key[:40]!r}: expected 404 NoSuchKey, got {st}"
            seen.append(code)
        # aliases: 'a//b' is not 'a/b', a trailing '/.' is not the dir
        self.root.put_object(Bucket=b, Key="keys/a/b", Body=b"ab")
        expect_code(404, "NoSuchKey", self.root.get_object, Bucket=b, Key="keys/a//b")
        expect_code(404, "NoSuchKey", self.root.get_object, Bucket=b, Key="keys/./a/b")
        # nothing odd reached the file system
        out = self.g.sh("ls -1a cross; ls -1a cross/keys")
        assert out.split("\n").count("a") == 1 and ".." in out, out
        return f"{len(cases)} invalid keys: 400 on PUT ({sorted(set(seen))}), 404 NoSuchKey on GET"

    def keys_are_byte_exact(self):
        b = self.b
        nfc, nfd = "exact/caf\u00e9", "exact/cafe\u0301"
        self.root.put_object(Bucket=b, Key=nfc, Body=b"nfc")
        self.root.put_object(Bucket=b, Key=nfd, Body=b"nfd")
        self.root.put_object(Bucket=b, Key="exact/Case", Body=b"C")
        self.root.put_object(Bucket=b, Key="exact/case", Body=b"c")
        out = self.g.sh("ls -1 cross/exact | od -An -c | tr -s ' ' | head -c 2000; echo; ls -1 cross/exact | wc -l")
        assert out.strip().endswith("4"), out
        nfd_out = self.g.sh("cat cross/exact/cafe$'\\xcc\\x81'")
        assert nfd_out == "nfd", nfd_out
        assert get_bytes(self.root, b, nfc)[0] == b"nfc"

    def file_vs_directory_conflicts_409(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="conf/file", Body=b"f")
        expect_code(409, "ObjectParentIsFile", self.root.put_object, Bucket=b, Key="conf/file/x", Body=b"x")
        expect_code(409, "ExistingObjectIsDirectory", self.root.put_object, Bucket=b, Key="conf", Body=b"x")
        # the same against what NFS made
        self.g.sh("mkdir -p cross/conf2/dir && echo f > cross/conf2/file")
        expect_code(409, "ExistingObjectIsDirectory", self.root.put_object, Bucket=b, Key="conf2/dir", Body=b"x")
        expect_code(409, "ObjectParentIsFile", self.root.put_object, Bucket=b, Key="conf2/file/y", Body=b"x")
        # multipart: refused at Create, and at Complete when NFS made the
        # directory after the upload started
        expect_code(409, "ExistingObjectIsDirectory", self.root.create_multipart_upload, Bucket=b, Key="conf2/dir")
        up = self.root.create_multipart_upload(Bucket=b, Key="conf2/later")
        p = self.root.upload_part(Bucket=b, Key="conf2/later", UploadId=up["UploadId"], PartNumber=1, Body=b"z")
        self.g.sh("mkdir cross/conf2/later && echo in > cross/conf2/later/f")
        st = error_code(
            self.root.complete_multipart_upload,
            Bucket=b,
            Key="conf2/later",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]},
        )
        assert st == (409, "ExistingObjectIsDirectory"), st
        assert self.g.sh("cat cross/conf2/later/f") == "in\n"
        assert self.g.sh("stat -c %F cross/conf2/dir cross/conf2/file") == "directory\nregular file\n"

    # ---------------------------------------------------------- directories

    def empty_nfs_dir_is_a_common_prefix(self):
        self.g.sh("mkdir -p cross/emptyd/inner")
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="emptyd/", Delimiter="/")
        assert [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["emptyd/inner/"], r
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="emptyd/")
        assert r.get("KeyCount") == 0, r.get("Contents")

    def marker_dirs_both_ways(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="mk/", Body=b"", ContentType="application/x-directory")
        assert self.g.sh("stat -c %F cross/mk").strip() == "directory"
        keys = [o["Key"] for o in self.root.list_objects_v2(Bucket=b, Prefix="mk")["Contents"]]
        assert keys == ["mk/"], keys
        h = self.root.head_object(Bucket=b, Key="mk/")
        assert h["ContentLength"] == 0 and h["ContentType"] == "application/x-directory", h
        self.root.delete_object(Bucket=b, Key="mk/")
        assert self.g.run("test -e cross/mk", check=False).rc != 0, "empty marker dir stayed after DELETE mk/"
        # a marker with NFS children: DELETE clears the marker, the dir stays
        self.root.put_object(Bucket=b, Key="mk2/", Body=b"")
        self.g.sh("echo child > cross/mk2/child")
        self.root.delete_object(Bucket=b, Key="mk2/")
        assert self.g.sh("cat cross/mk2/child") == "child\n"
        keys = [o["Key"] for o in self.root.list_objects_v2(Bucket=b, Prefix="mk2")["Contents"]]
        assert keys == ["mk2/child"], keys
        # a marker with data is refused
        expect_code(400, "", self.root.put_object, Bucket=b, Key="mk3/", Body=b"data")
        # a marker survives the deletion of the last key under it
        self.root.put_object(Bucket=b, Key="mk4/", Body=b"")
        self.root.put_object(Bucket=b, Key="mk4/x/f", Body=b"x")
        self.root.delete_object(Bucket=b, Key="mk4/x/f")
        out = self.g.sh("find cross/mk4 | sort")
        assert out == "cross/mk4\n", out

    def auto_dirs_vanish_nfs_dirs_stay(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="auto/x/y/f", Body=b"1")
        assert self.g.sh("stat -c %F cross/auto/x/y cross/auto/x/y/f") == "directory\nregular file\n"
        self.root.delete_object(Bucket=b, Key="auto/x/y/f")
        assert self.g.run("test -e cross/auto", check=False).rc != 0, "auto-created dirs stayed"
        # directories made over NFS stay
        self.g.sh("mkdir -p cross/keep/sub")
        self.root.put_object(Bucket=b, Key="keep/sub/deeper/f", Body=b"1")
        self.root.delete_object(Bucket=b, Key="keep/sub/deeper/f")
        out = self.g.sh("find cross/keep | sort")
        assert out == "cross/keep\ncross/keep/sub\n", out
        # an auto-created directory an NFS user touched is theirs now
        self.root.put_object(Bucket=b, Key="touched/d/f", Body=b"1")
        self.g.sh("chmod 0775 cross/touched/d")
        self.root.delete_object(Bucket=b, Key="touched/d/f")
        out = self.g.sh("find cross/touched | sort")
        assert out == "cross/touched\ncross/touched/d\n", out
        # NFS rmdir is plain POSIX
        self.g.sh("echo z > cross/keep/sub/z")
        res = self.g.run("rmdir cross/keep/sub", check=False)
        assert res.rc != 0 and "not empty" in res.err.lower(), res.err

    def invalid_utf8_names_hidden_from_listings(self):
        self.g.sh("mkdir -p cross/utf && echo bad > cross/utf/$'bad\\xff\\xfe' && echo ok > cross/utf/good "
                  "&& mkdir cross/utf/$'dir\\xc3' && echo in > cross/utf/$'dir\\xc3'/inside")
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="utf/")
        assert [o["Key"] for o in r["Contents"]] == ["utf/good"], r["Contents"]
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="utf/", Delimiter="/")
        assert [o["Key"] for o in r["Contents"]] == ["utf/good"] and not r.get("CommonPrefixes"), r
        # still there, byte for byte, over NFS
        out = self.g.sh("ls -1 cross/utf | od -An -tx1 | tr -d ' \\n'")
        assert "626164fffe" in out and "646972c3" in out, out

    # ---------------------------------------------------------- content

    def multipart_2gib_read_over_nfs(self):
        # At the bucket's top level, so libnfs (which mounts the directory
        # part of its URL, and only / and /<bucket> are exports) can open it.
        b, key, size = self.b, "multipart-2g.bin", self.big_bytes
        part = 64 * MiB
        block = deterministic_bytes(part, 42)

        def body(n: int, offset: int) -> bytes:
            return n.to_bytes(4, "big") + block[4 : min(part, size - offset)]

        up = self.root.create_multipart_upload(Bucket=b, Key=key, ChecksumAlgorithm="CRC64NVME")
        sha, crc, parts, n = hashlib.sha256(), 0, [], 0
        t0 = time.monotonic()
        for i in range(0, size, part):
            n += 1
            data = body(n, i)
            sha.update(data)
            crc = crc64nvme(data, crc)
            r = self.root.upload_part(
                Bucket=b, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data, ChecksumAlgorithm="CRC64NVME"
            )
            parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC64NVME": r["ChecksumCRC64NVME"]})
        done = self.root.complete_multipart_upload(
            Bucket=b, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
        )
        upload_s = time.monotonic() - t0
        assert done["ETag"].strip('"').endswith(f"-{n}"), done["ETag"]
        h = self.root.head_object(Bucket=b, Key=key, ChecksumMode="ENABLED")
        assert h.get("ChecksumCRC64NVME") == crc64nvme_b64(crc), (h.get("ChecksumCRC64NVME"), crc64nvme_b64(crc))
        # The whole file over NFS with the userspace libnfs client on the
        # host (about 300 MiB/s): sha256 and CRC64NVME of every byte.
        t1 = time.monotonic()
        url = f"nfs://127.0.0.1/{b}/{key}?nfsport={self.nfs_port}&mountport={self.nfs_port}"
        cat = subprocess.Popen(["nfs-cat", url], stdout=subprocess.PIPE)
        got_sha, got_crc, got_n = hashlib.sha256(), 0, 0
        while piece := cat.stdout.read(16 * MiB):
            got_sha.update(piece)
            got_crc = crc64nvme(piece, got_crc)
            got_n += len(piece)
        assert cat.wait(timeout=600) == 0, f"nfs-cat exited {cat.returncode}"
        libnfs_s = time.monotonic() - t1
        assert got_n == size, (got_n, size)
        assert got_sha.hexdigest() == sha.hexdigest(), f"sha256 over NFS {got_sha.hexdigest()} != {sha.hexdigest()}"
        assert got_crc == crc, "CRC64NVME of the bytes read over NFS differs"
        # The kernel client in the VM (emulated, about 6 MB/s under load):
        # the size, and the first and last 128 MiB (two parts each) byte for byte.
        span = min(128 * MiB, size // 2)
        blocks = span // (4 * MiB)
        t2 = time.monotonic()
        out = self.g.sh(
            f"stat -c %s cross/{key}; "
            f"dd if=cross/{key} of=/tmp/out/big.head bs=4M count={blocks} status=none & "
            f"dd if=cross/{key} of=/tmp/out/big.tail bs=4M skip={(size - span) // (4 * MiB)} status=none; wait $!",
            timeout=900,
        )
        kernel_s = time.monotonic() - t2
        assert int(out.split()[0]) == size, out
        expected = {"head": (0, span), "tail": (size - span, size)}
        for name, (lo, hi) in expected.items():
            want = hashlib.sha256()
            for off in range(lo - lo % part, hi, part):
                data = body(off // part + 1, off)
                want.update(data[max(lo - off, 0) : min(hi - off, len(data))])
            copy = self.g.out_dir / f"big.{name}"
            got = hashlib.sha256(copy.read_bytes()).hexdigest()
            copy.unlink()
            assert got == want.hexdigest(), f"kernel client read of the {name} {span // MiB} MiB differs"
        return (f"{size / GiB:.1f} GiB in {n} parts: upload {upload_s:.1f}s; whole file over NFS (libnfs) "
                f"{libnfs_s:.1f}s with matching sha256 and CRC64NVME; kernel client read first and last "
                f"{span // MiB} MiB in {kernel_s:.1f}s, byte-exact")

    def checkpoint_nfs_write_fetched_over_s3(self):
        b, size, seed = self.b, 64 * MiB + 12345, 7
        self.g.sh("mkdir -p cross/ckpt")
        out = self.g.sh(f"{GT} checkpoint cross/ckpt step-100.pt {size} {seed}", timeout=300)
        timing = json.loads(out)
        want = deterministic_bytes(size, seed)
        r = self.root.get_object(Bucket=b, Key="ckpt/step-100.pt", ChecksumMode="ENABLED")
        body = r["Body"].read()
        assert body == want, "bytes differ"
        want_crc = crc64nvme_b64(crc64nvme(want))
        assert r.get("ChecksumCRC64NVME") == want_crc, (r.get("ChecksumCRC64NVME"), want_crc)
        assert head_headers(r).get("x-amz-checksum-type") == "FULL_OBJECT"
        assert "-" in r["ETag"], r["ETag"]
        assert r["ContentType"] == "binary/octet-stream", r["ContentType"]
        expect_code(404, "", self.root.head_object, Bucket=b, Key="ckpt/step-100.pt.tmp")
        # patched in place (trimmed extents), extended with a hole, truncated
        self.g.sh(f"{GT} patch cross/ckpt/step-100.pt 1000 3000 9 && truncate -s {size + 5 * MiB} cross/ckpt/step-100.pt "
                  f"&& {GT} patch cross/ckpt/step-100.pt {size + 4 * MiB} 10 10")
        want = bytearray(want) + bytes(5 * MiB)
        want[1000:4000] = deterministic_bytes(3000, 9)
        want[size + 4 * MiB : size + 4 * MiB + 10] = deterministic_bytes(10, 10)
        r = self.root.get_object(Bucket=b, Key="ckpt/step-100.pt", ChecksumMode="ENABLED")
        assert r["Body"].read() == bytes(want)
        assert r.get("ChecksumCRC64NVME") == crc64nvme_b64(crc64nvme(bytes(want))), "CRC after patch+hole"
        h = self.root.head_object(Bucket=b, Key="ckpt/step-100.pt", ChecksumMode="ENABLED")
        assert h.get("ChecksumCRC64NVME") == crc64nvme_b64(crc64nvme(bytes(want))), "HEAD CRC after patch+hole"
        # botocore validates the full-object CRC64NVME of a GET itself too
        return f"write+fsync {timing['write_fsync_s']:.2f}s, rename {timing['rename_s'] * 1000:.1f}ms in the VM"

    def nfs_directory_rename_listed_over_s3(self):
        self.g.sh("mkdir -p cross/run1/ep/a cross/run1/ep/b && for i in 1 2 3; do echo $i > cross/run1/ep/a/f$i; "
                  "echo $i > cross/run1/ep/b/g$i; done && mkdir cross/run1/empty")
        before = [o["Key"] for o in self.root.list_objects_v2(Bucket=self.b, Prefix="run1/")["Contents"]]
        self.g.sh("mv cross/run1 cross/run2")
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="run")
        after = [o["Key"] for o in r["Contents"]]
        assert after == [k.replace("run1/", "run2/", 1) for k in before], (before, after)
        r = self.root.list_objects_v2(Bucket=self.b, Prefix="run2/", Delimiter="/")
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["run2/empty/", "run2/ep/"], r
        expect_code(404, "NoSuchKey", self.root.get_object, Bucket=self.b, Key="run1/ep/a/f1")
        assert get_bytes(self.root, self.b, "run2/ep/b/g3")[0] == b"3\n"

    def s3_overwrites_while_nfs_reader_loops(self):
        b, key, size = self.b, "race/model.bin", 2 * MiB
        self.root.put_object(Bucket=b, Key=key, Body=bytes([1]) * size)
        stop = self.g.out_dir / "stop-reader"  # /tmp/out/stop-reader in the guest
        stop.unlink(missing_ok=True)
        job = self.g.start(f"{GT} reader cross/{key} 60 /tmp/out/stop-reader", "reader")
        versions = 16
        time.sleep(1.0)
        for v in range(2, versions + 1):
            self.root.put_object(Bucket=b, Key=key, Body=bytes([v % 251 + 1]) * size)
            time.sleep(0.6)
        last = versions % 251 + 1
        time.sleep(2.0)  # the reader goes on for a while with no replacement in flight
        stop.write_text("stop")
        res = json.loads(job.wait(120).check("reader").out)
        assert res["mixed"] == 0, f"a read mixed two versions: {res}"
        assert res["short"] == 0 and not res["other_errors"], res
        assert res["reads"] > 0, res
        assert res["versions"] == sorted(res["versions"]), f"versions went backwards: {res['versions']}"
        # a new open sees the newest version
        out = self.g.sh(f"od -An -tu1 -N1 cross/{key}").strip()
        assert out == str(last), (out, last)
        return (f"reader: {res['reads']} whole reads, versions seen {len(res['versions'])}/{versions}, "
                f"ESTALE {res['estale']}, ENOENT {res['enoent']}, mixed 0")

    def nfs_writes_visible_to_s3_at_once(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="vis/f", Body=b"0123456789")
        e0 = self.root.head_object(Bucket=b, Key="vis/f")["ETag"]
        # buffered write + close (close-to-open flush), then S3 at once
        self.g.sh("printf AB | dd of=cross/vis/f bs=1 seek=2 conv=notrunc status=none")
        assert get_bytes(self.root, b, "vis/f")[0] == b"01AB456789"
        # O_DIRECT: the write(2) returns after the WRITE reply
        self.g.sh("printf XYZ | dd of=cross/vis/f bs=3 seek=1 conv=notrunc oflag=direct status=none")
        body, r = get_bytes(self.root, b, "vis/f")
        assert body == b"01AXYZ6789", body
        assert r["ETag"] != e0 and "-" in r["ETag"], (e0, r["ETag"])
        # a new file, appends, a truncation
        self.g.sh("echo new > cross/vis/new && echo more >> cross/vis/new")
        assert get_bytes(self.root, b, "vis/new")[0] == b"new\nmore\n"
        self.g.sh("truncate -s 3 cross/vis/new")
        assert get_bytes(self.root, b, "vis/new")[0] == b"new"
        # and the other way: an S3 PUT is what the next NFS open reads
        self.root.put_object(Bucket=b, Key="vis/new", Body=b"from s3")
        assert self.g.sh("cat cross/vis/new") == "from s3"

    def etags_md5_dashed_and_if_match(self):
        b = self.b
        data = b"hello etag"
        r = self.root.put_object(Bucket=b, Key="etag/single", Body=data)
        assert r["ETag"] == f'"{hashlib.md5(data).hexdigest()}"', r["ETag"]
        p1, p2 = deterministic_bytes(5 * MiB, 1), b"tail"
        up = self.root.create_multipart_upload(Bucket=b, Key="etag/multi")
        e1 = self.root.upload_part(Bucket=b, Key="etag/multi", UploadId=up["UploadId"], PartNumber=1, Body=p1)["ETag"]
        e2 = self.root.upload_part(Bucket=b, Key="etag/multi", UploadId=up["UploadId"], PartNumber=2, Body=p2)["ETag"]
        done = self.root.complete_multipart_upload(
            Bucket=b, Key="etag/multi", UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
        )
        want = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest() + "-2"
        assert done["ETag"].strip('"') == want, (done["ETag"], want)
        assert self.root.head_object(Bucket=b, Key="etag/multi")["ETag"].strip('"') == want
        # NFS changes: a new dashed ETag each time, never an old one
        seen = {r["ETag"]}
        for i in range(3):
            self.g.sh(f"printf {i} | dd of=cross/etag/single bs=1 seek=0 conv=notrunc status=none")
            et = self.root.head_object(Bucket=b, Key="etag/single")["ETag"]
            assert "-" in et and et not in seen, (et, seen)
            seen.add(et)
        # an unchanged file keeps its ETag (no data read, no upgrade)
        assert self.root.head_object(Bucket=b, Key="etag/single")["ETag"] == et
        # stale If-Match fails 412 on GET, HEAD and PUT; the current one works
        stale = r["ETag"]
        expect_code(412, "PreconditionFailed", self.root.get_object, Bucket=b, Key="etag/single", IfMatch=stale)
        expect_code(412, "", self.root.head_object, Bucket=b, Key="etag/single", IfMatch=stale)
        expect_code(412, "PreconditionFailed", self.root.put_object, Bucket=b, Key="etag/single", Body=b"n",
                    IfMatch=stale)
        self.root.get_object(Bucket=b, Key="etag/single", IfMatch=et)["Body"].read()
        self.root.put_object(Bucket=b, Key="etag/single", Body=b"n", IfMatch=et)
        # a file created over NFS has a dashed ETag too, and GET's CRC64NVME
        self.g.sh("printf nfsdata > cross/etag/nfs")
        r = self.root.get_object(Bucket=b, Key="etag/nfs", ChecksumMode="ENABLED")
        assert r["Body"].read() == b"nfsdata" and "-" in r["ETag"]
        assert r.get("ChecksumCRC64NVME") == crc64nvme_b64(crc64nvme(b"nfsdata")), r.get("ChecksumCRC64NVME")

    def last_modified_is_mtime(self):
        b = self.b
        self.g.sh("echo t > cross/mtime-nfs && touch -d '2021-03-04 05:06:07 UTC' cross/mtime-nfs")
        lm = self.root.head_object(Bucket=b, Key="mtime-nfs")["LastModified"]
        assert lm == dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc), lm
        r = self.root.list_objects_v2(Bucket=b, Prefix="mtime-nfs")["Contents"][0]
        assert r["LastModified"] == lm, r
        self.root.put_object(Bucket=b, Key="mtime-s3", Body=b"x")
        lm = self.root.head_object(Bucket=b, Key="mtime-s3")["LastModified"]
        st = int(self.g.sh("stat -c %Y cross/mtime-s3"))
        assert st == int(lm.timestamp()), (st, lm)
        # If-Modified-Since follows the NFS-set time
        expect_code(304, "", self.root.get_object, Bucket=b, Key="mtime-nfs",
                    IfModifiedSince=dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc))

    def content_type_and_metadata_follow_the_inode(self):
        b = self.b
        self.g.sh("echo x > cross/ct-nfs")
        assert self.root.head_object(Bucket=b, Key="ct-nfs")["ContentType"] == "binary/octet-stream"
        self.root.put_object(Bucket=b, Key="ct-s3", Body=b"abcdef", ContentType="text/plain",
                             Metadata={"owner-team": "vision"})
        self.g.sh("printf Z | dd of=cross/ct-s3 bs=1 seek=3 conv=notrunc status=none && echo more >> cross/ct-s3")
        h = self.root.head_object(Bucket=b, Key="ct-s3")
        assert h["ContentType"] == "text/plain" and h["Metadata"] == {"owner-team": "vision"}, h
        assert get_bytes(self.root, b, "ct-s3")[0] == b"abcZef" + b"more\n"
        # write-temp-then-rename: a new inode, without them
        self.g.sh("echo new > cross/ct-s3.tmp && mv cross/ct-s3.tmp cross/ct-s3")
        h = self.root.head_object(Bucket=b, Key="ct-s3")
        assert h["ContentType"] == "binary/octet-stream" and h["Metadata"] == {}, h

    # ---------------------------------------------------------- identity

    def objects_created_over_s3_owned_by_the_mapped_user(self):
        # a shared bucket NFS users may write in
        self.root.create_bucket(Bucket="team")
        self.g.sh("chmod 1777 team")
        self.alice.put_object(Bucket="team", Key="alice/run/f.bin", Body=b"alice's")
        out = self.g.sh("stat -c '%u %g %a %F' team/alice team/alice/run team/alice/run/f.bin")
        assert out.split("\n")[:3] == ["1000 1000 755 directory", "1000 1000 755 directory",
                                       "1000 1000 644 regular file"], out
        self.root.put_object(Bucket="team", Key="by-root", Body=b"r")
        assert self.g.sh("stat -c '%u %g %a' team/by-root").strip() == "0 0 644"

    def nfs_permissions_bind_s3_users(self):
        self.g.sh(asuser(ALICE, "mkdir team/priv && echo secret > team/priv/f && chmod 600 team/priv/f "
                                "&& echo open > team/priv/open && mkdir team/closed && echo c > team/closed/c "
                                "&& chmod 700 team/closed"))
        expect_code(403, "AccessDenied", self.bob.get_object, Bucket="team", Key="priv/f")
        expect_code(403, "", self.bob.head_object, Bucket="team", Key="priv/f")
        assert get_bytes(self.alice, "team", "priv/f")[0] == b"secret\n"
        assert get_bytes(self.bob, "team", "priv/open")[0] == b"open\n"
        # bob cannot write into alice's 0755 directory, nor delete from it
        expect_code(403, "AccessDenied", self.bob.put_object, Bucket="team", Key="priv/bob", Body=b"b")
        expect_code(403, "AccessDenied", self.bob.put_object, Bucket="team", Key="priv/open", Body=b"b")
        expect_code(403, "AccessDenied", self.bob.delete_object, Bucket="team", Key="priv/open")
        assert get_bytes(self.alice, "team", "priv/open")[0] == b"open\n"
        # a directory bob cannot search: GET denied, listings skip it
        expect_code(403, "AccessDenied", self.bob.get_object, Bucket="team", Key="closed/c")
        keys = [o["Key"] for o in self.bob.list_objects_v2(Bucket="team").get("Contents", [])]
        assert "closed/c" not in keys and "priv/f" in keys, keys
        keys = [o["Key"] for o in self.alice.list_objects_v2(Bucket="team").get("Contents", [])]
        assert "closed/c" in keys, keys
        # chmod over NFS takes effect for S3 at once
        self.g.sh(asuser(ALICE, "chmod 644 team/priv/f"))
        assert get_bytes(self.bob, "team", "priv/f")[0] == b"secret\n"

    def s3_created_files_bind_nfs_users(self):
        self.alice.put_object(Bucket="team", Key="alice/own.txt", Body=b"mine")
        res = self.g.run(asuser(BOB, "echo bob >> team/alice/own.txt"), check=False)
        assert res.rc != 0 and "denied" in res.err.lower(), (res.rc, res.err)
        res = self.g.run(asuser(BOB, "touch team/alice/bobs"), check=False)
        assert res.rc != 0 and "denied" in res.err.lower(), (res.rc, res.err)
        self.g.sh(asuser(ALICE, "echo more >> team/alice/own.txt"))
        assert get_bytes(self.alice, "team", "alice/own.txt")[0] == b"minemore\n"
        assert self.g.sh(asuser(BOB, "cat team/alice/own.txt")) == "minemore\n"

    # ---------------------------------------------------------- links

    def hard_links_are_separate_keys(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="hl/a", Body=b"shared")
        self.g.sh("ln cross/hl/a cross/hl/b && stat -c %h cross/hl/a")
        objs = {o["Key"]: o for o in self.root.list_objects_v2(Bucket=b, Prefix="hl/")["Contents"]}
        assert set(objs) == {"hl/a", "hl/b"} and objs["hl/a"]["ETag"] == objs["hl/b"]["ETag"], objs
        assert get_bytes(self.root, b, "hl/b")[0] == b"shared"
        # an NFS write through one name shows through both keys
        self.g.sh("printf S | dd of=cross/hl/b bs=1 conv=notrunc status=none")
        assert get_bytes(self.root, b, "hl/a")[0] == b"Shared"
        # an S3 PUT to one key replaces only that key
        self.root.put_object(Bucket=b, Key="hl/b", Body=b"replaced")
        assert get_bytes(self.root, b, "hl/a")[0] == b"Shared"
        assert get_bytes(self.root, b, "hl/b")[0] == b"replaced"
        assert self.g.sh("stat -c %h cross/hl/a cross/hl/b") == "1\n1\n"
        # DELETE unlinks one name
        self.g.sh("ln cross/hl/a cross/hl/c")
        self.root.delete_object(Bucket=b, Key="hl/a")
        assert self.g.sh("cat cross/hl/c; stat -c %h cross/hl/c") == "Shared1\n"

    def symlinks_served_when_they_name_a_file(self):
        b = self.b
        self.root.put_object(Bucket=b, Key="sl/data/target.bin", Body=b"target bytes")
        self.root.put_object(Bucket="team", Key="other-bucket-file", Body=b"elsewhere")
        self.g.sh("cd cross/sl && ln -s data/target.bin link && ln -s missing dangling && ln -s data dirlink "
                  "&& ln -s /etc/passwd absolute && ln -s ../../team/other-bucket-file escape "
                  "&& ln -s link chain && mkdir up && ln -s ../data/target.bin up/parent")
        objs = {o["Key"]: o for o in self.root.list_objects_v2(Bucket=b, Prefix="sl/")["Contents"]}
        assert sorted(objs) == ["sl/chain", "sl/data/target.bin", "sl/link", "sl/up/parent"], sorted(objs)
        for k in ("sl/chain", "sl/link", "sl/up/parent"):
            assert objs[k]["Size"] == 12 and objs[k]["ETag"] == objs["sl/data/target.bin"]["ETag"], objs[k]
            assert get_bytes(self.root, b, k)[0] == b"target bytes"
        for k in ("sl/dangling", "sl/dirlink", "sl/absolute", "sl/escape"):
            expect_code(404, "NoSuchKey", self.root.get_object, Bucket=b, Key=k)
        # a PUT on a link's key replaces the link, not the target
        self.root.put_object(Bucket=b, Key="sl/link", Body=b"own")
        assert self.g.sh("stat -c %F cross/sl/link; cat cross/sl/data/target.bin") == "regular file\ntarget bytes"

    # ---------------------------------------------------------- listings

    def nfs_tree_listings_match_a_sorted_model(self):
        out = self.g.sh(f"{GT} tree cross/tree")
        made = json.loads(out)
        files = ["tree/" + f for f in made["files"]]
        dirs = ["tree/" + d for d in made["dirs"]] + ["tree/"]
        nchecked = 0
        for prefix in ("tree/", "tree/a", "tree/a/", "tree/a/b c/", "tree/x%2Fy/", "tree/\u00fcml/", "tree/caf"):
            for delim in (None, "/", "+", "%", " "):
                for page in (None, 3):
                    want = model(files, dirs, prefix, delim)
                    got = listing(self.root, self.b, prefix, delim, page)
                    assert got == want, f"prefix={prefix!r} delimiter={delim!r} page={page}:\n got  {got}\n want {want}"
                    nchecked += 1
        # v1 with markers too
        keys = []
        marker = ""
        while True:
            r = self.root.list_objects(Bucket=self.b, Prefix="tree/", Marker=marker, MaxKeys=4, EncodingType="url")
            keys += [urllib.parse.unquote_plus(o["Key"]) for o in r.get("Contents", [])]
            if not r["IsTruncated"]:
                break
            marker = keys[-1]
        assert keys == model(files, dirs, "tree/", None)[0]
        return f"{len(files)} files, {len(dirs)} dirs; {nchecked} prefix/delimiter/page combinations (+ v1)"


def model(files, dirs, prefix, delim):
    """(contents, common prefixes) S3 should list: files are keys; every
    directory counts as the key "d/" for folding (so empty ones show as
    prefixes) but is not itself an object (no markers here)."""
    contents, prefixes = [], set()
    items = [(f, True) for f in files] + [(d, False) for d in dirs]
    for k, is_file in items:
        if not k.startswith(prefix):
            continue
        if delim:
            i = k.find(delim, len(prefix))
            if i >= 0:
                prefixes.add(k[: i + len(delim)])
                continue
        if is_file:
            contents.append(k)
    enc = lambda s: s.encode()  # noqa: E731
    return sorted(contents, key=enc), sorted(prefixes, key=enc)


def listing(s3, bucket, prefix, delim, page):
    """Full v2 listing with encoding-type=url, decoded here (botocore leaves
    it encoded when the caller asks for it)."""
    contents, prefixes = [], []
    kw = {"Bucket": bucket, "Prefix": prefix, "EncodingType": "url"}
    if delim:
        kw["Delimiter"] = delim
    if page:
        kw["MaxKeys"] = page
    while True:
        r = s3.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            raw = o["Key"]
            assert "%" not in raw or all(c in "0123456789ABCDEFabcdef" for c in raw.split("%", 1)[1][:2]), raw
            contents.append(urllib.parse.unquote(raw))
        prefixes += [urllib.parse.unquote(p["Prefix"]) for p in r.get("CommonPrefixes", [])]
        if not r.get("IsTruncated"):
            break
        kw["ContinuationToken"] = r["NextContinuationToken"]
    return contents, prefixes


ORDER = [
    "bucket_s3_made_is_a_directory",
    "bucket_nfs_mkdir_is_a_bucket",
    "bucket_nonempty_delete_refused_both_sides",
    "invalid_keys_rejected_and_not_found",
    "keys_are_byte_exact",
    "file_vs_directory_conflicts_409",
    "empty_nfs_dir_is_a_common_prefix",
    "marker_dirs_both_ways",
    "auto_dirs_vanish_nfs_dirs_stay",
    "invalid_utf8_names_hidden_from_listings",
    "nfs_writes_visible_to_s3_at_once",
    "etags_md5_dashed_and_if_match",
    "last_modified_is_mtime",
    "content_type_and_metadata_follow_the_inode",
    "checkpoint_nfs_write_fetched_over_s3",
    "nfs_directory_rename_listed_over_s3",
    "s3_overwrites_while_nfs_reader_loops",
    "objects_created_over_s3_owned_by_the_mapped_user",
    "nfs_permissions_bind_s3_users",
    "s3_created_files_bind_nfs_users",
    "hard_links_are_separate_keys",
    "symlinks_served_when_they_name_a_file",
    "nfs_tree_listings_match_a_sorted_model",
    "multipart_2gib_read_over_nfs",
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--s3", required=True)
    ap.add_argument("--out", required=True, help="the VM's shared --out dir (host path)")
    ap.add_argument("--vm-pid", type=int)
    ap.add_argument("--root-key", default=os.environ.get("GATEWAY_ACCESS_KEY", "test"))
    ap.add_argument("--root-secret", default=os.environ.get("GATEWAY_SECRET_KEY", "testsecret123"))
    ap.add_argument("--big-bytes", type=int, default=2 * GiB)
    ap.add_argument("--nfs-port", type=int, required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    s = Suite(args)
    print(f"guest agent up: {s.g.wait_ready()}", flush=True)
    res = Results(args.only, args.skip)
    for name in ORDER:
        res.check(name.replace("_", "-"), getattr(s, name))
    print(f"\ncross checks: {len(res.passed)} passed, {len(res.failed)} failed", flush=True)
    if res.failed:
        print("failed: " + " ".join(res.failed), flush=True)
    return 1 if res.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

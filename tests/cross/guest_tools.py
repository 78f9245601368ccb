"""Guest-side helpers of the cross-protocol suite and bench/bench-cross; run
with the host's python3 inside the nfs-vm guest, on the NFS mount:

    python3 guest_tools.py checkpoint DIR NAME SIZE SEED   write NAME.tmp, fsync, rename to NAME
    python3 guest_tools.py patch FILE OFFSET LEN SEED      overwrite in place (O_DIRECT-free), close
    python3 guest_tools.py reader FILE SECONDS STOPFILE    read the whole file in a loop (see below)
    python3 guest_tools.py tree DIR                        the listing tree (names printed, one a line)
    python3 guest_tools.py watch FILE WANT_SIZE TIMEOUT    poll stat() until FILE has WANT_SIZE bytes
    python3 guest_tools.py putwatch URL FILE SIZE TIMEOUT  PUT to a presigned URL, then poll FILE (bench)
    python3 guest_tools.py publish DIR NAME SIZE HEAD_URL  checkpoint, then poll a presigned HEAD (bench)

Data comes from random.Random(seed).randbytes, so the host (same Python)
computes the same bytes and checksums without moving them.
"""

from __future__ import annotations

import errno
import json
import os
import random
import sys
import time

PIECE_BYTES = 1 << 20


def data(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def checkpoint(d: str, name: str, size: int, seed: int) -> None:
    """A checkpoint writer: temp name, writes in 1 MiB pieces (the last
    quarter first, as a parallel writer might), fsync, atomic rename."""
    body = data(size, seed)
    tmp = os.path.join(d, name + ".tmp")
    t0 = time.monotonic()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        split = (size * 3 // 4) // PIECE_BYTES * PIECE_BYTES
        for off in list(range(split, size, PIECE_BYTES)) + list(range(0, split, PIECE_BYTES)):
            os.pwrite(fd, body[off : off + PIECE_BYTES], off)
        os.fsync(fd)
    finally:
        os.close(fd)
    t1 = time.monotonic()
    os.rename(tmp, os.path.join(d, name))
    t2 = time.monotonic()
    print(json.dumps({"write_fsync_s": t1 - t0, "rename_s": t2 - t1, "done_at": time.time()}))


def patch(path: str, offset: int, length: int, seed: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data(length, seed), offset)
    finally:
        os.close(fd)


def reader(path: str, seconds: float, stopfile: str) -> None:
    """Opens and reads the whole file again and again. Every version the
    host writes is one byte value repeated (version % 251 + 1), so a read
    that mixes two versions is detected. Prints a JSON summary."""
    stats = {"reads": 0, "mixed": 0, "estale": 0, "enoent": 0, "short": 0, "other_errors": [], "versions": []}
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(stopfile):
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except OSError as e:
            if e.errno == errno.ESTALE:
                stats["estale"] += 1
            elif e.errno == errno.ENOENT:
                stats["enoent"] += 1
            else:
                stats["other_errors"].append(f"{errno.errorcode.get(e.errno, e.errno)}: {e}")
            continue
        if not buf:
            stats["short"] += 1
            continue
        if buf.count(buf[:1]) != len(buf):
            stats["mixed"] += 1
            continue
        stats["reads"] += 1
        if not seen or seen[-1] != buf[0]:
            seen.append(buf[0])
    stats["versions"] = seen
    stats["other_errors"] = stats["other_errors"][:5]
    print(json.dumps(stats))


TREE_NAMES = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%41.txt",
    "amp&lt.txt",
    "caf\u00e9.txt",
    "cafe\u0301.txt",
    "\u65e5\u672c\u8a9e.bin",
    "emoji-\U0001f600",
    "q'uote\"d",
    "tab\tname",
    "a-b",
    "a.b",
    "a0",
    "~tilde",
]


def tree(root: str) -> None:
    """Makes a tree of files and directories (some empty) with awkward names
    under root and prints every file key and directory key ("d/") relative
    to root, as JSON."""
    files, dirs = [], []
    rnd = random.Random(7)
    os.makedirs(root)
    layout = ["", "a", "a/b c", "a/b c/d+e", "x%2Fy", "\u00fcml", "a b", "a+b", "empty dir", "a/empty"]
    for d in layout:
        if d:
            os.makedirs(os.path.join(root, d), exist_ok=True)
            dirs.append(d + "/")
    for d in layout:
        if "empty" in d:
            continue
        for name in rnd.sample(TREE_NAMES, 6):
            rel = f"{d}/{name}" if d else name
            with open(os.path.join(root, rel), "wb") as f:
                f.write(rel.encode())
            files.append(rel)
    print(json.dumps({"files": files, "dirs": dirs}))


def watch(path: str, want_size: int, timeout: float) -> None:
    """Polls stat() (and then reads) until the file has want_size bytes;
    prints the guest time it was seen."""
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        try:
            if os.stat(path).st_size == want_size:
                print(json.dumps({"seen_at": time.time(), "polls": polls}))
                return
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    print(json.dumps({"seen_at": None, "polls": polls}))
    sys.exit(1)


def putwatch(url: str, path: str, size: int, timeout: float) -> None:
    """PUTs `size` bytes to a presigned URL (the gateway, seen from the
    guest at 10.0.2.2), then polls stat() of the file over NFS until it has
    that size: time from the PUT's reply to visibility, on the guest clock."""
    import urllib.request

    body = bytes([size % 251]) * size
    req = urllib.request.Request(url, data=body, method="PUT")
    # A polling application has just looked at the file (or its absence):
    # the client's caches are as warm as they would be in its loop.
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    t1 = time.monotonic()
    polls = 0
    while True:
        polls += 1
        try:
            if os.stat(path).st_size == size:
                break
        except FileNotFoundError:
            pass
        if time.monotonic() - t1 > timeout:
            print(json.dumps({"put_s": t1 - t0, "visible_s": None, "polls": polls}))
            sys.exit(1)
        time.sleep(0.0005)
    t2 = time.monotonic()
    print(json.dumps({"put_s": t1 - t0, "visible_s": t2 - t1, "polls": polls}))


def publish(d: str, name: str, size: int, head_url: str) -> None:
    """A checkpoint of `size` bytes written to NAME.tmp (1 MiB writes),
    fsync, rename to NAME; then a presigned HEAD of the key is polled until
    it answers 200. Times on the guest clock."""
    import urllib.error
    import urllib.request

    piece = bytes(range(256)) * (PIECE_BYTES // 256)
    tmp = os.path.join(d, name + ".tmp")
    t0 = time.monotonic()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for off in range(0, size, PIECE_BYTES):
        os.pwrite(fd, piece[: min(PIECE_BYTES, size - off)], off)
    os.fsync(fd)
    os.close(fd)
    t1 = time.monotonic()
    os.rename(tmp, os.path.join(d, name))
    t2 = time.monotonic()
    tries = 0
    while True:
        tries += 1
        try:
            with urllib.request.urlopen(urllib.request.Request(head_url, method="HEAD"), timeout=30) as r:
                if r.status == 200 and int(r.headers["Content-Length"]) == size:
                    break
        except urllib.error.HTTPError:
            pass
        if time.monotonic() - t2 > 60:
            sys.exit("HEAD never succeeded")
    t3 = time.monotonic()
    print(json.dumps({"write_fsync_s": t1 - t0, "rename_s": t2 - t1, "head_ok_after_rename_s": t3 - t2,
                      "head_tries": tries}))


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "checkpoint":
        checkpoint(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "patch":
        patch(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif cmd == "reader":
        reader(args[0], float(args[1]), args[2])
    elif cmd == "tree":
        tree(args[0])
    elif cmd == "watch":
        watch(args[0], int(args[1]), float(args[2]))
    elif cmd == "putwatch":
        putwatch(args[0], args[1], int(args[2]), float(args[3]))
    elif cmd == "publish":
        publish(args[0], args[1], int(args[2]), args[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()

"""Helpers of the cross-protocol suite (tests/cross/cross-suite) and of
bench/bench-cross: the host's side of the guest agent (tests/cross/guest-agent,
running in the nfs-vm guest with the gateway mounted), boto3 clients per
user, checksums, and PASS/FAIL bookkeeping.

The S3 helpers of tests/s3/s3util.py are reused (same venv, same clients).
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import shlex
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "s3"))

import s3util  # noqa: E402  (tests/s3 on the path first)
from botocore.exceptions import ClientError  # noqa: E402

# Seconds a guest command may run unless told otherwise.
GUEST_TIMEOUT_S = 300


class GuestError(AssertionError):
    """A guest command failed (non-zero exit status)."""


@dataclass
class GuestResult:
    rc: int
    out: str
    err: str

    def check(self, what: str) -> "GuestResult":
        if self.rc != 0:
            raise GuestError(f"guest command failed ({what}), exit {self.rc}:\n{self.out[-2000:]}\n{self.err[-2000:]}")
        return self


class GuestJob:
    """A command running in the guest."""

    def __init__(self, guest: "Guest", ident: str, what: str):
        self.guest, self.id, self.what = guest, ident, what

    def done(self) -> bool:
        p = self.guest.out_dir / f"rc-{self.id}"
        return p.exists() and p.read_text().endswith("\n")

    def wait(self, timeout: float = GUEST_TIMEOUT_S) -> GuestResult:
        deadline = time.monotonic() + timeout
        rc_path = self.guest.out_dir / f"rc-{self.id}"
        delay = 0.005
        while not (rc_path.exists() and rc_path.read_text().endswith("\n")):
            if time.monotonic() > deadline:
                raise GuestError(f"guest command timed out after {timeout}s: {self.what}")
            if self.guest.vm_dead():
                raise GuestError(f"the VM ended while running: {self.what}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        o = self.guest.out_dir
        res = GuestResult(
            int(rc_path.read_text().strip() or "255"),
            (o / f"out-{self.id}").read_text(errors="replace"),
            (o / f"err-{self.id}").read_text(errors="replace"),
        )
        for name in (f"rc-{self.id}", f"out-{self.id}", f"err-{self.id}", f"cmd-{self.id}.sh"):
            (o / name).unlink(missing_ok=True)
        return res


class Guest:
    """Runs bash snippets in the nfs-vm guest through the agent. The mount of
    the gateway's root export is `mnt` in the guest; commands start there."""

    def __init__(self, out_dir: Path, mnt: str = "/mnt", vm_pid: Optional[int] = None):
        self.out_dir = Path(out_dir)
        self.mnt = mnt
        self.vm_pid = vm_pid
        self._ids = itertools.count(1)

    def vm_dead(self) -> bool:
        if self.vm_pid is None:
            return False
        try:
            os.kill(self.vm_pid, 0)
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False

    def wait_ready(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        p = self.out_dir / "agent-ready"
        while not p.exists():
            if time.monotonic() > deadline or self.vm_dead():
                raise GuestError("the guest agent did not start (see the VM log)")
            time.sleep(0.1)
        return p.read_text().strip()

    def start(self, script: str, what: str = "") -> GuestJob:
        ident = f"{next(self._ids):05d}"
        tmp = self.out_dir / f".cmd-{ident}"
        tmp.write_text("set -euo pipefail\n" + script + "\n")
        tmp.rename(self.out_dir / f"cmd-{ident}.sh")
        return GuestJob(self, ident, what or script.strip().splitlines()[0][:80])

    def run(self, script: str, timeout: float = GUEST_TIMEOUT_S, check: bool = True, what: str = "") -> GuestResult:
        res = self.start(script, what).wait(timeout)
        return res.check(what or script.strip()[:200]) if check else res

    def sh(self, script: str, **kw) -> str:
        """Runs `script` (must succeed) and returns its stdout."""
        return self.run(script, **kw).out

    def quit(self) -> None:
        (self.out_dir / "quit").write_text("")


def q(s) -> str:
    """Shell-quotes a str or a bytes path (bytes go through $'...')."""
    if isinstance(s, bytes):
        return "$'" + "".join(f"\\x{b:02x}" for b in s) + "'"
    return shlex.quote(s)


# ------------------------------------------------------------------ S3


@dataclass
class Endpoint:
    """What s3util.make_client needs of a gateway."""

    url: str
    access_key: str
    secret_key: str
    ca_path: Optional[str] = None

    @property
    def verify(self):
        return None


def client(url: str, access_key: str, secret_key: str, **config):
    return s3util.make_client(Endpoint(url, access_key, secret_key), **config)


def crc64nvme(data: bytes, prev: int = 0) -> int:
    from awscrt import checksums

    return checksums.crc64nvme(data, prev)


def crc64nvme_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(8, "big")).decode()


def error_code(fn: Callable, *a, **kw) -> tuple[int, str]:
    """Calls fn; returns (HTTP status, S3 error code), or (200, "") on success."""
    try:
        r = fn(*a, **kw)
        body = r.get("Body") if isinstance(r, dict) else None
        if body is not None:
            body.read()
        return r["ResponseMetadata"]["HTTPStatusCode"], ""
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response.get("Error", {}).get("Code", "")


def expect_code(status: int, code: str, fn: Callable, *a, **kw) -> None:
    got = error_code(fn, *a, **kw)
    if code:
        assert got == (status, code), f"expected {status} {code}, got {got[0]} {got[1]}"
    else:
        assert got[0] == status, f"expected HTTP {status}, got {got[0]} {got[1]}"


def deterministic_bytes(n: int, seed: int) -> bytes:
    """Same bytes on the host and in the guest (same Python)."""
    return random.Random(seed).randbytes(n)


# ------------------------------------------------------------------ results


class Results:
    def __init__(self, only: str = "", skip: str = ""):
        import re

        self.only = re.compile(only) if only else None
        self.skip = re.compile(skip) if skip else None
        self.passed: list[str] = []
        self.failed: list[str] = []

    def check(self, name: str, fn: Callable[[], Optional[str]]) -> None:
        if self.only and not self.only.search(name):
            return
        if self.skip and self.skip.search(name):
            print(f"SKIP {name}", flush=True)
            return
        t0 = time.monotonic()
        try:
            note = fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, the suite goes on
            dt = time.monotonic() - t0
            print(f"FAIL {name} ({dt:.1f}s): {type(e).__name__}: {str(e)[:3000]}", flush=True)
            tb = traceback.format_exc().splitlines()
            for line in tb[-12:]:
                print(f"    | {line}", flush=True)
            self.failed.append(name)
            return
        dt = time.monotonic() - t0
        print(f"PASS {name} ({dt:.1f}s)", flush=True)
        if note:
            for line in str(note).splitlines():
                print(f"    {line}", flush=True)
        self.passed.append(name)

"""rclone (Debian's package) against the gateway: copy, sync and check, the
way users move datasets in and out. rclone compares MD5 ETags on single-part
objects, so a wrong ETag or a torn upload fails `rclone check`."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from s3util import MIB, REGION, random_bytes, unique_bucket_name

RCLONE_TIMEOUT_S = 300


@pytest.fixture(scope="module", autouse=True)
def require_rclone():
    if shutil.which("rclone") is None:
        pytest.fail("rclone not found: scripts/test-s3 installs Debian's rclone package", pytrace=False)


@pytest.fixture
def rclone(gw, tmp_path):
    """Runs `rclone ...` with a remote `gw:` configured by environment only."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "RCLONE_CONFIG": "/dev/null",
        "RCLONE_CONFIG_GW_TYPE": "s3",
        "RCLONE_CONFIG_GW_PROVIDER": "Other",
        "RCLONE_CONFIG_GW_ACCESS_KEY_ID": gw.access_key,
        "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": gw.secret_key,
        "RCLONE_CONFIG_GW_ENDPOINT": gw.url,
        "RCLONE_CONFIG_GW_REGION": REGION,
        "RCLONE_CONFIG_GW_FORCE_PATH_STYLE": "true",
    }
    base = ["rclone", "--retries", "1", "--low-level-retries", "1"]
    if gw.ca_path:
        base += ["--ca-cert", gw.ca_path]

    def run(*args, check=True):
        proc = subprocess.run(base + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=RCLONE_TIMEOUT_S)
        if check and proc.returncode != 0:
            pytest.fail(f"rclone {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stderr}", pytrace=False)
        return proc

    return run


def make_tree(root: Path) -> None:
    """A small dataset: nested dirs, an empty file, a file big enough for
    rclone's multipart upload (over its 200 MiB cutoff is too slow here, so
    one file crosses the chunk size instead)."""
    (root / "train" / "shard-0").mkdir(parents=True)
    (root / "val").mkdir()
    for i in range(20):
        (root / "train" / "shard-0" / f"sample-{i:03}.bin").write_bytes(random_bytes(10_000 + i, seed=i))
    (root / "val" / "labels.csv").write_text("id,label\n1,cat\n2,dog\n")
    (root / "empty").write_bytes(b"")
    (root / "big.bin").write_bytes(random_bytes(9 * MIB, seed=99))


def test_copy_check_and_copy_back(rclone, tmp_path):
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src)
    bucket = unique_bucket_name("rclone")
    rclone("mkdir", f"gw:{bucket}")
    rclone("copy", src, f"gw:{bucket}/data")
    rclone("check", src, f"gw:{bucket}/data")
    rclone("copy", f"gw:{bucket}/data", back)
    diff = subprocess.run(["diff", "-r", str(src), str(back)], capture_output=True, text=True)
    assert diff.returncode == 0, diff.stdout
    listing = rclone("lsf", "-R", f"gw:{bucket}/data").stdout.split()
    assert "train/shard-0/sample-000.bin" in listing and "big.bin" in listing
    rclone("purge", f"gw:{bucket}")


def test_sync_deletes_and_check_detects_changes(rclone, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    bucket = unique_bucket_name("rclone-sync")
    rclone("mkdir", f"gw:{bucket}")
    rclone("sync", src, f"gw:{bucket}")
    (src / "val" / "labels.csv").unlink()
    (src / "train" / "shard-0" / "sample-001.bin").write_bytes(b"changed")
    rclone("sync", src, f"gw:{bucket}")
    rclone("check", src, f"gw:{bucket}")
    names = rclone("lsf", "-R", f"gw:{bucket}").stdout.split()
    assert "val/labels.csv" not in names
    # A local change that was not synced is reported by check.
    (src / "train" / "shard-0" / "sample-002.bin").write_bytes(b"drift")
    assert rclone("check", src, f"gw:{bucket}", check=False).returncode != 0
    rclone("purge", f"gw:{bucket}")

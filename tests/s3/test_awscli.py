"""The AWS CLI (v1, from the venv) against the gateway: high-level `aws s3`
transfers (multipart cp, sync, ls, rm) and low-level `aws s3api` calls."""

import filecmp
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3util import MIB, REGION, REPO_ROOT, multipart_etag, random_bytes, unique_bucket_name

CLI_TIMEOUT_S = 300


def aws_bin() -> Path:
    """The venv's `aws`, next to the running interpreter (normally .venv/bin/aws)."""
    beside = Path(sys.executable).with_name("aws")
    return beside if beside.exists() else REPO_ROOT / ".venv" / "bin" / "aws"


@pytest.fixture(scope="module", autouse=True)
def require_aws_cli():
    if not aws_bin().exists():
        pytest.fail(f"aws CLI not found at {aws_bin()}: run scripts/python-env", pytrace=False)


@pytest.fixture
def aws(gw, tmp_path):
    """Runs `aws ...` against the gateway and returns the CompletedProcess;
    fails the test with the CLI's output if it exits non-zero."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": gw.access_key,
        "AWS_SECRET_ACCESS_KEY": gw.secret_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    base = [str(aws_bin()), "--endpoint-url", gw.url, "--output", "json"]
    if gw.ca_path:
        base += ["--ca-bundle", gw.ca_path]

    def run(*args, check=True):
        proc = subprocess.run(
            base + [str(a) for a in args],
            env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"aws {' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
                pytrace=False,
            )
        return proc

    return run


def run_json(aws, *args):
    return json.loads(aws(*args).stdout)


def assert_trees_equal(left: Path, right: Path):
    """Same relative file names and byte-identical contents."""

    def files(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(left) == files(right)
    match, mismatch, errors = filecmp.cmpfiles(left, right, files(left), shallow=False)
    assert mismatch == [] and errors == [], (mismatch, errors)


def make_tree(root: Path) -> Path:
    """A small directory tree with awkward names and an empty file; every
    mtime is set an hour back so a second sync has nothing to upload."""
    files = {
        "a.txt": b"alpha\n",
        "empty.txt": b"",
        "name with space.txt": b"space\n",
        "plus+sign.txt": b"plus\n",
        "unicodé.txt": "ü\n".encode(),
        "sub/b.bin": random_bytes(100_000, seed=21),
        "sub/deeper/c.txt": b"gamma\n",
        "sub/deeper/deepest/d.bin": random_bytes(9 * MIB, seed=22),  # multipart in sync
    }
    past = time.time() - 3600
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (past, past))
    return root


def test_cp_up_and_down_multipart(aws, s3, bucket, tmp_path):
    """`aws s3 cp` of 30 MiB goes multipart (8 MiB parts by default), and
    the file comes back identical."""
    data = random_bytes(30 * MIB, seed=30)
    src, dst = tmp_path / "big.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    aws("s3", "cp", src, f"s3://{bucket}/cli/big.bin")
    head = s3.head_object(Bucket=bucket, Key="cli/big.bin")
    assert head["ContentLength"] == len(data)
    chunks = [data[i : i + 8 * MIB] for i in range(0, len(data), 8 * MIB)]
    assert head["ETag"] == multipart_etag(chunks)
    aws("s3", "cp", f"s3://{bucket}/cli/big.bin", dst)
    assert filecmp.cmp(src, dst, shallow=False)


def test_cp_small_file_and_server_side_copy(aws, s3, bucket, tmp_path):
    """A single-part `aws s3 cp` keeps --content-type; an s3-to-s3 cp is a server-side copy."""
    src = tmp_path / "small.txt"
    src.write_bytes(b"small file\n")
    aws("s3", "cp", src, f"s3://{bucket}/one.txt", "--content-type", "text/plain")
    aws("s3", "cp", f"s3://{bucket}/one.txt", f"s3://{bucket}/copies/two.txt")
    got = s3.get_object(Bucket=bucket, Key="copies/two.txt")
    assert got["Body"].read() == b"small file\n"
    assert got["ContentType"] == "text/plain"


def test_sync_tree_up_and_back_down(aws, s3, bucket, tmp_path):
    """`aws s3 sync` uploads a tree, a second sync finds nothing to do, and a
    sync down reproduces the tree byte for byte."""
    up = make_tree(tmp_path / "up")
    aws("s3", "sync", up, f"s3://{bucket}/tree/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="tree/")["Contents"])
    assert keys == sorted(f"tree/{p.relative_to(up).as_posix()}" for p in up.rglob("*") if p.is_file())

    again = aws("s3", "sync", up, f"s3://{bucket}/tree/")
    assert again.stdout.strip() == "", f"second sync re-uploaded:\n{again.stdout}"

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/tree/", down)
    assert_trees_equal(up, down)


def test_ls_lists_buckets_prefixes_and_objects(aws, s3, bucket):
    """`aws s3 ls` shows buckets, PRE lines for common prefixes, sizes, and --recursive keys."""
    for key, body in (("top.txt", b"12345"), ("dir/inner.txt", b"x"), ("dir/sub/deep.txt", b"y")):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert bucket in aws("s3", "ls").stdout

    lines = aws("s3", "ls", f"s3://{bucket}/").stdout.splitlines()
    assert any(line.split() == ["PRE", "dir/"] for line in lines), lines
    top = [line for line in lines if line.endswith(" top.txt")]
    assert len(top) == 1 and top[0].split()[2] == "5", lines

    recursive = aws("s3", "ls", f"s3://{bucket}/", "--recursive").stdout
    listed = sorted(line.split(maxsplit=3)[3] for line in recursive.splitlines())
    assert listed == ["dir/inner.txt", "dir/sub/deep.txt", "top.txt"]


def test_rm_recursive_removes_a_prefix(aws, s3, bucket):
    """`aws s3 rm --recursive` (list + multi-delete) removes one prefix and nothing else."""
    for i in range(12):
        s3.put_object(Bucket=bucket, Key=f"trash/{i % 3}/f{i}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"k")
    aws("s3", "rm", f"s3://{bucket}/trash/", "--recursive")
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert remaining == ["keep.txt"]


def test_mb_and_rb(aws, s3):
    """`aws s3 mb` / `aws s3 rb` create and delete a bucket."""
    name = unique_bucket_name("cli-mb")
    aws("s3", "mb", f"s3://{name}")
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    aws("s3", "rb", f"s3://{name}")
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3api_multipart_upload(aws, s3, bucket, tmp_path):
    """create-multipart-upload / upload-part / complete-multipart-upload by hand."""
    part1, part2 = random_bytes(5 * MIB, seed=41), random_bytes(1000, seed=42)
    (tmp_path / "p1").write_bytes(part1)
    (tmp_path / "p2").write_bytes(part2)
    key = "api/mpu.bin"
    upload_id = run_json(aws, "s3api", "create-multipart-upload", "--bucket", bucket, "--key", key)["UploadId"]
    parts = []
    for number, path in ((1, tmp_path / "p1"), (2, tmp_path / "p2")):
        out = run_json(
            aws, "s3api", "upload-part", "--bucket", bucket, "--key", key,
            "--upload-id", upload_id, "--part-number", number, "--body", path,
        )
        parts.append({"PartNumber": number, "ETag": out["ETag"]})
    listed = run_json(aws, "s3api", "list-parts", "--bucket", bucket, "--key", key, "--upload-id", upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    manifest = tmp_path / "parts.json"
    manifest.write_text(json.dumps({"Parts": parts}))
    done = run_json(
        aws, "s3api", "complete-multipart-upload", "--bucket", bucket, "--key", key,
        "--upload-id", upload_id, "--multipart-upload", f"file://{manifest}",
    )
    assert done["ETag"] == multipart_etag([part1, part2])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == part1 + part2


def test_s3api_copy_object(aws, s3, bucket):
    """`aws s3api copy-object` returns the ETag, copies metadata, and honours REPLACE."""
    s3.put_object(Bucket=bucket, Key="api/src", Body=b"copy me", Metadata={"a": "1"})
    out = run_json(
        aws, "s3api", "copy-object", "--bucket", bucket, "--key", "api/dst", "--copy-source", f"{bucket}/api/src",
    )
    assert out["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=bucket, Key="api/src")["ETag"]
    run_json(
        aws, "s3api", "copy-object", "--bucket", bucket, "--key", "api/dst2",
        "--copy-source", f"{bucket}/api/src", "--metadata-directive", "REPLACE", "--metadata", "b=2",
    )
    assert s3.get_object(Bucket=bucket, Key="api/dst")["Body"].read() == b"copy me"
    assert s3.head_object(Bucket=bucket, Key="api/dst")["Metadata"] == {"a": "1"}
    assert s3.head_object(Bucket=bucket, Key="api/dst2")["Metadata"] == {"b": "2"}


def test_s3api_error_exit_status(aws, bucket):
    """A failed call exits non-zero and prints the S3 error code."""
    proc = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing", check=False)
    assert proc.returncode != 0
    assert "404" in proc.stderr
    proc = aws("s3api", "get-object", "--bucket", bucket, "--key", "missing", "/dev/null", check=False)
    assert proc.returncode != 0
    assert "NoSuchKey" in proc.stderr

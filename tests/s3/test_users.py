"""Users, identities and rights: each access key acts as a POSIX user and
holds per-bucket rights; a request must pass both. Also the admin commands
(`gateway user ...`, `gateway bucket ...`) against a running gateway and
offline, TLS reload on SIGHUP, configuration errors and the second SIGTERM."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from s3util import (
    Gateway,
    gateway_bin,
    make_client,
    random_bytes,
    start_gateway,
    write_test_certificate,
)

USERS_TOML = """
s3_file_mode = 0o644
s3_dir_mode = 0o755
[s3_default_identity]
uid = 65534
gid = 65534
[[user]]
name = "alice"
access_key = "ALICEKEY"
secret_key = "alice-secret-0001"
uid = 1000
gid = 1000
buckets = { "*" = "admin" }
[[user]]
name = "bob"
access_key = "BOBKEY"
secret_key = "bob-secret-0001"
uid = 1001
gid = 1001
[[user]]
name = "reader"
access_key = "READERKEY"
secret_key = "reader-secret-01"
uid = 1002
gid = 1002
buckets = { "*" = "read" }
[[user]]
name = "narrow"
access_key = "NARROWKEY"
secret_key = "narrow-secret-01"
uid = 1000
gid = 1000
buckets = { "narrow-only" = "write" }
[[user]]
name = "unmapped"
access_key = "UNMAPPEDKEY"
secret_key = "unmapped-secret-1"
"""


def code_of(e: ClientError) -> tuple[str, int]:
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def denied(fn, *args, **kw) -> None:
    with pytest.raises(ClientError) as ei:
        fn(*args, **kw)
    # A HEAD response has no body, so botocore reports the status as code.
    expected = ("403", 403) if fn.__name__ == "head_object" else ("AccessDenied", 403)
    assert code_of(ei.value) == expected, ei.value.response


def cli(*args: str, data_dir: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.pop("GATEWAY_DATA_DIR", None)
    e.update(env or {})
    p = subprocess.run(
        [str(gateway_bin()), *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=60, env=e,
    )
    if check:
        assert p.returncode == 0, f"gateway {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def users_gw(tmp_path_factory) -> Gateway:
    base = tmp_path_factory.mktemp("users")
    cfg = base / "gateway.toml"
    cfg.write_text(USERS_TOML)
    gw = start_gateway(base / "data", base / "gateway.log", extra_args=["--config", str(cfg)])
    yield gw
    gw.stop()


def as_user(gw: Gateway, ak: str, sk: str):
    return make_client(gw, access_key=ak, secret_key=sk)


def test_posix_permissions_of_the_mapped_user_apply_to_s3(users_gw):
    alice = as_user(users_gw, "ALICEKEY", "alice-secret-0001")
    bob = as_user(users_gw, "BOBKEY", "bob-secret-0001")
    alice.create_bucket(Bucket="perm-a")
    alice.put_object(Bucket="perm-a", Key="dir/a.txt", Body=b"alice's")
    # 0644 file in a 0755 directory owned by alice: bob reads, cannot change.
    assert bob.get_object(Bucket="perm-a", Key="dir/a.txt")["Body"].read() == b"alice's"
    denied(bob.put_object, Bucket="perm-a", Key="dir/a.txt", Body=b"bob's")
    denied(bob.delete_object, Bucket="perm-a", Key="dir/a.txt")
    denied(bob.put_object, Bucket="perm-a", Key="top.txt", Body=b"x")
    denied(bob.put_object, Bucket="perm-a", Key="dir/new.txt", Body=b"x")
    denied(bob.create_multipart_upload, Bucket="perm-a", Key="dir/mpu.bin")
    r = bob.delete_objects(Bucket="perm-a", Delete={"Objects": [{"Key": "dir/a.txt"}]})
    assert [e["Code"] for e in r.get("Errors", [])] == ["AccessDenied"], r
    # Nothing bob tried changed anything.
    assert alice.get_object(Bucket="perm-a", Key="dir/a.txt")["Body"].read() == b"alice's"
    # A key without its own uid acts as the default identity ("other").
    nobody = as_user(users_gw, "UNMAPPEDKEY", "unmapped-secret-1")
    assert nobody.get_object(Bucket="perm-a", Key="dir/a.txt")["Body"].read() == b"alice's"
    denied(nobody.put_object, Bucket="perm-a", Key="dir/b.txt", Body=b"x")
    # The owner may still do everything.
    alice.put_object(Bucket="perm-a", Key="dir/a.txt", Body=b"v2")
    alice.delete_object(Bucket="perm-a", Key="dir/a.txt")


def test_bucket_rights_come_before_posix(users_gw):
    alice = as_user(users_gw, "ALICEKEY", "alice-secret-0001")
    reader = as_user(users_gw, "READERKEY", "reader-secret-01")
    narrow = as_user(users_gw, "NARROWKEY", "narrow-secret-01")
    bob = as_user(users_gw, "BOBKEY", "bob-secret-0001")
    alice.create_bucket(Bucket="rights-a")
    alice.create_bucket(Bucket="narrow-only")
    alice.put_object(Bucket="rights-a", Key="k", Body=b"data")
    # read: list and get, no writes.
    assert reader.get_object(Bucket="rights-a", Key="k")["Body"].read() == b"data"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket="rights-a")["Contents"]] == ["k"]
    denied(reader.put_object, Bucket="rights-a", Key="r", Body=b"x")
    denied(reader.delete_object, Bucket="rights-a", Key="k")
    # write is not admin: no bucket creation or deletion.
    denied(bob.create_bucket, Bucket="bob-made")
    denied(bob.delete_bucket, Bucket="narrow-only")
    # narrow (same uid as alice) holds a right on one bucket only.
    names = [b["Name"] for b in narrow.list_buckets()["Buckets"]]
    assert names == ["narrow-only"], names
    denied(narrow.head_object, Bucket="rights-a", Key="k")
    denied(narrow.list_objects_v2, Bucket="rights-a")
    narrow.put_object(Bucket="narrow-only", Key="mine", Body=b"n")
    # Copying reads the source: the read right on its bucket is needed.
    denied(narrow.copy_object, Bucket="narrow-only", Key="copy", CopySource={"Bucket": "rights-a", "Key": "k"})
    alice.copy_object(Bucket="narrow-only", Key="copy", CopySource={"Bucket": "rights-a", "Key": "k"})
    assert narrow.get_object(Bucket="narrow-only", Key="copy")["Body"].read() == b"data"


def test_user_commands_change_a_running_gateway_at_once(users_gw):
    data = users_gw.data_dir
    out = cli("user", "add", "carol", "--uid", "1003", "--gid", "1003", "--bucket", "*=read", data_dir=data).stdout
    ak = re.search(r"access key: (\S+)", out).group(1)
    sk = re.search(r"secret key: (\S+)", out).group(1)
    assert "reloaded" in out, out
    users_file = data / "users.toml"
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    carol = as_user(users_gw, ak, sk)
    alice = as_user(users_gw, "ALICEKEY", "alice-secret-0001")
    alice.create_bucket(Bucket="carol-sees")
    assert "carol-sees" in [b["Name"] for b in carol.list_buckets()["Buckets"]]
    denied(carol.put_object, Bucket="carol-sees", Key="x", Body=b"x")
    listing = cli("user", "list", data_dir=data).stdout
    assert "carol" in listing and ak in listing and sk not in listing, listing
    dup = cli("user", "add", "carol", data_dir=data, check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr, dup.stderr
    cli("user", "remove", "carol", data_dir=data)
    with pytest.raises(ClientError) as ei:
        carol.list_buckets()
    assert code_of(ei.value) == ("InvalidAccessKeyId", 403)
    # No secret ever reaches the log.
    assert sk not in users_gw.log_tail(100000)
    assert "alice-secret-0001" not in users_gw.log_tail(100000)


def test_bucket_commands_online_and_offline(tmp_path):
    data = tmp_path / "data"
    gw = start_gateway(data, tmp_path / "gateway.log")
    try:
        root = make_client(gw)
        out = cli("bucket", "create", "cli-made", "--uid", "1000", "--gid", "1000", "--mode", "775", data_dir=data)
        assert "created bucket cli-made" in out.stdout
        assert "cli-made" in [b["Name"] for b in root.list_buckets()["Buckets"]]
        listing = cli("bucket", "list", data_dir=data).stdout
        assert re.search(r"^cli-made\towner 1000:1000\tmode 775$", listing, re.M), listing
        root.put_object(Bucket="cli-made", Key="f", Body=b"x")
        busy = cli("bucket", "remove", "cli-made", data_dir=data, check=False)
        assert busy.returncode != 0 and "not empty" in busy.stderr, busy.stderr
        bad = cli("bucket", "create", "Not_A_Bucket", data_dir=data, check=False)
        assert bad.returncode != 0 and "not a valid bucket name" in bad.stderr, bad.stderr
        root.delete_object(Bucket="cli-made", Key="f")
        cli("bucket", "remove", "cli-made", data_dir=data)
        assert "cli-made" not in [b["Name"] for b in root.list_buckets()["Buckets"]]
    finally:
        gw.stop()
    # Offline: the commands open the data directory themselves.
    cli("bucket", "create", "offline-made", data_dir=data)
    assert "offline-made" in cli("bucket", "list", data_dir=data).stdout
    gw = start_gateway(data, tmp_path / "gateway.log")
    try:
        assert "offline-made" in [b["Name"] for b in make_client(gw).list_buckets()["Buckets"]]
    finally:
        gw.stop()


def _peer_cert(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return t.getpeercert(binary_form=True)


def _pem_der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_sighup_reloads_the_certificate_without_dropping_connections(tmp_path):
    _, cert, key = write_test_certificate(tmp_path / "a")
    live_cert, live_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    ca_b, cert_b, key_b = write_test_certificate(tmp_path / "b")
    gw = start_gateway(tmp_path / "data", tmp_path / "gateway.log", tls_cert=live_cert, tls_key=live_key)
    try:
        port = int(gw.url.rsplit(":", 1)[1])
        assert _peer_cert(port) == _pem_der(cert)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        kept = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        kept.request("GET", "/")
        assert kept.getresponse().read() is not None
        # A broken pair is refused and the old certificate stays.
        live_cert.write_text("not a certificate")
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert _peer_cert(port) == _pem_der(cert)
        live_cert.write_bytes(cert_b.read_bytes())
        live_key.write_bytes(key_b.read_bytes())
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _peer_cert(port) != _pem_der(cert_b):
            assert time.monotonic() < deadline, "the new certificate was not picked up"
            time.sleep(0.1)
        # The connection opened before the reload still works.
        kept.request("GET", "/")
        resp = kept.getresponse()
        resp.read()
        assert resp.status == 403  # unsigned request: answered, not dropped
        # And a verifying client trusts the new chain.
        gw.ca_path = str(ca_b)
        assert "Buckets" in make_client(gw).list_buckets()
        assert "TLS reload failed" in gw.log_tail(200)
    finally:
        gw.stop()


def test_invalid_configuration_stops_start_up_naming_the_key(tmp_path):
    cases = {
        "s3_file_mode = 0o77777\n": "s3_file_mode",
        "nfs_listen = \"nowhere\"\n": "nfs_listen",
        "[[user]]\nname = \"x\"\naccess_key = \"AK\"\nsecret_key = \"12345678\"\n": "user[0].access_key",
        "[nfs_export_defaults]\nsquash = \"sometimes\"\n": "squash",
        "unknown_key = 1\n": "unknown_key",
    }
    for text, key in cases.items():
        cfg = tmp_path / "bad.toml"
        cfg.write_text(text)
        p = subprocess.run(
            [str(gateway_bin()), "serve", "--data-dir", str(tmp_path / "d"), "--config", str(cfg)],
            capture_output=True, text=True, timeout=30,
        )
        assert p.returncode != 0, text
        assert key in p.stderr, (text, p.stderr)


def test_second_sigterm_exits_at_once_and_loses_nothing(tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text("shutdown_deadline_secs = 120\n")
    data = tmp_path / "data"
    gw = start_gateway(data, tmp_path / "gateway.log", extra_args=["--config", str(cfg)])
    bodies = {f"k{i}": random_bytes(100_000 + i, seed=i) for i in range(20)}
    try:
        c = make_client(gw)
        c.create_bucket(Bucket="second")
        for k, v in bodies.items():
            c.put_object(Bucket="second", Key=k, Body=v)
        c.put_object(Bucket="second", Key="big", Body=random_bytes(32 << 20, seed=99))
        # A download left unread keeps the drain waiting.
        stalled = c.get_object(Bucket="second", Key="big")["Body"]
        stalled.read(1)
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert gw.proc.poll() is None, "the first SIGTERM should drain, not exit"
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        gw.proc.wait(timeout=10)
        assert time.monotonic() - t0 < 5, "the second SIGTERM did not exit at once"
    finally:
        gw.stop()
    gw = start_gateway(data, tmp_path / "gateway.log")
    try:
        c = make_client(gw)
        for k, v in bodies.items():
            assert c.get_object(Bucket="second", Key=k)["Body"].read() == v, k
    finally:
        gw.stop()


def test_fsck_checks_a_running_gateway_through_its_admin_socket(tmp_path):
    import json

    data = tmp_path / "data"
    gw = start_gateway(data, tmp_path / "gateway.log")
    try:
        c = make_client(gw)
        c.create_bucket(Bucket="fsck-online")
        for i in range(5):
            c.put_object(Bucket="fsck-online", Key=f"k{i}", Body=random_bytes(300_000, seed=i))
        clean = cli("fsck", "--json", data_dir=data, check=False)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        report = json.loads(clean.stdout)
        assert report["online"] is True and report["problems"] == [], report
        assert report["files"] == 5 and report["chunks_verified"] >= 5, report
        # Damage one chunk under the running gateway: found, reported, exit 1.
        victim = max((p for p in (data / "chunks").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        raw = bytearray(victim.read_bytes())
        raw[-10] ^= 0xFF
        victim.write_bytes(bytes(raw))
        damaged = cli("fsck", "--json", data_dir=data, check=False)
        assert damaged.returncode == 1, damaged.stdout + damaged.stderr
        kinds = [p["kind"] for p in json.loads(damaged.stdout)["problems"]]
        assert kinds and all("corrupt" in k.lower() for k in kinds), kinds
        # Repair needs the directory to itself.
        busy = cli("fsck", "--repair", data_dir=data, check=False)
        assert busy.returncode == 3 and "exclusive access" in busy.stderr, busy.stderr
    finally:
        gw.stop()


def test_request_refused_before_its_body_is_read_says_connection_close(users_gw):
    """Regression: a PUT refused before its body was read (here: unsigned)
    had its connection closed without `Connection: close`, so a client that
    reused the connection saw a reset instead of the next answer."""
    port = int(users_gw.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("PUT", "/some-bucket/key", body=b"x" * 16384)
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 403
    assert resp.getheader("Connection", "").lower() == "close", resp.getheaders()
    conn.close()
    # A bodiless request keeps its connection.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    assert resp.getheader("Connection", "").lower() != "close"
    conn.close()

"""The gateway process itself: TLS, SIGTERM, restart on the same data."""

import signal
import ssl
import time
import urllib.error
import urllib.request

import pytest

from s3util import make_client, random_bytes, start_gateway


def test_https_endpoint_presents_the_test_certificate(gateway_tls):
    """The HTTPS listener really is TLS with our certificate: trusted with the
    test CA (any S3 answer is fine, here 403 for an anonymous call), refused
    without it."""
    trusted = ssl.create_default_context(cafile=gateway_tls.ca_path)
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(gateway_tls.url + "/", timeout=30, context=trusted)
    assert answered.value.code == 403
    untrusted = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(gateway_tls.url + "/", timeout=30, context=untrusted)
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)


def test_https_works_by_hostname_localhost(gateway_tls):
    """The certificate names DNS localhost as well as IP 127.0.0.1."""
    port = gateway_tls.url.rsplit(":", 1)[1]
    trusted = ssl.create_default_context(cafile=gateway_tls.ca_path)
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(f"https://localhost:{port}/", timeout=30, context=trusted)
    assert answered.value.code == 403


def test_sigterm_stops_and_data_survives_restart(tmp_path):
    """SIGTERM ends the process promptly; a new process on the same data
    directory serves what the first one acknowledged."""
    data_dir, log = tmp_path / "data", tmp_path / "gateway.log"
    body = random_bytes(3 * 1024 * 1024 + 5, seed=77)

    first = start_gateway(data_dir, log)
    try:
        client = make_client(first)
        client.create_bucket(Bucket="restart-check")
        client.put_object(Bucket="restart-check", Key="kept/object.bin", Body=body, Metadata={"m": "1"})
        etag = client.head_object(Bucket="restart-check", Key="kept/object.bin")["ETag"]
        started = time.monotonic()
        status = first.stop(timeout=15)
        assert time.monotonic() - started < 15, "gateway did not stop within 15 s of SIGTERM"
        assert status in (0, -15), f"unexpected exit status {status} after SIGTERM:\n{first.log_tail()}"
    finally:
        first.stop()

    second = start_gateway(data_dir, log)
    try:
        client = make_client(second)
        got = client.get_object(Bucket="restart-check", Key="kept/object.bin")
        assert got["Body"].read() == body
        assert got["ETag"] == etag
        assert got["Metadata"] == {"m": "1"}
        assert "restart-check" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    finally:
        second.stop()


def test_open_multipart_upload_survives_restart(tmp_path):
    """Upload state is durable: parts sent before a restart complete after it."""
    data_dir, log = tmp_path / "data", tmp_path / "gateway.log"
    part1, part2 = random_bytes(5 * 1024 * 1024, seed=1), b"tail"
    gw = start_gateway(data_dir, log)
    try:
        client = make_client(gw)
        client.create_bucket(Bucket="mpu-restart")
        upload_id = client.create_multipart_upload(Bucket="mpu-restart", Key="k")["UploadId"]
        etag1 = client.upload_part(Bucket="mpu-restart", Key="k", UploadId=upload_id, PartNumber=1, Body=part1)["ETag"]
    finally:
        gw.stop()
    gw = start_gateway(data_dir, log)
    try:
        client = make_client(gw)
        etag2 = client.upload_part(Bucket="mpu-restart", Key="k", UploadId=upload_id, PartNumber=2, Body=part2)["ETag"]
        client.complete_multipart_upload(
            Bucket="mpu-restart", Key="k", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]},
        )
        assert client.get_object(Bucket="mpu-restart", Key="k")["Body"].read() == part1 + part2
    finally:
        gw.stop()


def test_kill_9_keeps_every_acknowledged_put(tmp_path):
    """An acknowledged write survives SIGKILL of the gateway: every PUT that
    got its 200 reads back byte for byte after a restart, with its ETag."""
    data_dir, log = tmp_path / "data", tmp_path / "gateway.log"
    bodies = {f"ckpt/step-{i:03}.bin": random_bytes(200_000 + i * 997, seed=i) for i in range(40)}
    gw = start_gateway(data_dir, log)
    etags = {}
    try:
        client = make_client(gw)
        client.create_bucket(Bucket="kill-nine")
        for key, body in bodies.items():
            etags[key] = client.put_object(Bucket="kill-nine", Key=key, Body=body)["ETag"]
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(timeout=15)
    finally:
        gw.stop()
    again = start_gateway(data_dir, log)
    try:
        client = make_client(again)
        for key, body in bodies.items():
            got = client.get_object(Bucket="kill-nine", Key=key)
            assert got["Body"].read() == body, key
            assert got["ETag"] == etags[key], key
    finally:
        again.stop()


def test_sigterm_lets_an_in_flight_download_finish(tmp_path):
    """SIGTERM stops accepting but drains: a GET already streaming completes
    with every byte before the process exits."""
    data_dir, log = tmp_path / "data", tmp_path / "gateway.log"
    body = random_bytes(64 * 1024 * 1024, seed=5)
    gw = start_gateway(data_dir, log)
    try:
        client = make_client(gw)
        client.create_bucket(Bucket="drain")
        client.put_object(Bucket="drain", Key="big", Body=body)
        stream = client.get_object(Bucket="drain", Key="big")["Body"]
        first = stream.read(1024 * 1024)
        gw.proc.send_signal(signal.SIGTERM)
        rest = stream.read()
        assert first + rest == body, "the in-flight download was cut short"
        assert gw.proc.wait(timeout=30) in (0, -15)
    finally:
        gw.stop()


def test_space_of_deleted_objects_is_reclaimed_while_running(tmp_path):
    """The background GC deletes the chunk files of deleted objects once
    their grace period passed, without a restart."""
    config = tmp_path / "gateway.toml"
    config.write_text("gc_interval_secs = 1\ngc_grace_secs = 0\n")
    data_dir = tmp_path / "data"
    gw = start_gateway(data_dir, tmp_path / "gateway.log", extra_args=["--config", str(config)])

    def chunk_files():
        return [p for p in (data_dir / "chunks").rglob("*") if p.is_file()]

    try:
        client = make_client(gw)
        client.create_bucket(Bucket="reclaim")
        client.put_object(Bucket="reclaim", Key="big", Body=random_bytes(9 * 1024 * 1024, seed=8))
        assert len(chunk_files()) >= 3
        client.delete_object(Bucket="reclaim", Key="big")
        deadline = time.monotonic() + 20
        while chunk_files() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert chunk_files() == [], "chunks of a deleted object were not reclaimed"
    finally:
        gw.stop()

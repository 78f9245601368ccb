"""Virtual-hosted-style addressing (`bucket.base-domain`), which s3fs-fuse,
the Go/Java/Rust SDKs and Mountpoint use, when `virtual_host_base` is set."""

import socket

import boto3
import botocore.config
import pytest

from s3util import REGION, start_gateway

BASE = "s3.test"


@pytest.fixture(scope="module")
def vhost_gateway(tmp_path_factory):
    base = tmp_path_factory.mktemp("vhost")
    config = base / "gateway.toml"
    config.write_text(f'virtual_host_base = "{BASE}"\n')
    gw = start_gateway(base / "data", base / "gateway.log", extra_args=["--config", str(config)])
    yield gw
    gw.stop()


@pytest.fixture
def resolve_base_to_localhost(monkeypatch):
    """Makes `*.s3.test` resolve to 127.0.0.1 inside this process only."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and (host == BASE or host.endswith("." + BASE)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def test_virtual_hosted_requests_address_the_bucket(vhost_gateway, resolve_base_to_localhost):
    port = vhost_gateway.url.rsplit(":", 1)[1]
    cfg = botocore.config.Config(s3={"addressing_style": "virtual"}, retries={"total_max_attempts": 1})
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{BASE}:{port}",
        aws_access_key_id=vhost_gateway.access_key,
        aws_secret_access_key=vhost_gateway.secret_key,
        region_name=REGION,
        config=cfg,
    )
    s3.create_bucket(Bucket="vhosted")
    s3.put_object(Bucket="vhosted", Key="dir/a b+c.txt", Body=b"virtual")
    assert s3.get_object(Bucket="vhosted", Key="dir/a b+c.txt")["Body"].read() == b"virtual"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="vhosted")["Contents"]]
    assert keys == ["dir/a b+c.txt"]
    # Path style still works on the same endpoint.
    path_style = boto3.client(
        "s3",
        endpoint_url=vhost_gateway.url,
        aws_access_key_id=vhost_gateway.access_key,
        aws_secret_access_key=vhost_gateway.secret_key,
        region_name=REGION,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    assert path_style.get_object(Bucket="vhosted", Key="dir/a b+c.txt")["Body"].read() == b"virtual"


def test_virtual_hosted_sigv2_header_and_presigned(vhost_gateway, resolve_base_to_localhost):
    """SigV2 signs `/bucket/key` whatever the addressing: the gateway puts
    the Host's bucket in front of the path, for headers and presigned URLs."""
    import urllib.request

    port = vhost_gateway.url.rsplit(":", 1)[1]
    cfg = botocore.config.Config(
        s3={"addressing_style": "virtual"}, signature_version="s3", retries={"total_max_attempts": 1}
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{BASE}:{port}",
        aws_access_key_id=vhost_gateway.access_key,
        aws_secret_access_key=vhost_gateway.secret_key,
        region_name=REGION,
        config=cfg,
    )
    s3.create_bucket(Bucket="vhosted-v2")
    s3.put_object(Bucket="vhosted-v2", Key="dir/a b+c.txt", Body=b"v2 virtual")
    assert s3.get_object(Bucket="vhosted-v2", Key="dir/a b+c.txt")["Body"].read() == b"v2 virtual"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="vhosted-v2")["Contents"]] == ["dir/a b+c.txt"]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "vhosted-v2", "Key": "dir/a b+c.txt"})
    assert url.startswith(f"http://vhosted-v2.{BASE}:{port}/") and "AWSAccessKeyId=" in url, url
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"v2 virtual"
    s3.delete_object(Bucket="vhosted-v2", Key="dir/a b+c.txt")
    s3.delete_bucket(Bucket="vhosted-v2")

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

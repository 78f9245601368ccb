"""Fixtures for the end-to-end S3 tests of the gateway binary.

The binary is $GATEWAY_BIN (default target/release/gateway, relative to the
repository root). One HTTP and one HTTPS instance are started per session,
each on its own temporary data directory and a free port; their output goes
to a log file whose tail is attached to every failing test's report.

Run with scripts/test-s3 (sets up .venv, then runs pytest), e.g.
    scripts/test-s3 -m "not slow"
    scripts/test-s3 -k multipart -x
Set KEEP_GATEWAY_DATA=1 to keep the data directories after the session.
"""

from __future__ import annotations

import os
import shutil

import pytest

from s3util import (
    Gateway,
    delete_bucket_quietly,
    make_client,
    start_gateway,
    unique_bucket_name,
    write_test_certificate,
)

# Variables that would let a developer's own AWS set-up change what the tests
# send (profiles, endpoints, checksum modes, CA bundles); unset for the session.
_LEAKY_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)

_started: list[Gateway] = []


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_environment():
    """No ~/.aws config or credentials, and no AWS_* overrides, for the session."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_CONFIG_FILE", "/dev/null")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in _LEAKY_AWS_VARS:
        mp.delenv(name, raising=False)
    yield
    mp.undo()


def _run_gateway(tmp_path_factory, name: str, tls: bool):
    base = tmp_path_factory.mktemp(name)
    data_dir = base / "data"
    log_path = base / "gateway.log"
    ca = cert = key = None
    if tls:
        ca, cert, key = write_test_certificate(base / "tls")
    try:
        gw = start_gateway(data_dir, log_path, tls_cert=cert, tls_key=key, ca_path=ca)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    _started.append(gw)
    return gw


def _finish_gateway(gw: Gateway) -> None:
    gw.stop()
    if gw in _started:
        _started.remove(gw)
    if not os.environ.get("KEEP_GATEWAY_DATA"):
        shutil.rmtree(gw.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory, isolated_aws_environment):
    """The gateway over plain HTTP (session-wide)."""
    gw = _run_gateway(tmp_path_factory, "gateway-http", tls=False)
    assert gw.url.startswith("http://127.0.0.1:"), gw.url
    yield gw
    _finish_gateway(gw)


@pytest.fixture(scope="session")
def gateway_tls(tmp_path_factory, isolated_aws_environment):
    """The gateway over HTTPS with a certificate from a throw-away test CA
    (SAN: IP 127.0.0.1, DNS localhost); clients trust gateway_tls.ca_path."""
    gw = _run_gateway(tmp_path_factory, "gateway-https", tls=True)
    assert gw.url.startswith("https://127.0.0.1:"), gw.url
    yield gw
    _finish_gateway(gw)


@pytest.fixture(params=["http", "https"])
def gw(request) -> Gateway:
    """The gateway a test runs against: each test using it runs once per scheme."""
    return request.getfixturevalue("gateway" if request.param == "http" else "gateway_tls")


@pytest.fixture
def s3(gw):
    """A boto3 S3 client (us-east-1, path style, default checksum settings)."""
    return make_client(gw)


@pytest.fixture
def raw_client(gw):
    """Factory for clients with other credentials, for auth error paths:
    raw_client(secret_key="wrong") or raw_client(access_key="nobody")."""

    def factory(access_key=None, secret_key=None, **config):
        return make_client(gw, access_key=access_key, secret_key=secret_key, **config)

    return factory


@pytest.fixture
def bucket_factory(s3, request):
    """Creates uniquely named buckets; empties and deletes them afterwards."""
    made: list[str] = []

    def factory(hint: str = "") -> str:
        name = unique_bucket_name(hint or request.node.name)
        s3.create_bucket(Bucket=name)
        made.append(name)
        return name

    yield factory
    for name in made:
        problem = delete_bucket_quietly(s3, name)
        if problem:
            print(f"warning: could not clean up bucket {name}: {problem}")


@pytest.fixture
def bucket(bucket_factory) -> str:
    """A fresh, empty bucket for one test."""
    return bucket_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attaches the tail of each running gateway's log to a failing test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in list(_started):
            report.sections.append((f"gateway log {gw.url} ({gw.log_path})", gw.log_tail(40)))


def pytest_report_header(config):
    from s3util import gateway_bin

    import boto3
    import botocore

    return [f"gateway binary: {gateway_bin()}", f"boto3 {boto3.__version__}, botocore {botocore.__version__}"]

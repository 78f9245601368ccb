"""Helpers shared by the end-to-end S3 tests: the gateway process, clients,
buckets, error assertions, checksum oracles and a listing model.

Nothing here talks to a real AWS endpoint: every client is pointed at a
gateway started on 127.0.0.1 by the fixtures in conftest.py.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as dt
import hashlib
import ipaddress
import os
import random
import re
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import boto3
import botocore.config
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret-0123456789"
MIB = 1024 * 1024
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
READY_RE = re.compile(r"S3 listening on (https?://[^\s]+)")


# ---------------------------------------------------------------- gateway


def gateway_bin() -> Path:
    """The binary under test: $GATEWAY_BIN, relative paths taken from the repo root."""
    path = Path(os.environ.get("GATEWAY_BIN", "target/release/gateway"))
    return path if path.is_absolute() else REPO_ROOT / path


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM the gateway if pytest itself dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Gateway:
    """A running gateway process and how to reach it."""

    url: str
    access_key: str
    secret_key: str
    ca_path: Optional[str]
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen = field(repr=False)
    _drainers: list = field(default_factory=list, repr=False)

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0]

    @property
    def verify(self):
        """What boto3 and urllib should trust: the test CA for https."""
        return self.ca_path if self.scheme == "https" else None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """SIGTERM, wait, SIGKILL as a last resort; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        for t in self._drainers:
            t.join(timeout=5)
        return self.proc.returncode


def _drain(stream, log, lock: threading.Lock, tag: str, on_line: Optional[Callable[[str], None]]) -> None:
    """Copies a pipe into the log file line by line so the pipe never fills."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        with lock:
            log.write(f"[{tag}] {line}" if line.endswith("\n") else f"[{tag}] {line}\n")
            log.flush()
        if on_line is not None:
            on_line(line)
    stream.close()


def start_gateway(
    data_dir: Path,
    log_path: Path,
    *,
    tls_cert: Optional[Path] = None,
    tls_key: Optional[Path] = None,
    ca_path: Optional[Path] = None,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    extra_args: Sequence[str] = (),
) -> Gateway:
    """Starts `gateway serve` and waits for its "S3 listening on URL" line."""
    binary = gateway_bin()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise RuntimeError(
            f"gateway binary not found or not executable at {binary}: "
            "build it (cargo build --release) or set GATEWAY_BIN"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), "serve", "--data-dir", str(data_dir), "--s3-listen", "127.0.0.1:0", "--nfs-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
    if tls_cert is not None:
        cmd += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
    cmd += list(extra_args)
    env = dict(os.environ)
    env.update(GATEWAY_ACCESS_KEY=access_key, GATEWAY_SECRET_KEY=secret_key, RUST_BACKTRACE="1")

    log = open(log_path, "a", buffering=1, encoding="utf-8")
    log.write(f"$ {' '.join(cmd)}\n")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(REPO_ROOT),
        preexec_fn=_die_with_parent,
    )
    found: list[str] = []
    ready = threading.Event()

    def watch(line: str) -> None:
        m = READY_RE.search(line)
        if m and not found:
            found.append(m.group(1))
            ready.set()

    lock = threading.Lock()
    drainers = [
        threading.Thread(target=_drain, args=(proc.stdout, log, lock, "out", watch), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, log, lock, "err", None), daemon=True),
    ]
    for t in drainers:
        t.start()

    gw = Gateway(
        url="",
        access_key=access_key,
        secret_key=secret_key,
        ca_path=str(ca_path) if ca_path else None,
        data_dir=data_dir,
        log_path=log_path,
        proc=proc,
        _drainers=drainers,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.wait(timeout=0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            gw.stop()
            why = f"exited with status {proc.returncode}" if proc.poll() is not None else "timed out"
            raise RuntimeError(
                f"gateway {why} before printing 'S3 listening on URL' "
                f"(log {log_path}):\n{gw.log_tail()}"
            )
    gw.url = found[0].rstrip("/")
    return gw


# ---------------------------------------------------------------- TLS


def write_test_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """Makes a throw-away CA and a server certificate it signs for 127.0.0.1
    and localhost. Returns (ca_path, cert_path, key_path), all PEM; the key is
    unencrypted PKCS#8. A CA plus a leaf (rather than one self-signed leaf)
    keeps strict verifiers (OpenSSL's X509_STRICT, webpki) happy."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=30)

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway e2e test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# ---------------------------------------------------------------- clients


_raw = threading.local()


def _remember_raw_response(operation_model=None, response_dict=None, **_kw) -> None:
    """before-parse hook: keeps the last raw response (per thread) so tests can
    look at the XML body of an error, which botocore otherwise hides."""
    _raw.last = {
        "method": operation_model.http.get("method") if operation_model is not None else None,
        "status": response_dict.get("status_code"),
        "headers": response_dict.get("headers"),
        "body": response_dict.get("body"),
    }


def last_raw_response() -> Optional[dict]:
    return getattr(_raw, "last", None)


def make_client(
    gw: Gateway,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    **config: object,
):
    """A boto3 S3 client for the gateway: us-east-1, path style, default
    checksum behaviour, no retries (a 5xx must fail the test, not be hidden
    by a retry). Extra keyword arguments go to botocore.config.Config."""
    settings: dict = {
        "s3": {"addressing_style": "path"},
        "retries": {"mode": "standard", "total_max_attempts": 1},
        "connect_timeout": 10,
        "read_timeout": 120,
    }
    settings.update(config)
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=gw.url,
        region_name=REGION,
        aws_access_key_id=access_key if access_key is not None else gw.access_key,
        aws_secret_access_key=secret_key if secret_key is not None else gw.secret_key,
        verify=gw.verify,
        config=botocore.config.Config(**settings),
    )
    client.meta.events.register("before-parse.s3", _remember_raw_response)
    return client


# ---------------------------------------------------------------- errors


def assert_error(err: ClientError, code, status: int) -> ClientError:
    """Checks what the client saw for a failed call: the HTTP status, the S3
    error code (one string, or a tuple of acceptable ones), an
    x-amz-request-id header, and -- for responses that carry a body -- an S3
    XML error document with <Code> and <RequestId>."""
    codes = (code,) if isinstance(code, str) else tuple(code)
    meta = err.response.get("ResponseMetadata", {})
    got_status = meta.get("HTTPStatusCode")
    got_code = err.response.get("Error", {}).get("Code")
    assert got_status == status, f"expected HTTP {status} {codes}, got HTTP {got_status} {got_code}: {err}"
    assert got_code in codes, f"expected error code {codes}, got {got_code!r}: {err}"
    headers = meta.get("HTTPHeaders", {})
    assert headers.get("x-amz-request-id"), f"error response has no x-amz-request-id header: {headers}"

    raw = last_raw_response()
    if raw and raw["status"] == status and raw["method"] != "HEAD" and status != 304:
        assert_error_xml(raw["body"], codes)
    return err


def assert_error_xml(body: bytes, codes) -> ET.Element:
    """An S3 error body: <Error><Code>..</Code><Message>..</Message>
    <RequestId>..</RequestId></Error>."""
    codes = (codes,) if isinstance(codes, str) else tuple(codes)
    assert body, "error response has an empty body; S3 sends an XML <Error> document"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:  # pragma: no cover - reported as a failure
        raise AssertionError(f"error body is not XML ({e}): {body[:300]!r}") from None
    tag = root.tag.split("}", 1)[-1]
    assert tag == "Error", f"error body root is <{tag}>, not <Error>: {body[:300]!r}"
    children = {c.tag.split("}", 1)[-1]: (c.text or "") for c in root}
    assert children.get("Code") in codes, f"<Code> is {children.get('Code')!r}, expected {codes}"
    assert children.get("RequestId"), f"error body has no <RequestId>: {body[:300]!r}"
    return root


def expect_error(client, operation: str, *, code, status: int, **params) -> ClientError:
    """Calls client.<operation>(**params), which must fail with `code`/`status`."""
    try:
        result = getattr(client, operation)(**params)
    except ClientError as err:
        return assert_error(err, code, status)
    body = result.get("Body")
    if body is not None:
        body.close()
    raise AssertionError(
        f"{operation} succeeded (HTTP {result['ResponseMetadata']['HTTPStatusCode']}) "
        f"but {code} / {status} was expected"
    )


def object_exists(client, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as err:
        if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise


# ---------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes


def http_request(
    gw: Gateway,
    url: str,
    method: str = "GET",
    data: Optional[bytes] = None,
    headers: Optional[dict] = None,
) -> RawResponse:
    """A plain urllib request (no SigV4 unless the URL is presigned); HTTP
    errors are returned, not raised."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    context = ssl.create_default_context(cafile=gw.ca_path) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as resp:
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        return RawResponse(e.code, {k.lower(): v for k, v in e.headers.items()}, body)


# ---------------------------------------------------------------- buckets


def unique_bucket_name(hint: str = "") -> str:
    """A fresh valid bucket name: lowercase, [a-z0-9-], 3..63 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    suffix = uuid.uuid4().hex[:10]
    return f"t-{slug}-{suffix}" if slug else f"t-{suffix}"


def empty_bucket(client, bucket: str) -> None:
    """Aborts open uploads and deletes every key, 1000 at a time."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for up in page.get("Uploads", []):
            with contextlib.suppress(ClientError):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def delete_bucket_quietly(client, bucket: str) -> Optional[str]:
    """Best-effort cleanup; returns a description of what failed, if anything."""
    try:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)
        return None
    except Exception as e:  # noqa: BLE001 - cleanup must never mask the test result
        return f"{type(e).__name__}: {e}"


@contextlib.contextmanager
def temporary_bucket(client, hint: str = "") -> Iterator[str]:
    name = unique_bucket_name(hint)
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        problem = delete_bucket_quietly(client, name)
        if problem:
            print(f"warning: could not clean up bucket {name}: {problem}")


# ---------------------------------------------------------------- data and digests


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (incompressible, reproducible)."""
    return random.Random(seed).randbytes(n)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def quoted_md5(data: bytes) -> str:
    return f'"{md5_hex(data)}"'


def content_md5(data: bytes) -> str:
    """The Content-MD5 header value: base64 of the raw digest."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def multipart_etag(parts: Iterable[bytes]) -> str:
    """S3's multipart ETag: md5 of the concatenated part md5 digests, "-N"."""
    parts = list(parts)
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def _crc_table(poly: int, width: int) -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c & ((1 << width) - 1))
    return table


_CRC32C_TABLE = _crc_table(0x82F63B78, 32)
_CRC64NVME_TABLE = _crc_table(0x9A6C9329AC4BC9B5, 64)


def crc32c_py(data: bytes) -> int:
    """CRC-32C (Castagnoli), pure Python: the test's own oracle."""
    c = 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc64nvme_py(data: bytes) -> int:
    """CRC-64/NVME, pure Python: the test's own oracle."""
    mask = 0xFFFFFFFFFFFFFFFF
    c = mask
    t = _CRC64NVME_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def _crc_fast(name: str, data: bytes) -> int:
    """awscrt when installed (fast for MiB-sized bodies), else pure Python."""
    try:
        from awscrt import checksums  # type: ignore

        return checksums.crc32c(data) if name == "crc32c" else checksums.crc64nvme(data)
    except ImportError:
        return crc32c_py(data) if name == "crc32c" else crc64nvme_py(data)


def checksum_b64(algorithm: str, data: bytes) -> str:
    """The x-amz-checksum-<algorithm> value S3 reports for `data`."""
    algorithm = algorithm.upper()
    if algorithm == "CRC32":
        raw = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif algorithm == "CRC32C":
        raw = _crc_fast("crc32c", data).to_bytes(4, "big")
    elif algorithm == "CRC64NVME":
        raw = _crc_fast("crc64nvme", data).to_bytes(8, "big")
    elif algorithm == "SHA1":
        raw = hashlib.sha1(data).digest()
    elif algorithm == "SHA256":
        raw = hashlib.sha256(data).digest()
    else:
        raise ValueError(algorithm)
    return base64.b64encode(raw).decode()


def botocore_supports_checksum(algorithm: str) -> bool:
    """Whether the installed botocore can compute `algorithm` for a request
    (CRC32C and CRC64NVME need awscrt, i.e. botocore[crt])."""
    from botocore import httpchecksum

    return algorithm.lower() in getattr(httpchecksum, "_CHECKSUM_CLS", {})


# ---------------------------------------------------------------- listing model


def utf8(key: str) -> bytes:
    """S3 orders keys by their UTF-8 bytes."""
    return key.encode("utf-8")


def model_list(
    keys: Iterable[str],
    prefix: str = "",
    delimiter: Optional[str] = None,
    start_after: Optional[str] = None,
) -> tuple[list[str], list[str]]:
    """What S3 returns for a complete listing: (contents, common prefixes)."""
    contents: list[str] = []
    prefixes: set[str] = set()
    for k in sorted(set(keys), key=utf8):
        if not k.startswith(prefix):
            continue
        if start_after is not None and utf8(k) <= utf8(start_after):
            continue
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                prefixes.add(k[: i + len(delimiter)])
                continue
        contents.append(k)
    return contents, sorted(prefixes, key=utf8)


def list_all_v2(
    client, bucket: str, page_size: Optional[int] = None, **params
) -> tuple[list[str], list[str], list[dict]]:
    """Walks list_objects_v2 with the paginator; returns (keys, prefixes, pages)."""
    config = {"PageSize": page_size} if page_size else {}
    keys: list[str] = []
    prefixes: list[str] = []
    pages = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig=config, **params
    ):
        pages.append(page)
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes, pages


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)

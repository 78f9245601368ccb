"""`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` uploads, as the Java SDK v2
(Spark S3A) and minio-go send them. No client in the venv speaks them, so
the request is built here: botocore signs the headers (the seed signature),
and the chunk and trailer signatures are chained as the AWS documentation
describes. Every chunk signature is checked: tampering with any byte fails."""

import base64
import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse
import zlib

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from s3util import REGION, make_client, random_bytes

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _key(secret, date):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signed_chunked_put(gw, bucket, key, data, chunk=64 * 1024, trailer=False, tamper=None):
    """PUTs `data` with signed aws-chunked encoding; returns (status, body).
    `tamper`: "data" flips a payload byte after signing, "trailer" corrupts
    the trailer signature."""
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    trailer_lines = f"x-amz-checksum-crc32:{crc}\n".encode() if trailer else b""
    # The encoded length is known before signing: signatures are 64 hex digits.
    length = sum(len(f"{len(p):x};chunk-signature=".encode()) + 64 + 2 + len(p) + 2 for p in pieces[:-1])
    length += len(b"0;chunk-signature=") + 64 + 2
    if trailer:
        length += len(trailer_lines.replace(b"\n", b"\r\n")) + len(b"x-amz-trailer-signature:") + 64 + 2
    length += 2
    content_sha = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    url = f"{gw.url}/{bucket}/{urllib.parse.quote(key)}"
    headers = {
        "x-amz-content-sha256": content_sha,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "content-length": str(length),
    }
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    req = botocore.awsrequest.AWSRequest(method="PUT", url=url, headers=headers)
    creds = botocore.credentials.Credentials(gw.access_key, gw.secret_key)
    botocore.auth.SigV4Auth(creds, "s3", REGION).add_auth(req)
    amz_date = req.headers["X-Amz-Date"]
    seed = req.headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    signing_key = _key(gw.secret_key, amz_date[:8])

    def sign(sts):
        return hmac.new(signing_key, sts.encode(), hashlib.sha256).hexdigest()

    body, prev = b"", seed
    for p in pieces:
        sig = sign(f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{prev}\n{EMPTY_SHA}\n{hashlib.sha256(p).hexdigest()}")
        body += f"{len(p):x};chunk-signature={sig}\r\n".encode() + p + (b"\r\n" if p else b"")
        prev = sig
    if trailer:
        tsig = sign(f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{prev}\n{hashlib.sha256(trailer_lines).hexdigest()}")
        if tamper == "trailer":
            tsig = "0" * 64
        body += trailer_lines.replace(b"\n", b"\r\n") + f"x-amz-trailer-signature:{tsig}\r\n".encode()
    body += b"\r\n"
    assert len(body) == length
    if tamper == "data":
        i = body.index(b"\r\n") + 2 + 10  # a byte inside the first chunk's data
        body = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https":
        conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=ssl.create_default_context(cafile=gw.ca_path))
    else:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port)
    conn.putrequest("PUT", parsed.path, skip_host=True, skip_accept_encoding=True)
    for k, v in req.headers.items():
        conn.putheader(k, v)
    conn.putheader("Host", parsed.netloc)
    conn.endheaders()
    conn.send(body)
    resp = conn.getresponse()
    out = (resp.status, resp.read().decode(errors="replace"))
    conn.close()
    return out


def test_signed_chunks_upload_and_read_back(gw, bucket):
    data = random_bytes(200_000, seed=3)
    status, text = signed_chunked_put(gw, bucket, "signed/chunks.bin", data)
    assert status == 200, text
    assert make_client(gw).get_object(Bucket=bucket, Key="signed/chunks.bin")["Body"].read() == data


def test_signed_chunks_with_signed_trailer(gw, bucket):
    data = random_bytes(150_001, seed=4)
    status, text = signed_chunked_put(gw, bucket, "signed/trailer.bin", data, trailer=True)
    assert status == 200, text
    got = make_client(gw).get_object(Bucket=bucket, Key="signed/trailer.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("tamper,trailer", [("data", False), ("data", True), ("trailer", True)])
def test_tampered_signed_chunks_are_refused_and_store_nothing(gw, bucket, tamper, trailer):
    status, text = signed_chunked_put(gw, bucket, "signed/tampered.bin", random_bytes(100_000, seed=5), trailer=trailer, tamper=tamper)
    assert status == 403, text
    assert "<Code>SignatureDoesNotMatch</Code>" in text
    keys = make_client(gw).list_objects_v2(Bucket=bucket).get("Contents", [])
    assert keys == [], "a refused upload must not be visible"

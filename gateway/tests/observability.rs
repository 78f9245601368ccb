//! Observability end to end: the gateway binary on port 0 with JSON logs,
//! S3 requests (signed with `aws-sigv4`, header and presigned) and NFS calls
//! (`nfs3_client`), then `/metrics` must show the counters moved, `/healthz`
//! and `/readyz` must answer (503 while draining), every request must have
//! its log line, and no secret, signature or Authorization header may appear
//! in the output.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioConnector;
use nfs3_client::Nfs3ConnectionBuilder;

mod common;

use common::Gateway;

const ACCESS_KEY: &str = "AKOBSERVE";
const SECRET_KEY: &str = "obs-secret-Zq8vXw3Lk9";
const BUCKET: &str = "obsbucket";

fn start(dir: &Path) -> Gateway {
    let config = "gc_interval_secs = 1\nshutdown_deadline_secs = 5\n[nfs_export_defaults]\nsquash = \"none\"\n";
    common::start(dir, config, ACCESS_KEY, SECRET_KEY, "debug", &["--log-format", "json"])
}

/// A response as a client sees it.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
fn http(addr: SocketAddr, method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body: raw[split + 4..].to_vec() }
}

/// Signs like an SDK: SigV4 in the Authorization header (or, `presign`,
/// in the query), the payload hash in x-amz-content-sha256.
struct Signer {
    addr: SocketAddr,
    secret: String,
    /// Every signature sent, to look for in the logs.
    signatures: Vec<String>,
}

impl Signer {
    fn settings(presign: bool) -> SigningSettings {
        let mut s = SigningSettings::default();
        s.percent_encoding_mode = PercentEncodingMode::Single;
        s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if presign {
            s.signature_location = SignatureLocation::QueryParams;
            s.expires_in = Some(Duration::from_secs(300));
        } else {
            s.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        s
    }

    /// Sends `method path?query` with `body`; returns the response.
    fn send(&mut self, method: &str, path_query: &str, body: &[u8], presign: bool) -> Resp {
        let identity = aws_credential_types::Credentials::new(ACCESS_KEY, &self.secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(Self::settings(presign))
            .build()
            .unwrap()
            .into();
        let url = format!("http://{}{}", self.addr, path_query);
        let host = self.addr.to_string();
        let signed_body = if presign { SignableBody::UnsignedPayload } else { SignableBody::Bytes(body) };
        let req = SignableRequest::new(method, &url, [("host", host.as_str())].into_iter(), signed_body).unwrap();
        let (instructions, signature) = sign(req, &params).unwrap().into_parts();
        self.signatures.push(signature);
        let headers: Vec<(String, String)> =
            instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut target = path_query.to_string();
        for (i, (k, v)) in instructions.params().iter().enumerate() {
            let sep = if i == 0 && !target.contains('?') { '?' } else { '&' };
            let v = percent_encode(v);
            target.push_str(&format!("{sep}{k}={v}"));
        }
        http(self.addr, method, &target, &headers, body)
    }
}

fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/metrics` as `name{labels}` → value.
fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let r = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap_or("").starts_with("text/plain"), "{:?}", r.headers);
    String::from_utf8(r.body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
        .collect()
}

fn at_least(m: &HashMap<String, f64>, key: &str, min: f64) {
    let v = m.get(key).copied();
    assert!(v.is_some_and(|v| v >= min), "{key} = {v:?}, want >= {min}; metrics: {:#?}", {
        let mut keys: Vec<_> = m.iter().filter(|(k, _)| k.starts_with("gateway_")).collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        keys
    });
}

/// NFS calls as a real client makes them; returns the xids' procedures
/// indirectly through the metrics and logs.
async fn nfs_session(nfs: SocketAddr) {
    let cred = auth_unix { stamp: 1, machinename: Opaque::owned(b"obs".to_vec()), uid: 0, gid: 0, gids: vec![] };
    let conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", format!("/{BUCKET}"))
        .connect_from_privileged_port(false)
        .mount_port(nfs.port())
        .nfs3_port(nfs.port())
        .credential(opaque_auth::auth_unix(&cred))
        .mount()
        .await
        .expect("mount");
    let root = conn.root_nfs_fh3();
    let mut c = conn.into_nfs3_client();
    let dirop = |n: &[u8]| diropargs3 { dir: root.clone(), name: filename3::from(n.to_vec()) };
    let how = || createhow3::GUARDED(sattr3 { mode: Nfs3Option::Some(0o644), ..Default::default() });
    let file = match c.create(&CREATE3args { where_: dirop(b"from-nfs.bin"), how: how() }).await.unwrap() {
        Nfs3Result::Ok(ok) => ok.obj.unwrap(),
        Nfs3Result::Err((s, _)) => panic!("create: {s:?}"),
    };
    let data = vec![7u8; 5000];
    let w = c
        .write(&WRITE3args {
            file: file.clone(),
            offset: 0,
            count: data.len() as u32,
            stable: stable_how::FILE_SYNC,
            data: Opaque::owned(data.clone()),
        })
        .await
        .unwrap();
    assert!(matches!(w, Nfs3Result::Ok(_)), "write failed");
    match c.read(&READ3args { file: file.clone(), offset: 0, count: 8192 }).await.unwrap() {
        Nfs3Result::Ok(ok) => assert_eq!(ok.data.as_ref(), &data[..]),
        Nfs3Result::Err((s, _)) => panic!("read: {s:?}"),
    }
    match c.lookup(&LOOKUP3args { what: dirop(b"no-such-file") }).await.unwrap() {
        Nfs3Result::Err((s, _)) => assert_eq!(s, nfsstat3::NFS3ERR_NOENT),
        Nfs3Result::Ok(_) => panic!("lookup of a missing name succeeded"),
    }
    // A name S3 cannot express: listings leave it out and count it.
    match c.create(&CREATE3args { where_: dirop(b"latin1-\xe9t\xe9"), how: how() }).await.unwrap() {
        Nfs3Result::Ok(_) => {}
        Nfs3Result::Err((s, _)) => panic!("create of a non-UTF-8 name: {s:?}"),
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect()
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    line.get("fields")?.get(name)
}

#[test]
fn metrics_health_and_request_logs_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path());
    assert!(gw.stdout.iter().all(|l| !l.contains(SECRET_KEY)), "secret printed: {:?}", gw.stdout);

    let health = http(gw.metrics, "GET", "/healthz", &[], b"");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    // Ready once every listener is bound and serving (503 "starting" until then).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http(gw.metrics, "GET", "/readyz", &[], b"");
        if ready.status == 200 {
            assert_eq!(ready.body, b"ready\n");
            break;
        }
        assert_eq!((ready.status, ready.body.as_slice()), (503, &b"starting\n"[..]));
        assert!(Instant::now() < deadline, "/readyz never answered 200");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http(gw.metrics, "GET", "/nope", &[], b"").status, 404);

    let mut s3 = Signer { addr: gw.s3, secret: SECRET_KEY.into(), signatures: Vec::new() };
    let mut ids = Vec::new();
    let mut expect = |r: Resp, status: u16, what: &str| {
        assert_eq!(r.status, status, "{what}: {}", String::from_utf8_lossy(&r.body));
        ids.push((r.header("x-amz-request-id").expect("request id").to_string(), r.body.len()));
        r
    };
    expect(s3.send("PUT", &format!("/{BUCKET}"), b"", false), 200, "create bucket");
    let object = vec![42u8; 1000];
    expect(s3.send("PUT", &format!("/{BUCKET}/hello.bin"), &object, false), 200, "put");
    let got = expect(s3.send("GET", &format!("/{BUCKET}/hello.bin"), b"", false), 200, "get");
    assert_eq!(got.body, object);
    expect(s3.send("GET", &format!("/{BUCKET}/hello.bin"), b"", true), 200, "presigned get");
    expect(s3.send("GET", &format!("/{BUCKET}/missing"), b"", false), 404, "get missing");
    let mut wrong = Signer { addr: gw.s3, secret: "not-the-secret-123".into(), signatures: Vec::new() };
    expect(wrong.send("GET", &format!("/{BUCKET}/hello.bin"), b"", false), 403, "wrong secret");

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(nfs_session(gw.nfs));

    let listing = expect(s3.send("GET", &format!("/{BUCKET}?list-type=2"), b"", false), 200, "list");
    let listing = String::from_utf8(listing.body).unwrap();
    assert!(listing.contains("<Key>from-nfs.bin</Key>") && listing.contains("<Key>hello.bin</Key>"), "{listing}");
    assert!(!listing.contains("latin1"), "a non-UTF-8 name was listed: {listing}");

    let m = scrape(gw.metrics);
    at_least(&m, r#"gateway_s3_requests_total{op="CreateBucket",status="200"}"#, 1.0);
    at_least(&m, r#"gateway_s3_requests_total{op="PutObject",status="200"}"#, 1.0);
    at_least(&m, r#"gateway_s3_requests_total{op="GetObject",status="200"}"#, 2.0);
    at_least(&m, r#"gateway_s3_requests_total{op="ListObjectsV2",status="200"}"#, 1.0);
    at_least(&m, r#"gateway_s3_errors_total{op="GetObject",code="NoSuchKey"}"#, 1.0);
    at_least(&m, r#"gateway_s3_errors_total{op="GetObject",code="SignatureDoesNotMatch"}"#, 1.0);
    at_least(&m, r#"gateway_s3_received_bytes_total{op="PutObject"}"#, 1000.0);
    at_least(&m, r#"gateway_s3_sent_bytes_total{op="GetObject"}"#, 2000.0);
    at_least(&m, r#"gateway_s3_request_duration_seconds_count{op="PutObject"}"#, 1.0);
    at_least(&m, r#"gateway_s3_request_duration_seconds_bucket{op="PutObject",le="+Inf"}"#, 1.0);
    at_least(&m, "gateway_s3_connections_total", 7.0);
    at_least(&m, r#"gateway_nfs_calls_total{proc="MOUNT_MNT"}"#, 1.0);
    for p in ["CREATE", "WRITE", "READ", "LOOKUP"] {
        at_least(&m, &format!(r#"gateway_nfs_calls_total{{proc="{p}"}}"#), 1.0);
        at_least(&m, &format!(r#"gateway_nfs_call_duration_seconds_count{{proc="{p}"}}"#), 1.0);
    }
    at_least(&m, r#"gateway_nfs_calls_total{proc="CREATE"}"#, 2.0);
    at_least(&m, r#"gateway_nfs_errors_total{proc="LOOKUP",status="NFS3ERR_NOENT"}"#, 1.0);
    at_least(&m, r#"gateway_nfs_received_bytes_total{proc="WRITE"}"#, 5000.0);
    at_least(&m, r#"gateway_nfs_sent_bytes_total{proc="READ"}"#, 5000.0);
    at_least(&m, "gateway_nfs_connections_total", 1.0);
    at_least(&m, "gateway_s3_hidden_invalid_utf8_names_total", 1.0);
    at_least(&m, "gateway_chunkstore_written_bytes_total", 6000.0);
    at_least(&m, "gateway_chunkstore_read_bytes_total", 7000.0);
    at_least(&m, "gateway_chunkstore_barrier_duration_seconds_count", 1.0);
    at_least(&m, "gateway_metastore_size_bytes", 1.0);
    at_least(&m, "gateway_data_volume_total_bytes", 1.0);
    at_least(&m, "gateway_ready", 1.0);
    // The background GC runs every second here; every S3 connection was
    // closed by the client (the gauge drops as the server notices).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = scrape(gw.metrics);
        let gc_passes = m.get("gateway_gc_passes_total").copied().unwrap_or(0.0);
        let open = m.get("gateway_s3_connections_active").copied();
        if gc_passes >= 1.0 && open == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "GC passes {gc_passes}, open S3 connections {open:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A PUT whose body never completes holds the drain open: /readyz must
    // say 503 from SIGTERM on, while /healthz still answers.
    let mut stalled = TcpStream::connect(gw.s3).unwrap();
    let head = stalled_put_head(&mut s3);
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(b"0123456789").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let pid = gw.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let r = http(gw.metrics, "GET", "/readyz", &[], b"");
        if r.status == 503 {
            assert_eq!(r.body, b"draining\n");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz still {} after SIGTERM", r.status);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http(gw.metrics, "GET", "/healthz", &[], b"").status, 200);
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "gateway exit: {status:?}");
    drop(stalled);

    // Logs: JSON, one line per request with its id and bytes, one line per
    // NFS call with client and xid, and nothing secret.
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    for secret in [SECRET_KEY, "not-the-secret-123", "AWS4-HMAC-SHA256", "X-Amz-Signature", "Signature="] {
        assert!(!log.contains(secret), "{secret:?} appears in the log");
    }
    for sig in s3.signatures.iter().chain(&wrong.signatures) {
        assert!(!log.contains(sig.as_str()), "a request signature appears in the log");
    }
    let lines = json_lines(&log);
    let s3_lines: Vec<_> =
        lines.iter().filter(|l| field(l, "message").and_then(|m| m.as_str()) == Some("s3 request")).collect();
    for (id, body_len) in &ids {
        let line = s3_lines
            .iter()
            .find(|l| field(l, "request_id").and_then(|v| v.as_str()) == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no log line for request {id}"));
        assert_eq!(field(line, "bytes_out").and_then(|v| v.as_u64()), Some(*body_len as u64), "{line}");
        for f in ["op", "status", "bytes_in", "duration_ms", "client"] {
            assert!(field(line, f).is_some(), "{f} missing in {line}");
        }
    }
    let put = s3_lines
        .iter()
        .find(|l| field(l, "op").and_then(|v| v.as_str()) == Some("PutObject"))
        .expect("a PutObject line");
    assert_eq!(field(put, "bytes_in").and_then(|v| v.as_u64()), Some(1000), "{put}");
    let nfs_lines: Vec<_> =
        lines.iter().filter(|l| field(l, "message").and_then(|m| m.as_str()) == Some("nfs call")).collect();
    let write = nfs_lines
        .iter()
        .find(|l| field(l, "proc").and_then(|v| v.as_str()) == Some("WRITE"))
        .expect("an NFS WRITE line");
    assert_eq!(field(write, "status").and_then(|v| v.as_str()), Some("NFS3_OK"), "{write}");
    assert!(field(write, "bytes_in").and_then(|v| v.as_u64()).unwrap_or(0) >= 5000, "{write}");
    assert!(field(write, "xid").and_then(|v| v.as_u64()).is_some(), "{write}");
    assert!(field(write, "client").and_then(|v| v.as_str()).is_some_and(|c| c.starts_with("127.0.0.1:")), "{write}");
    assert!(field(write, "duration_ms").is_some(), "{write}");
    let noent = nfs_lines
        .iter()
        .find(|l| field(l, "proc").and_then(|v| v.as_str()) == Some("LOOKUP"))
        .expect("an NFS LOOKUP line");
    assert_eq!(field(noent, "status").and_then(|v| v.as_str()), Some("NFS3ERR_NOENT"), "{noent}");
}

/// The head of a signed PUT announcing 100 bytes (UNSIGNED-PAYLOAD), to be
/// followed by fewer.
fn stalled_put_head(s3: &mut Signer) -> String {
    let identity = aws_credential_types::Credentials::new(ACCESS_KEY, &s3.secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(Signer::settings(false))
        .build()
        .unwrap()
        .into();
    let host = s3.addr.to_string();
    let url = format!("http://{host}/{BUCKET}/stalled");
    let req = SignableRequest::new("PUT", &url, [("host", host.as_str())].into_iter(), SignableBody::UnsignedPayload)
        .unwrap();
    let (instructions, signature) = sign(req, &params).unwrap().into_parts();
    s3.signatures.push(signature);
    let mut head = format!("PUT /{BUCKET}/stalled HTTP/1.1\r\nhost: {host}\r\ncontent-length: 100\r\n");
    for (k, v) in instructions.headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

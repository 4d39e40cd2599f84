//! `flowdoc live --serve`: the live view over HTTPS (rustls). A client with a certificate the
//! CA signed gets the JSON API and the metrics; one without is refused in the handshake; the
//! page, opened in headless Chromium, shows the flows (skipped with the reason when Chromium
//! is missing; `.ci/run` installs it). Certificates are made by the test (rcgen).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{chromium, console, headless};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(d: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(names).expect("params");
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (sc, sk) = leaf(
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (cc, ck) = leaf(vec!["desk".into()], ExtendedKeyUsagePurpose::ClientAuth);
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    Pki {
        ca: write("ca.pem", &ca_cert.pem()),
        server_cert: write("server.pem", &sc),
        server_key: write("server.key", &sk),
        client_cert: write("client.pem", &cc),
        client_key: write("client.key", &ck),
    }
}

/// Starts a slow replay serving HTTPS; returns the child and the address it serves on.
fn serve(p: &Pki, client_ca: bool) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowdoc"));
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "live",
            "--replay",
            "fixtures/cluster.pcap",
            "--speed",
            "0.1",
        ])
        .args(["--interval", "0.2", "--serve", "0"])
        .arg("--tls-cert")
        .arg(&p.server_cert)
        .arg("--tls-key")
        .arg(&p.server_key);
    if client_ca {
        cmd.arg("--client-ca").arg(&p.ca);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let err = child.stderr.take().expect("stderr");
    BufReader::new(err).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("flowdoc: serving https://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address: {line:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "binds loopback: {addr}");
    (child, addr)
}

fn client(p: &Pki, with_cert: bool) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&p.ca).expect("ca") {
        roots.add(c.expect("cert")).expect("add");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(if with_cert {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&p.client_cert)
            .expect("certs")
            .map(|c| c.expect("cert"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(&p.client_key).expect("key");
        b.with_client_auth_cert(certs, key).expect("client auth")
    } else {
        b.with_no_client_auth()
    })
}

/// GET over HTTPS: the status line and the body, or the error.
fn get(cfg: Arc<ClientConfig>, addr: &str, path: &str) -> Result<(String, String), String> {
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut s = StreamOwned::new(conn, tcp);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response")?;
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_api_needs_a_client_certificate_signed_by_the_ca() {
    let d = dir("serve-mtls");
    let p = pki(&d);
    let (child, addr) = serve(&p, true);
    std::thread::sleep(Duration::from_millis(2500));
    let (status, body) = get(client(&p, true), &addr, "/api/summary").expect("with certificate");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let s: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(s["packets"].as_u64().unwrap_or(0) > 0, "{body}");
    let (_, metrics) = get(client(&p, true), &addr, "/metrics").expect("metrics");
    assert!(
        metrics.contains("# TYPE flowdoc_packets_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains("flowdoc_flows_ended_total{status=\"documented\"}"));
    let (status, flows) = get(client(&p, true), &addr, "/api/flows").expect("flows");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(serde_json::from_str::<Vec<serde_json::Value>>(&flows).is_ok());
    let (status, _) = get(client(&p, true), &addr, "/nothing").expect("404");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // Without a certificate: refused in the handshake, no data.
    let refused = get(client(&p, false), &addr, "/api/summary");
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    // Plain HTTP gets nothing either: there is no plaintext listener.
    let mut plain = TcpStream::connect(&addr).expect("connect");
    plain.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let _ = plain.write_all(b"GET /api/summary HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("packets"));
    stop(child);
}

#[test]
fn the_live_page_shows_the_flows_in_a_browser() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: chromium is not installed (.ci/run installs Debian's chromium)");
        return;
    };
    let d = dir("serve-page");
    let p = pki(&d);
    let (child, addr) = serve(&p, false);
    // Let some flows end (closed flows are written two seconds after their last packet).
    std::thread::sleep(Duration::from_millis(4000));
    let out = headless(
        &chromium,
        &d.join("profile"),
        &[
            "--ignore-certificate-errors",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ],
        &format!("https://{addr}/"),
    );
    stop(child);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("flowdoc live"), "{dom}");
    assert!(dom.contains("packets ("), "the summary did not load: {dom}");
    assert!(
        dom.contains("T2.1 SIP proxy") || dom.contains("T3.1"),
        "no flows: {dom}"
    );
    let messages = console(&out);
    assert!(messages.is_empty(), "console messages: {messages:?}");
}

//! `flowdoc live --serve ADDR`: the live view over HTTPS only (rustls; certificate and key
//! from files; optional client-certificate authentication against a CA file). A small page
//! that updates itself, `/api/summary` and `/api/flows` (JSON), and `/metrics` (Prometheus).
//! A client that does not present a certificate the CA signed is refused in the handshake.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

/// What the page and the API show, replaced by the live loop every interval (the loop also
/// appends ended flows).
#[derive(Debug, Default)]
pub struct Shared {
    /// The summary as JSON (the same object the JSON summaries print).
    pub summary: String,
    /// The latest ended flows as JSON records, newest last.
    pub flows: std::collections::VecDeque<String>,
    /// Prometheus exposition text.
    pub metrics: String,
}

/// Most ended flows kept for `/api/flows`.
pub const RECENT_FLOWS: usize = 500;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: String,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{}: {what}: {e}", path.display())
}

fn tls_config(cfg: &ServeConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .map_err(|e| err(&cfg.cert, "cannot read certificates", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(&cfg.cert, "bad certificate", e))?;
    if certs.is_empty() {
        return Err(err(
            &cfg.cert,
            "no certificate",
            "the file holds no PEM certificate",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key)
        .map_err(|e| err(&cfg.key, "cannot read the private key", e))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| err(ca, "cannot read the CA", e))?
            {
                let c = c.map_err(|e| err(ca, "bad CA certificate", e))?;
                roots.add(c).map_err(|e| err(ca, "bad CA certificate", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err(ca, "cannot use the CA", e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| err(&cfg.cert, "certificate and key do not go together", e))?;
    Ok(Arc::new(config))
}

/// `8443` or `:8443` binds loopback; anything else is taken as it is.
fn bind_address(addr: &str) -> String {
    let port = addr.strip_prefix(':').unwrap_or(addr);
    if port.parse::<u16>().is_ok() {
        format!("127.0.0.1:{port}")
    } else {
        addr.to_string()
    }
}

/// Starts the server thread; returns the address it listens on.
pub fn start(cfg: &ServeConfig, shared: Arc<Mutex<Shared>>) -> Result<SocketAddr, String> {
    let tls = tls_config(cfg)?;
    let addr = bind_address(&cfg.addr);
    let listener = TcpListener::bind(&addr).map_err(|e| format!("{addr}: cannot listen: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (tls, shared) = (Arc::clone(&tls), Arc::clone(&shared));
            std::thread::spawn(move || {
                let _ = serve_one(conn, tls, &shared);
            });
        }
    });
    Ok(local)
}

fn serve_one(tcp: TcpStream, tls: Arc<ServerConfig>, shared: &Mutex<Shared>) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    // The request head (the handshake happens on the first read; a client without the
    // required certificate fails here).
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf)?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&c| c == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body): (&str, &str, String) = if method != "GET" {
        ("405 Method Not Allowed", "text/plain", "GET only\n".into())
    } else {
        let st = shared.lock().map_err(|_| io::Error::other("poisoned"))?;
        match path.split('?').next().unwrap_or("") {
            "/" => ("200 OK", "text/html; charset=utf-8", PAGE.to_string()),
            "/api/summary" => ("200 OK", "application/json", st.summary.clone()),
            "/api/flows" => (
                "200 OK",
                "application/json",
                format!(
                    "[{}]",
                    st.flows.iter().cloned().collect::<Vec<_>>().join(",")
                ),
            ),
            "/metrics" => ("200 OK", "text/plain; version=0.0.4", st.metrics.clone()),
            _ => ("404 Not Found", "text/plain", "not found\n".into()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nContent-Security-Policy: default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())?;
    s.flush()?;
    s.conn.send_close_notify();
    let _ = s.flush();
    Ok(())
}

/// The live page: fetches the API every two seconds and redraws its tables.
const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flowdoc live</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px}h1{margin:0;font-size:20px}
main{padding:12px 24px}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:10px 14px;margin-bottom:12px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #e6e9ef;padding:3px 6px;text-align:left}
.n{text-align:right}.bad{color:#b3261e;font-weight:600}
</style></head><body>
<header><h1>flowdoc live</h1><div id="status">waiting for the first summary</div></header>
<main>
<section><h2>Talking now</h2><table id="open"><thead><tr><th>guide row</th><th class="n">open flows</th></tr></thead><tbody></tbody></table></section>
<section><h2>Ended flows by guide row</h2><table id="labels"><thead><tr><th>guide row</th><th class="n">flows</th></tr></thead><tbody></tbody></table></section>
<section><h2>Findings</h2><table id="findings"><thead><tr><th>finding</th><th class="n">flows</th></tr></thead><tbody></tbody></table></section>
<section><h2>Latest flows</h2><table id="flows"><thead><tr><th>initiator</th><th>responder</th><th>port</th><th>status</th><th>rows</th><th>app</th><th>findings</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
function cell(tr, text, cls){var td=document.createElement('td');td.textContent=text;if(cls)td.className=cls;tr.appendChild(td);}
function fill(id, rows){var tb=document.querySelector('#'+id+' tbody');tb.textContent='';rows.forEach(function(r){var tr=document.createElement('tr');r.forEach(function(c,i){cell(tr,c[0],c[1]);});tb.appendChild(tr);});}
function host(e){return (e.name? e.name+' ':'')+e.ip;}
function refresh(){
  fetch('/api/summary').then(function(r){return r.json();}).then(function(s){
    document.getElementById('status').textContent=s.packets+' packets ('+Math.round(s.packets_per_s)+'/s), '+s.flows_open+' flows open, '+s.flows_ended+' ended: '+s.documented+' documented, '+s.undocumented+' undocumented; drops '+s.pcap.dropped+' (libpcap), '+s.evicted+' evicted';
    var open=Object.keys(s.open_labels).map(function(k){return [[k],[String(s.open_labels[k]),'n']];});
    if(s.open_undocumented>0){open.push([['undocumented','bad'],[String(s.open_undocumented),'n']]);}
    fill('open', open);
    fill('labels', Object.keys(s.labels).map(function(k){return [[k],[String(s.labels[k]),'n']];}));
    fill('findings', Object.keys(s.findings).map(function(k){return [[k,'bad'],[String(s.findings[k]),'n']];}));
  }).catch(function(){});
  fetch('/api/flows').then(function(r){return r.json();}).then(function(fs){
    fill('flows', fs.slice(-100).reverse().map(function(f){return [[host(f.initiator)],[host(f.responder)],[String(f.responder.port||'')+'/'+f.transport],[f.status,f.status==='undocumented'?'bad':''],[f.matches.map(function(m){return m.id+' '+m.label;}).join('; ')],[f.app||''],[f.findings.join(', '),'bad']];}));
  }).catch(function(){});
}
refresh();setInterval(refresh,2000);
</script></body></html>
"#;

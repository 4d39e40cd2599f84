//! `flowdoc live`: a capture file replayed at its recorded pace stands in for an interface
//! (no root, no libpcap needed), then a real capture on the loopback interface (built with
//! `--features live`, as root; skipped with the reason otherwise; `.ci/run` runs it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowdoc_report::FlowRecord;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowdoc"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `flowdoc live --replay` of the cluster fixture with these arguments (then `file`, if any).
fn replay(args: &[&str], file: Option<&Path>) -> std::process::Output {
    Command::new(bin())
        .current_dir(root())
        .args(["live", "--replay", "fixtures/cluster.pcap"])
        .args(args)
        .args(file)
        .output()
        .expect("run")
}

fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Every record of a JSONL file and its rotated predecessors.
fn records(base: &Path) -> Vec<FlowRecord> {
    let mut files = vec![base.to_path_buf()];
    for n in 1.. {
        let mut p = base.as_os_str().to_owned();
        p.push(format!(".{n}"));
        let p = PathBuf::from(p);
        if !p.exists() {
            break;
        }
        files.push(p);
    }
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("jsonl")
                .lines()
                .map(|l| serde_json::from_str::<FlowRecord>(l).expect("record"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// "packets 703" and "| flows 104:" from the final report's header.
fn header_count(report: &str, word: &str) -> u64 {
    let words: Vec<&str> = report.split_whitespace().collect();
    words
        .windows(3)
        .find(|w| {
            if word == "flows" {
                w[0] == "|" && w[1] == "flows"
            } else {
                w[0] == word
            }
        })
        .map(|w| if word == "flows" { w[2] } else { w[1] })
        .and_then(|n: &str| n.trim_end_matches(':').parse().ok())
        .unwrap_or_else(|| panic!("no {word} in the report:\n{report}"))
}

#[test]
fn a_replayed_capture_gives_every_flow_to_the_rotated_jsonl() {
    let d = dir("live-replay");
    let jsonl = d.join("flows.jsonl");
    let out = replay(
        &[
            "--speed",
            "4",
            "--interval",
            "0.05",
            "--rotate-kb",
            "20",
            "--jsonl",
        ],
        Some(&jsonl),
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Not a terminal: periodic JSON summaries, then the report analyze prints.
    let first = stdout.lines().next().expect("a summary");
    let summary: serde_json::Value = serde_json::from_str(first).expect("JSON summary");
    assert!(summary.get("packets_per_s").is_some() && summary.get("pcap").is_some());
    assert!(stdout.contains("Documented flows (by catalogue label)"));
    let rs = records(&jsonl);
    assert!(
        d.join("flows.jsonl.2").exists(),
        "the JSONL was rotated by size"
    );
    // The same flows analyze finds, none lost or doubled.
    assert_eq!(rs.len(), 104);
    assert_eq!(header_count(&stdout, "flows") as usize, rs.len());
    assert_eq!(rs.iter().map(|r| r.packets).sum::<u64>(), 703);
    let s2s = rs.iter().filter(|r| r.responder.port == Some(5269)).count();
    assert_eq!(s2s, 2);
}

/// SIGINT mid-capture: every flow seen so far is ended and written, the report printed, exit 0.
#[test]
fn sigint_flushes_every_open_flow_and_prints_the_report() {
    let d = dir("live-sigint");
    let jsonl = d.join("flows.jsonl");
    let child = Command::new(bin())
        .current_dir(root())
        .args([
            "live",
            "--replay",
            "fixtures/cluster.pcap",
            "--speed",
            "0.2",
        ])
        .arg("--jsonl")
        .arg(&jsonl)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rs = records(&jsonl);
    let packets = header_count(&stdout, "packets");
    assert!(packets > 0 && packets < 703, "stopped part way: {packets}");
    // Nothing lost: the JSONL holds every flow and every packet the capture saw.
    assert_eq!(header_count(&stdout, "flows") as usize, rs.len());
    assert_eq!(rs.iter().map(|r| r.packets).sum::<u64>(), packets);
    assert!(rs.iter().any(|r| r.end_reason == "end-of-input"));
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether this build and user can capture on lo; says why not when not.
fn can_capture_on_lo() -> bool {
    if !cfg!(feature = "live") {
        eprintln!("skipped: built without the live feature (cargo test --features live)");
        return false;
    }
    if !is_root() {
        eprintln!("skipped: capturing on lo needs root (CAP_NET_RAW)");
        return false;
    }
    true
}

/// Stops `flowdoc live` as Ctrl-C would and collects what it wrote.
fn interrupt(child: std::process::Child) -> std::process::Output {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    child.wait_with_output().expect("wait")
}

/// A real capture on the loopback interface: XMPP server-to-server and SIP sent by the test
/// while `flowdoc live -i lo` runs are labelled with their rows and protocols.
#[test]
fn live_capture_on_loopback_labels_what_the_test_sends() {
    if !can_capture_on_lo() {
        return;
    }
    // Listeners first, on documented ports; skip a port another process holds.
    let s2s = std::net::TcpListener::bind("127.0.0.1:5269");
    let sip = std::net::TcpListener::bind("127.0.0.1:5060");
    let (Ok(s2s), Ok(sip)) = (s2s, sip) else {
        eprintln!("skipped: 127.0.0.1:5269 or :5060 is in use");
        return;
    };
    let d = dir("live-lo");
    let jsonl = d.join("flows.jsonl");
    let child = Command::new(bin())
        .args([
            "live",
            "-i",
            "lo",
            "--filter",
            "tcp port 5269 or tcp port 5060",
        ])
        .args(["--interval", "0.2", "--jsonl"])
        .arg(&jsonl)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Give libpcap time to open the interface.
    std::thread::sleep(Duration::from_millis(1500));
    let serve = |l: std::net::TcpListener, answer: &'static [u8]| {
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = l.accept() {
                let mut buf = [0u8; 512];
                let _ = c.read(&mut buf);
                let _ = c.write_all(answer);
            }
        })
    };
    let a = serve(
        s2s,
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    );
    let b = serve(sip, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    for (port, msg) in [
        (5269u16, &b"<?xml version='1.0'?><stream:stream to='example.org' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"[..]),
        (5060, &b"OPTIONS sip:imp@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1\r\nContent-Length: 0\r\n\r\n"[..]),
    ] {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(msg).expect("send");
        let mut buf = [0u8; 512];
        let _ = c.read(&mut buf);
    }
    let _ = (a.join(), b.join());
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("libpcap received"), "{err}");
    let rs = records(&jsonl);
    let label = |port: u16| {
        rs.iter().find(|r| r.responder.port == Some(port)).map(|r| {
            (
                r.matches.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
                r.app.clone(),
            )
        })
    };
    assert_eq!(
        label(5269),
        Some((vec!["T22.2".to_string()], Some("xmpp".into()))),
        "{rs:?}"
    );
    assert_eq!(
        label(5060),
        Some((vec!["T2.1".to_string()], Some("sip".into()))),
        "{rs:?}"
    );
}

/// A burst on the loopback interface, faster than one packet every few microseconds: every
/// datagram is counted once, none dropped, and libpcap's count agrees with flowdoc's. (In
/// immediate mode libpcap's buffer on lo held about 500 packets of 64 KiB frames, and a rest of
/// 5 ms between reads dropped most of such a burst.)
#[test]
fn a_burst_on_loopback_is_captured_whole() {
    if !can_capture_on_lo() {
        return;
    }
    // A receiver that never reads: no port-unreachable answers, nothing else on this port.
    let Ok(sink) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        eprintln!("skipped: cannot bind a UDP socket on 127.0.0.1");
        return;
    };
    let port = sink.local_addr().expect("addr").port();
    let child = Command::new(bin())
        .args([
            "live",
            "-i",
            "lo",
            "--interval",
            "0.2",
            "--no-color",
            "--filter",
        ])
        .arg(format!("udp and dst port {port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    const BURST: u64 = 50_000;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let payload = [0x5au8; 64];
    let started = Instant::now();
    for _ in 0..BURST {
        tx.send_to(&payload, ("127.0.0.1", port)).expect("send");
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(800));
    let out = interrupt(child);
    let err = String::from_utf8_lossy(&out.stderr);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "libpcap received {BURST} packets, dropped 0 (buffer full), 0 by the interface"
        )),
        "sent {BURST} in {took:?}: {err}"
    );
    assert!(
        report.contains(&format!("packets {BURST}  in flows {BURST}")),
        "sent {BURST} in {took:?}: {report}"
    );
}

/// The packets written as they came, in a ring of pcap files: read back by `analyze`, the
/// files hold the fixture's flows (the oldest file of a full ring is deleted).
#[test]
fn the_pcap_ring_keeps_the_packets_as_they_came() {
    let d = dir("live-ring");
    let ring = d.join("ring.pcap");
    let out = replay(
        &[
            "--speed",
            "8",
            "--pcap-mb",
            "0",
            "--pcap-files",
            "100",
            "--write-pcap",
        ],
        Some(&ring),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --pcap-mb 0 rotates at the smallest file (64 KiB): several files.
    assert!(d.join("ring.pcap.1").exists());
    let out = Command::new(bin())
        .args(["analyze", "--format", "json"])
        .arg(&d)
        .output()
        .expect("analyze");
    let packets: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<FlowRecord>(l)
                .expect("record")
                .packets
        })
        .sum();
    assert_eq!(packets, 703, "every packet is in the ring");
    // A ring of two files keeps the newest packets only.
    let d = dir("live-ring-small");
    let ring = d.join("ring.pcap");
    replay(
        &[
            "--speed",
            "8",
            "--pcap-mb",
            "0",
            "--pcap-files",
            "2",
            "--write-pcap",
        ],
        Some(&ring),
    );
    let files = std::fs::read_dir(&d).expect("dir").count();
    assert_eq!(files, 2);
}

/// A flood against a small flow table: flows are evicted, counted, and still written.
#[test]
fn a_full_flow_table_evicts_counts_and_loses_nothing() {
    let d = dir("live-evict");
    let jsonl = d.join("flows.jsonl");
    let out = replay(
        &[
            "--speed",
            "4",
            "--max-flows",
            "16",
            "--interval",
            "0.05",
            "--jsonl",
        ],
        Some(&jsonl),
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let evicted = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["evicted"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(evicted > 0, "evictions are counted in the summaries");
    let rs = records(&jsonl);
    assert!(rs.iter().any(|r| r.end_reason == "evicted"));
    assert_eq!(rs.iter().map(|r| r.packets).sum::<u64>(), 703);
}

/// `--count` and `--duration` stop the capture cleanly, with the report of what was seen.
#[test]
fn count_and_duration_limits_stop_cleanly() {
    let run = |extra: &[&str]| {
        let out = replay(extra, None);
        assert_eq!(out.status.code(), Some(0));
        header_count(&String::from_utf8_lossy(&out.stdout), "packets")
    };
    assert_eq!(run(&["--count", "100"]), 100);
    let started = Instant::now();
    let seen = run(&["--speed", "0.1", "--duration", "1"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(seen > 0 && seen < 703, "{seen}");
}

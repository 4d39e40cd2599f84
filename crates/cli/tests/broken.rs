//! Broken captures (made by `flowdoc-fixturegen` into `fixtures/broken/`): flowdoc never
//! panics, names the file and the place, keeps what it could read, counts what it skipped by
//! reason, and its exit code says whether the input was whole (3 when it was not).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use flowdoc_report::FlowRecord;

fn broken(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/broken")
        .join(name)
}

struct Run {
    code: Option<i32>,
    stderr: String,
    packets: u64,
    flows: usize,
}

fn run(name: &str) -> Run {
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--format", "json"])
        .arg(broken(name))
        .output()
        .expect("run");
    let records: Vec<FlowRecord> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect();
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        packets: records.iter().map(|r| r.packets).sum(),
        flows: records.len(),
    }
}

/// (file, exit code, text stderr must hold, packets that still reach flows)
const CASES: &[(&str, i32, &str, u64)] = &[
    ("truncated-last-record.pcap", 3, "truncated-last-record.pcap: record 8 at byte 674: file ends inside the record", 7),
    ("caplen-too-large.pcap", 3, "caplen-too-large.pcap: record 5 at byte 404: corrupt record header: captured length 300000", 4),
    ("zero-length-record.pcap", 0, "1 packets skipped: empty 1", 8),
    ("bad-magic.pcap", 2, "bad-magic.pcap: not a pcap or pcapng file (it starts with bytes 58 58 58 58)", 0),
    ("trailing-length.pcapng", 3, "trailing-length.pcapng: record 5 at byte 564: block of type 0x6: trailing length 152 disagrees", 4),
    ("unknown-block.pcapng", 0, "", 8),
    ("unknown-linktype.pcap", 0, "unknown-linktype.pcap: link type 147 is not one flowdoc reads", 0),
    ("bad-ihl.pcap", 0, "1 packets skipped: malformed 1", 8),
    ("tcp-data-offset.pcap", 0, "1 packets skipped: malformed 1", 8),
    ("vlan-20.pcap", 0, "1 packets skipped: too-deep 1", 8),
    ("ipv6-extension-chain.pcap", 0, "1 packets skipped: malformed 1", 8),
    ("cut.pcap.gz", 3, "cut.pcap.gz: read error at byte 16794: incomplete deflate stream", 187),
];

#[test]
fn every_broken_file_behaves_as_documented() {
    let mut failures = Vec::new();
    for &(name, code, text, packets) in CASES {
        let r = run(name);
        if r.code != Some(code) || !r.stderr.contains(text) || r.packets != packets {
            failures.push(format!(
                "{name}: exit {:?} (want {code}), {} packets in flows (want {packets}), stderr:\n{}",
                r.code, r.packets, r.stderr
            ));
        }
        assert!(!r.stderr.contains("panicked"), "{name} panicked");
        if code == 3 {
            assert!(r.stderr.contains("the input was not whole"), "{name}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_unknown_block_is_counted_in_the_report() {
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--no-color"])
        .arg(broken("unknown-block.pcapng"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 pcapng blocks skipped"));
}

#[test]
fn a_truncated_file_still_gives_its_flows_and_the_next_file_is_read() {
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--format", "json"])
        .arg(broken("truncated-last-record.pcap"))
        .arg(broken("zero-length-record.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    // The same session in both files: the first copy (7 packets before the cut) had closed
    // with FIN both ways, so the second file's SYN starts a new flow of 8.
    let rs: Vec<FlowRecord> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let got: Vec<(u64, &str)> = rs.iter().map(|r| (r.packets, &*r.end_reason)).collect();
    assert_eq!(got, [(7, "port-reused"), (8, "end-of-input")]);
    assert_eq!(run("bad-magic.pcap").flows, 0);
}

#[test]
fn a_syn_flood_is_bounded_by_the_flow_cap_and_loses_no_flow() {
    let dir = std::env::temp_dir().join(format!("flowdoc-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("scan.pcap");
    let mut bytes = Vec::new();
    flowdoc_fixturegen::bench::write_syn_scan(&mut bytes, 100_000).expect("generate");
    std::fs::write(&path, bytes).expect("write");
    // One thread holds the cap exactly; two hold at most 9/8 of it (each table its share and
    // an eighth more, for the hash's uneven split).
    for (threads, held) in [("1", 10_000), ("2", 11_250)] {
        let out = Command::cargo_bin("flowdoc")
            .expect("binary")
            .args(["analyze", "--format", "csv", "--max-flows", "10000"])
            .args(["--threads", threads])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 100_001, "every flow is in the output");
        let evicted = text.lines().filter(|l| l.contains(",evicted,")).count();
        assert!(
            evicted >= 100_000 - held,
            "{threads} threads: {evicted} evicted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("the flow table was full"), "{err}");
    }
}

#[test]
fn a_full_disk_is_a_reported_error_not_a_silent_success() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("no /dev/full here: write-error test not run");
        return;
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cluster.pcap");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("flowdoc"))
        .args(["analyze", "--format", "json"])
        .arg(&fixture)
        .stdout(full)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdout: write error"), "{err}");
}

#[test]
fn output_files_appear_whole_or_not_at_all() {
    let dir = std::env::temp_dir().join(format!("flowdoc-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let dest = dir.join("flows.jsonl");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tunnels.pcap");
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--format", "json", "--output"])
        .arg(&dest)
        .arg(&fixture)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&dest)
            .expect("written")
            .lines()
            .count(),
        3
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left behind");
    // Unreadable input: the old output stays as it was.
    let before = std::fs::read(&dest).expect("read");
    let bad = broken("bad-magic.pcap");
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--format", "json", "--output"])
        .arg(&dest)
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        std::fs::read(&dest).expect("read") == before,
        "the earlier output was replaced"
    );
}

//! `flowdoc report` and `flowdoc rules` on the cluster fixture with its inventory: golden files
//! for Markdown, JSON and every rules format; the nftables and iptables output loaded by the
//! real tools; the HTML page opened in headless Chromium.
//!
//! Regenerate the golden files after reviewing a change:
//! `UPDATE_GOLDEN=1 cargo test -p flowdoc --test compliance`.
//!
//! The tool tests need `nft`, `iptables-restore` and `chromium` (`.ci/run` installs them); where
//! one is missing the test says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;

mod common;
use common::{chromium, console, headless, tool};
use flowdoc_report::ComplianceReport;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flowdoc() -> Command {
    let mut c = Command::cargo_bin("flowdoc").expect("binary");
    c.current_dir(root());
    c
}

fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

const INPUTS: [&str; 3] = [
    "--inventory",
    "fixtures/cluster-inventory.toml",
    "fixtures/cluster.pcap",
];

fn golden(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text == want,
        "{name} changed; review the difference and run with UPDATE_GOLDEN=1\n--- got ---\n{}",
        text.lines().take(40).collect::<Vec<_>>().join("\n")
    );
}

/// Runs `flowdoc report` once per test binary run into its own folder.
fn report(dir: &str) -> PathBuf {
    let d = out_dir(dir);
    let out = flowdoc()
        .arg("report")
        .args(INPUTS)
        .arg("-o")
        .arg(&d)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

#[test]
fn the_report_says_what_a_reviewer_signs() {
    let d = report("report-json");
    let json = std::fs::read_to_string(d.join("report.json")).expect("json");
    let r: ComplianceReport = serde_json::from_str(&json).expect("the JSON reads back");
    assert_eq!(
        (
            r.verdict.flows,
            r.verdict.documented,
            r.verdict.undocumented
        ),
        (104, 100, 4)
    );
    let count = |code: &str| r.verdict.findings.get(code).copied().unwrap_or(0);
    assert_eq!(count("role-mismatch"), 2);
    assert_eq!(count("localhost-only-on-wire"), 1);
    assert_eq!(count("transport-mismatch"), 1);
    // Every table of the guide is in the charts' data, every opening cites its rows.
    assert_eq!(
        r.tables.iter().map(|t| t.table).collect::<Vec<_>>(),
        (2..=30).collect::<Vec<u8>>()
    );
    assert!(r.openings.iter().all(|o| !o.rows.is_empty()));
    let s2s = r
        .openings
        .iter()
        .find(|o| o.source.label == "xmpp-clients")
        .expect("the client network's S2S opening");
    assert_eq!(
        (
            s2s.destination.label.as_str(),
            s2s.port,
            s2s.findings.clone()
        ),
        ("imp-50", Some(5269), vec!["role-mismatch".to_string()])
    );
    assert_eq!(s2s.source.addresses, ["10.250.0.0/16"]);
    // Provenance: the capture's hash, the time span, the catalogue and the inventory.
    let p = &r.provenance;
    assert_eq!(p.files.len(), 1);
    assert_eq!(p.files[0].sha256.as_deref().map(str::len), Some(64));
    assert!(p.first_seen.is_some() && p.last_seen.is_some());
    let inv = p.inventory.as_ref().expect("inventory");
    assert_eq!(inv.name.as_deref(), Some("cluster fixture"));
    assert_eq!(inv.networks, 1);
    golden("cluster-report.json", &json);
    // The page's first screen: the verdict cards, before any table or chart.
    let html = std::fs::read_to_string(d.join("report.html")).expect("html");
    let verdict = html.find("id=\"verdict\"").expect("verdict");
    for (check, n) in [
        ("undocumented", 4),
        ("role-mismatch", 2),
        ("localhost-only-on-wire", 1),
    ] {
        let card = format!("data-check=\"{check}\"><b>{n}</b>");
        let at = html.find(&card).unwrap_or_else(|| panic!("no card {card}"));
        assert!(at > verdict && at < html.find("id=\"findings\"").expect("findings"));
    }
    let md = std::fs::read_to_string(d.join("report.md")).expect("md");
    golden("cluster-report.md", &md);
}

#[test]
fn rules_in_every_format_match_their_golden_files() {
    for (format, file) in [
        ("nftables", "cluster-rules.nft"),
        ("iptables", "cluster-rules.iptables"),
        ("asa", "cluster-rules.asa"),
        ("ios", "cluster-rules.ios"),
        ("csv", "cluster-rules.csv"),
    ] {
        let out = flowdoc()
            .args(["rules", "--format", format])
            .args(INPUTS)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{format}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Held back and never allowed: the role mismatches, the localhost-only port on the
        // wire, and every undocumented flow.
        for held in ["xmpp-clients", "browser-desk", "10.201.0.1", "10.200.0.1"] {
            let allowed = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.starts_with('!') && !l.starts_with("review"))
                .any(|l| l.contains(held) || (held == "xmpp-clients" && l.contains("10.250.")));
            assert!(!allowed, "{format}: {held} must not be allowed");
        }
        golden(file, &text);
    }
}

/// The rules in `format`, written into a folder of the calling test's own (`tag`).
fn rules_file(format: &str, ext: &str, tag: &str) -> PathBuf {
    let d = out_dir(&format!("rules-{format}-{tag}"));
    let path = d.join(format!("rules.{ext}"));
    let out = flowdoc()
        .args(["rules", "--format", format])
        .args(INPUTS)
        .arg("-o")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    path
}

#[test]
fn nftables_rules_load_in_nft() {
    let Some(nft) = tool("nft") else {
        eprintln!("skipped: nft is not installed (.ci/run installs nftables)");
        return;
    };
    let path = rules_file("nftables", "nft", "load");
    let out = Std::new(nft)
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("nft");
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("Operation not permitted")
    {
        eprintln!("skipped: nft -c needs CAP_NET_ADMIN here");
        return;
    }
    assert!(
        out.status.success(),
        "nft -c rejected the rules: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn iptables_rules_load_in_iptables_restore() {
    let Some(ipt) = tool("iptables-restore") else {
        eprintln!("skipped: iptables-restore is not installed (.ci/run installs iptables)");
        return;
    };
    let path = rules_file("iptables", "rules", "load");
    let out = Std::new(ipt)
        .arg("--test")
        .stdin(std::fs::File::open(&path).expect("rules"))
        .output()
        .expect("iptables-restore");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (err.contains("Permission denied") || err.contains("Operation not permitted"))
    {
        eprintln!("skipped: iptables-restore --test needs root here");
        return;
    }
    assert!(
        out.status.success(),
        "iptables-restore --test rejected the rules: {err}"
    );
}

/// The page renders in a real browser with no console errors, and its charts and tables are
/// there; a screenshot is kept in target/ as the test's artefact.
#[test]
fn the_html_report_renders_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: chromium is not installed (.ci/run installs Debian's chromium)");
        return;
    };
    let d = report("report-html");
    let page = d.join("report.html");
    let html = std::fs::read_to_string(&page).expect("html");
    // Self-contained: nothing is fetched.
    for fetch in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(fetch), "the page fetches {fetch}");
    }
    let url = format!("file://{}", page.canonicalize().expect("path").display());
    let profile = d.join("chromium-profile");
    let browser = |extra: &[&str]| headless(&chromium, &profile, extra, &url);
    let out = browser(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<svg"), "no chart in the rendered page");
    assert!(dom.contains("id=\"verdict\"") && dom.contains("id=\"openings\""));
    assert!(dom.contains("role-mismatch") && dom.contains("localhost-only-on-wire"));
    let messages = console(&out);
    assert!(messages.is_empty(), "console messages: {messages:?}");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cluster-report.png");
    let _ = std::fs::remove_file(&shot);
    let out = browser(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,1600",
        "--hide-scrollbars",
    ]);
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
}

fn check(policy: &Path) -> (Option<i32>, String) {
    let out = flowdoc()
        .arg("check")
        .args(INPUTS)
        .arg("--policy")
        .arg(policy)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The rules flowdoc writes, read back as the firewall's policy: only the held-back flows are
/// blocked and every rule is used. A policy with one rule missing and one stray rule says so.
#[test]
fn a_policy_is_checked_against_the_capture() {
    for (format, ext) in [("nftables", "nft"), ("asa", "asa"), ("csv", "csv")] {
        let path = rules_file(format, ext, "check");
        let (code, text) = check(&path);
        assert_eq!(code, Some(1), "{format}: {text}");
        assert!(
            text.contains("Documented flows the policy would block: 3 flows in 3 groups"),
            "{format}: {text}"
        );
        assert!(
            text.contains("Rules no observed flow used: 0"),
            "{format}: {text}"
        );
        assert!(text.contains("[role-mismatch]") && text.contains("[localhost-only-on-wire]"));
    }
    // The nftables policy without its XCP client rule, and with a rule for the undocumented
    // service on 9999 and one for a host that never talked.
    let path = rules_file("nftables", "nft", "edit");
    let text = std::fs::read_to_string(&path).expect("rules");
    let edited: String = text
        .lines()
        .filter(|l| !l.contains("dport 5222 "))
        .map(|l| {
            if l.trim() == "chain flowdoc_allow {" {
                format!("{l}\n\t\tip saddr 10.200.0.1 ip daddr 10.200.0.2 tcp dport 9999 accept\n\t\tip saddr 192.0.2.1 ip daddr 10.0.0.1 tcp dport 22 accept")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let edited_path = path.with_file_name("edited.nft");
    std::fs::write(&edited_path, edited).expect("write");
    let (code, text) = check(&edited_path);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("Documented flows the policy would block: 4 flows in 4 groups"),
        "{text}"
    );
    assert!(
        text.contains("tcp/5222: 1 flows (T22.1 XCP client access (XMPP))"),
        "{text}"
    );
    assert!(text.contains("Rules no observed flow used: 1"), "{text}");
    assert!(text.contains("edited.nft:8: ip saddr 192.0.2.1"), "{text}");
    assert!(
        text.contains("Undocumented flows the policy allows: 1 flows in 1 groups"),
        "{text}"
    );
    assert!(text.contains("10.200.0.1 -> 10.200.0.2 tcp/9999"), "{text}");
    // An allow line flowdoc cannot read is an error that names the line.
    std::fs::write(
        &edited_path,
        "table inet t {\n chain c {\n  tcp dport ssh accept\n }\n}\n",
    )
    .expect("write");
    let (code, text) = check(&edited_path);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("edited.nft:3: \"ssh\" is not a port"),
        "{text}"
    );
}

/// The report on one thread and on three (where the captures are hashed on a thread of their
/// own while the flows are analysed) is the same, down to each capture's SHA-256, which is
/// the file's: two captures, one of them in a folder.
#[test]
fn the_report_is_the_same_on_one_thread_and_on_three() {
    let dir = out_dir("report-threads-in");
    std::fs::copy(
        root().join("fixtures/payloads.pcap"),
        dir.join("payloads.pcap"),
    )
    .expect("copy");
    let runs: Vec<String> = ["1", "3"]
        .iter()
        .map(|threads| {
            let d = out_dir(&format!("report-threads-{threads}"));
            let out = flowdoc()
                .args(["report", "--threads", threads])
                .args(INPUTS)
                .arg(&dir)
                .arg("-o")
                .arg(&d)
                .output()
                .expect("run");
            assert_eq!(out.status.code(), Some(0), "{out:?}");
            std::fs::read_to_string(d.join("report.json")).expect("json")
        })
        .collect();
    assert!(runs[0] == runs[1], "one thread and three differ");
    let r: ComplianceReport = serde_json::from_str(&runs[0]).expect("contract");
    let files: Vec<(String, Option<String>)> = r
        .provenance
        .files
        .iter()
        .map(|f| (f.path.clone(), f.sha256.clone()))
        .collect();
    let sha = |p: &Path| flowdoc_report::compliance::sha256_file(p).ok();
    assert_eq!(
        files,
        [
            (
                "fixtures/cluster.pcap".to_string(),
                sha(&root().join("fixtures/cluster.pcap"))
            ),
            (
                dir.join("payloads.pcap").display().to_string(),
                sha(&dir.join("payloads.pcap"))
            ),
        ]
    );
}

/// Past 10,000 undocumented groups the report lists no new group but still adds each flow of
/// a listed group to it, and counts the rest.
#[test]
fn past_the_listed_undocumented_groups_flows_are_counted() {
    use flowdoc_fixturegen::packet::{ethernet, udp, Ip};
    use flowdoc_fixturegen::write::{pcap, Frame, PcapOptions};
    // 10,500 groups (client, server, port 47000), one flow each; then a second flow of the
    // first group and of the last.
    let client = |i: u32| Ip::V4([10, 9, (i >> 8) as u8, i as u8]);
    let server = Ip::V4([10, 8, 0, 1]);
    let mut flows: Vec<(u32, u16)> = (0..10_500).map(|i| (i, 51_000)).collect();
    flows.extend([(0, 51_001), (10_499, 51_001)]);
    let frames: Vec<Frame> = flows
        .iter()
        .enumerate()
        .map(|(n, &(i, sport))| {
            let ip = udp(client(i), server, sport, 47_000, b"\x01\x02hello");
            Frame::new(n as i64 * 1_000, ethernet(&ip, &[]))
        })
        .collect();
    let dir = out_dir("report-undocumented-cap");
    let path = dir.join("many.pcap");
    std::fs::write(&path, pcap(&PcapOptions::ethernet(), &frames)).expect("write");
    for threads in ["1", "2"] {
        let d = out_dir(&format!("report-undocumented-cap-{threads}"));
        let out = flowdoc()
            .args(["report", "--threads", threads])
            .arg(&path)
            .arg("-o")
            .arg(&d)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let json = std::fs::read_to_string(d.join("report.json")).expect("json");
        let r: ComplianceReport = serde_json::from_str(&json).expect("contract");
        assert_eq!(r.verdict.undocumented, 10_502);
        assert_eq!(r.undocumented.len(), 10_000);
        assert_eq!(
            r.undocumented_not_listed, 501,
            "500 groups' flows and the last one's second"
        );
        let first = r
            .undocumented
            .iter()
            .find(|u| u.source.label == "10.9.0.0")
            .expect("the first group");
        assert_eq!(first.flows, 2);
    }
}

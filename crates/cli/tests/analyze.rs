//! `flowdoc analyze` and `flowdoc catalogue` as a user runs them, on the checked-in fixtures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use flowdoc_report::FlowRecord;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
}

fn flowdoc() -> Command {
    match Command::cargo_bin("flowdoc") {
        Ok(c) => c,
        Err(e) => panic!("flowdoc binary: {e}"),
    }
}

/// Runs `analyze --format json` and reads every line back into the contract struct, which
/// rejects unknown keys.
fn records(args: &[&str]) -> Vec<FlowRecord> {
    let out = flowdoc()
        .arg("analyze")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("run flowdoc");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<FlowRecord>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn find<'a>(rs: &'a [FlowRecord], port: u16, transport: &str) -> Vec<&'a FlowRecord> {
    rs.iter()
        .filter(|r| r.responder.port == Some(port) && r.transport == transport)
        .collect()
}

fn ids(r: &FlowRecord) -> Vec<&str> {
    r.matches.iter().map(|m| m.id.as_str()).collect()
}

#[test]
fn every_table_of_the_guide_is_labelled_in_the_cluster_fixture() {
    let rs = records(&[fixture("cluster.pcap").to_str().unwrap_or_default()]);
    let tables: BTreeSet<u8> = rs
        .iter()
        .flat_map(|r| r.matches.iter().map(|m| m.table))
        .collect();
    assert_eq!(tables, (2..=30).collect::<BTreeSet<u8>>());
    let cat = flowdoc_catalogue::Catalogue::embedded();
    let seen: BTreeSet<&str> = rs.iter().flat_map(ids).collect();
    for row in cat.rows() {
        assert!(
            seen.contains(row.id.as_str()),
            "row {} ({}) never matched",
            row.id,
            row.label
        );
    }
}

/// With the cluster's inventory every host has its name, and exactly the two flows that break
/// the guide's roles are role mismatches: a client network opening XCP S2S, and a desk that is
/// not IM and Presence binding to the directory.
#[test]
fn the_inventory_names_hosts_and_finds_role_mismatches() {
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--format", "json", "--inventory"])
        .arg(fixture("cluster-inventory.toml"))
        .arg(fixture("cluster.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let rs: Vec<FlowRecord> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let mismatches: Vec<(String, String, Option<u16>)> = rs
        .iter()
        .filter(|r| r.findings.iter().any(|f| f == "role-mismatch"))
        .map(|r| {
            (
                r.initiator.name.clone().unwrap_or_default(),
                r.responder.name.clone().unwrap_or_default(),
                r.responder.port,
            )
        })
        .collect();
    assert_eq!(
        mismatches,
        [
            ("xmpp-clients".to_string(), "imp-50".to_string(), Some(5269)),
            (
                "browser-desk".to_string(),
                "directory-18".to_string(),
                Some(389)
            ),
        ]
    );
    // Every address on the wire but the undocumented test hosts and loopback has a name.
    for r in rs.iter().filter(|r| r.status == "documented") {
        for e in [&r.initiator, &r.responder] {
            assert!(
                e.name.is_some() || e.ip.starts_with("127.") || e.ip.starts_with("10.201."),
                "{} has no name",
                e.ip
            );
        }
    }
    // A broken inventory is a usage error that says where.
    let dir = std::env::temp_dir().join(format!("flowdoc-inv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[host]]\nname = \"x\"\naddress = \"10.0.0.1\"\nroles = [\"imp\"]\n",
    )
    .expect("write");
    let out = Command::cargo_bin("flowdoc")
        .expect("binary")
        .args(["analyze", "--inventory"])
        .arg(&bad)
        .arg(fixture("cluster.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:4:10: unknown role \"imp\""), "{err}");
}

#[test]
fn cluster_labels_initiators_and_counts() {
    let rs = records(&[fixture("cluster.pcap").to_str().unwrap_or_default()]);
    // (The S2S flow from the client network 10.250/16 is the inventory test's.)
    let s2s: Vec<_> = find(&rs, 5269, "tcp")
        .into_iter()
        .filter(|r| !r.initiator.ip.starts_with("10.250."))
        .collect();
    assert_eq!(s2s.len(), 1);
    let s2s = s2s[0];
    assert_eq!(ids(s2s), ["T22.2"]);
    assert_eq!(s2s.matches[0].label, "XCP server-to-server (S2S)");
    assert_eq!((&*s2s.status, &*s2s.initiator_rule), ("documented", "syn"));
    assert_eq!(
        (
            s2s.packets,
            s2s.from_initiator.packets,
            s2s.from_responder.packets
        ),
        (11, 7, 4)
    );
    assert_eq!(s2s.from_initiator.tcp_flags, "SYN,ACK,PSH,FIN");
    // Its payload: an XMPP server stream that upgrades with STARTTLS.
    assert_eq!(s2s.app.as_deref(), Some("xmpp"));
    let d = s2s.app_detail.as_ref().expect("detail");
    assert_eq!(d.xmpp_ns.as_deref(), Some("jabber:server"));
    assert_eq!(d.starttls.as_deref(), Some("taken"));
    // 6603 is both IMDB replication (table 25) and IMDB SQL (table 26): both are reported.
    for r in find(&rs, 6603, "tcp") {
        assert_eq!(ids(r), ["T25.1", "T26.1"]);
    }
    // 8443 has five documented meanings.
    let tomcat = find(&rs, 8443, "tcp");
    assert!(tomcat
        .iter()
        .all(|r| ids(r) == ["T4.2", "T4.3", "T4.4", "T4.5", "T30.2"]));
    // The internal SNMP trap receiver fixes only its source port.
    let trap: Vec<_> = rs
        .iter()
        .filter(|r| r.initiator.port == Some(61441))
        .collect();
    assert_eq!(ids(trap[0]), ["T12.7"]);
    assert_eq!(trap[0].matches[0].port, Some(61441));
    // ICMP matches the ICMP rows of tables 17 and 29, with no ports.
    let icmp: Vec<_> = rs.iter().filter(|r| r.transport == "icmp").collect();
    assert!(!icmp.is_empty());
    assert!(icmp
        .iter()
        .all(|r| ids(r) == ["T17.1", "T29.1", "T29.2"] && r.initiator.port.is_none()));
}

#[test]
fn undocumented_flows_and_findings_are_reported() {
    let rs = records(&[fixture("cluster.pcap").to_str().unwrap_or_default()]);
    let svc = find(&rs, 9999, "tcp");
    assert_eq!((&*svc[0].status, svc[0].matches.len()), ("undocumented", 0));
    let dns_tcp = find(&rs, 53, "tcp");
    assert_eq!(dns_tcp[0].status, "undocumented");
    assert_eq!(dns_tcp[0].findings, ["transport-mismatch"]);
    assert!(find(&rs, 53, "udp")
        .iter()
        .all(|r| r.status == "documented" && r.findings.is_empty()));
    let ids_on_wire: Vec<_> = find(&rs, 1500, "tcp")
        .into_iter()
        .filter(|r| r.initiator.ip == "10.201.0.1")
        .collect();
    assert_eq!(ids_on_wire[0].findings, ["localhost-only-on-wire"]);
    let ids_local: Vec<_> = find(&rs, 1500, "tcp")
        .into_iter()
        .filter(|r| r.initiator.ip == "127.0.0.1")
        .collect();
    assert!(ids_local[0].findings.is_empty());
    assert!(rs
        .iter()
        .any(|r| r.transport == "icmpv6" && r.status == "undocumented"));
}

#[test]
fn every_link_type_and_block_kind_is_read() {
    let rs = records(&[fixture("links.pcapng").to_str().unwrap_or_default()]);
    let xmpp = find(&rs, 5222, "tcp");
    assert_eq!(xmpp.len(), 8, "one XMPP session per interface");
    assert!(xmpp
        .iter()
        .all(|r| r.packets == 8 && r.initiator_rule == "syn" && ids(r) == ["T22.1"]));
    let vlans: BTreeSet<Option<u16>> = find(&rs, 5060, "udp").iter().map(|r| r.vlan).collect();
    assert_eq!(vlans, [Some(100), Some(200)].into_iter().collect());
    // The SPB and OPB blocks carry the NTP exchange.
    assert_eq!(find(&rs, 123, "udp")[0].packets, 2);
}

#[test]
fn tunnels_give_the_inner_flow_and_say_so() {
    let rs = records(&[fixture("tunnels.pcap").to_str().unwrap_or_default()]);
    let t = |p: u16, tr: &str| find(&rs, p, tr)[0].tunnel.clone();
    assert_eq!(t(5269, "tcp").as_deref(), Some("ip-in-ip"));
    assert_eq!(t(5222, "tcp").as_deref(), Some("6in4"));
    assert_eq!(t(5060, "udp").as_deref(), Some("gre"));
    assert_eq!(find(&rs, 5222, "tcp")[0].initiator.ip, "2001:db8::501");
}

#[test]
fn fragments_count_to_their_flow_even_out_of_order() {
    let rs = records(&[fixture("fragments.pcap").to_str().unwrap_or_default()]);
    assert_eq!(rs.len(), 1);
    assert_eq!(ids(&rs[0]), ["T12.1"]);
    assert_eq!(
        (rs[0].from_initiator.packets, rs[0].from_initiator.fragments),
        (1, 1)
    );
}

#[test]
fn initiator_rules_and_port_reuse() {
    for f in ["midstream.pcap", "midstream-ns-be.pcap.gz"] {
        let rs = records(&[fixture(f).to_str().unwrap_or_default()]);
        let rule = |p: u16, tr: &str| find(&rs, p, tr)[0].initiator_rule.clone();
        assert_eq!(rule(5061, "tcp"), "catalogue-port", "{f}");
        assert_eq!(rule(443, "tcp"), "well-known-port", "{f}");
        assert_eq!(rule(40001, "tcp"), "first-packet", "{f}");
        assert_eq!(rule(5222, "tcp"), "syn-ack", "{f}");
        assert_eq!(rule(123, "udp"), "catalogue-port", "{f}");
        let reused = find(&rs, 5269, "tcp");
        assert_eq!(
            reused.len(),
            2,
            "{f}: a port reused after FIN is a new flow"
        );
        assert_eq!(reused[0].end_reason, "port-reused");
        assert_eq!(find(&rs, 5061, "tcp")[0].initiator.ip, "10.70.0.1");
    }
    let rs = records(&[
        fixture("midstream.pcap").to_str().unwrap_or_default(),
        "--no-split-on-reuse",
    ]);
    assert_eq!(find(&rs, 5269, "tcp").len(), 1);
}

#[test]
fn several_files_are_one_analysis_and_folders_expand() {
    let dir = std::env::temp_dir().join(format!("flowdoc-folder-{}", std::process::id()));
    let names = [
        "cluster.pcap",
        "fragments.pcap",
        "links.pcapng",
        "midstream-ns-be.pcap.gz",
        "tunnels.pcap",
    ];
    std::fs::create_dir_all(dir.join("sub")).expect("tmp");
    for f in names {
        std::fs::copy(fixture(f), dir.join("sub").join(f)).expect("copy");
    }
    let out = flowdoc()
        .args(["analyze", "--no-color"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for f in names {
        assert!(text.contains(f), "{f} not read:\n{text}");
    }
    // A flow split across two rotated files is one flow.
    let whole = std::fs::read(fixture("tunnels.pcap")).expect("read");
    let dir = std::env::temp_dir().join(format!("flowdoc-rot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    // Records of tunnels.pcap: split after the 4th (24-byte header, then records).
    let mut at = 24;
    for _ in 0..4 {
        let caplen =
            u32::from_le_bytes([whole[at + 8], whole[at + 9], whole[at + 10], whole[at + 11]])
                as usize;
        at += 16 + caplen;
    }
    std::fs::write(dir.join("a.pcap"), &whole[..at]).expect("write");
    let mut second = whole[..24].to_vec();
    second.extend_from_slice(&whole[at..]);
    std::fs::write(dir.join("b.pcap"), second).expect("write");
    let split = records(&[dir.to_str().unwrap_or_default()]);
    let single = records(&[fixture("tunnels.pcap").to_str().unwrap_or_default()]);
    assert_eq!(split, single);
}

#[test]
fn table_report_shows_labels_undocumented_and_findings() {
    let out = flowdoc()
        .args(["analyze", "--no-color", "--width", "160"])
        .arg(fixture("cluster.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Documented flows",
        "T22.2 XCP server-to-server (S2S)",
        "5269/tcp",
        "Undocumented flows",
        "9999/tcp",
        "transport-mismatch",
        "localhost-only-on-wire",
        "catalogue: <embedded catalogue.toml>",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn csv_has_a_header_and_a_row_per_flow() {
    let json = records(&[fixture("tunnels.pcap").to_str().unwrap_or_default()]).len();
    let out = flowdoc()
        .args(["analyze", "--format", "csv"])
        .arg(fixture("tunnels.pcap"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("transport,initiator_ip,initiator_port,responder_ip,responder_port")
    );
    assert_eq!(lines.len(), json + 1);
    assert!(text.contains("XCP server-to-server (S2S)"));
}

#[test]
fn fail_on_sets_exit_code_one() {
    let f = fixture("cluster.pcap");
    flowdoc()
        .args(["analyze", "--format", "json", "--fail-on", "undocumented"])
        .arg(&f)
        .assert()
        .code(1);
    flowdoc()
        .args(["analyze", "--format", "json", "--fail-on", "finding"])
        .arg(&f)
        .assert()
        .code(1);
    flowdoc()
        .args(["analyze", "--format", "json", "--fail-on", "undocumented"])
        .arg(fixture("tunnels.pcap"))
        .assert()
        .code(0);
}

#[test]
fn unreadable_input_is_exit_two_and_named() {
    let dir = std::env::temp_dir().join(format!("flowdoc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let bad = dir.join("notes.txt");
    std::fs::write(&bad, "not a capture at all").expect("write");
    let out = flowdoc()
        .args(["analyze", "--format", "json"])
        .arg(&bad)
        .arg(fixture("tunnels.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt: not a pcap or pcapng file"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        3,
        "the readable file is still analysed"
    );
    let missing = flowdoc()
        .args(["analyze"])
        .arg(dir.join("nope.pcap"))
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.pcap: cannot open"));
}

#[test]
fn overlay_moves_a_port_and_bad_overlays_name_the_line() {
    let dir = std::env::temp_dir().join(format!("flowdoc-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let site = dir.join("site.toml");
    std::fs::write(
        &site,
        "[[change]]\nid = \"T22.2\"\nports = [15269]\nnote = \"S2S moved here\"\n",
    )
    .expect("write");
    let rs = records(&[
        fixture("tunnels.pcap").to_str().unwrap_or_default(),
        "--overlay",
        site.to_str().unwrap_or_default(),
    ]);
    assert_eq!(find(&rs, 5269, "tcp")[0].status, "undocumented");
    let out = flowdoc()
        .args(["catalogue", "--port", "15269", "--format", "json"])
        .args(["--overlay"])
        .arg(&site)
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rows"][0]["id"], "T22.2");
    std::fs::write(&site, "[[change]]\nid = \"T22.2\"\nports = [70000]\n").expect("write");
    let out = flowdoc()
        .args(["analyze"])
        .arg(fixture("tunnels.pcap"))
        .arg("--overlay")
        .arg(&site)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("site.toml:3:10: 70000 is not a port number"),
        "{err}"
    );
}

/// A row that wants XMPP over TLS is satisfied by a stream that took STARTTLS; a row that
/// wants TLS from the first byte is not.
#[test]
fn starttls_taken_satisfies_a_row_that_wants_xmpp_over_tls_only() {
    let dir = std::env::temp_dir().join(format!("flowdoc-starttls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let site = dir.join("site.toml");
    let s2s = |payload: &str| {
        std::fs::write(
            &site,
            format!("[[change]]\nid = \"T22.2\"\npayload = \"{payload}\"\n"),
        )
        .expect("write");
        let rs = records(&[
            fixture("cluster.pcap").to_str().unwrap_or_default(),
            "--overlay",
            site.to_str().unwrap_or_default(),
        ]);
        let flows = find(&rs, 5269, "tcp");
        assert_eq!(flows.len(), 2);
        for f in &flows {
            let d = f.app_detail.as_ref().expect("detail");
            assert_eq!(d.starttls.as_deref(), Some("taken"));
        }
        flows[0].findings.clone()
    };
    assert!(s2s("xmpp/tls").is_empty());
    assert_eq!(s2s("tls"), ["protocol-mismatch", "tls-expected"]);
}

#[test]
fn catalogue_filters_by_port_table_and_text() {
    let out = flowdoc()
        .args(["catalogue", "--port", "8443", "--format", "json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, ["T4.2", "T4.3", "T4.4", "T4.5", "T30.2"]);
    let out = flowdoc()
        .args(["catalogue", "--table", "30", "--search", "recovery"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("T30.9") && text.contains("21999"), "{text}");
    assert!(text.contains("3 of 92 rows"), "{text}");
}

#[test]
fn fixtures_regenerate_byte_for_byte() {
    let cat = flowdoc_catalogue::Catalogue::embedded();
    for (name, bytes) in flowdoc_fixturegen::fixtures::all(&cat) {
        let on_disk = std::fs::read(fixture(&name)).unwrap_or_default();
        assert!(
            on_disk == bytes,
            "fixtures/{name} differs from the generator: run `cargo run -p flowdoc-fixturegen`"
        );
    }
}

#[test]
fn an_unknown_link_type_is_named_and_its_packets_counted() {
    let frames = vec![flowdoc_fixturegen::write::Frame::new(
        0,
        vec![1, 2, 3, 4, 5, 6, 7, 8],
    )];
    let o = flowdoc_fixturegen::write::PcapOptions {
        link_type: 147,
        ..flowdoc_fixturegen::write::PcapOptions::ethernet()
    };
    let dir = std::env::temp_dir().join(format!("flowdoc-lt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("user0.pcap");
    std::fs::write(&path, flowdoc_fixturegen::write::pcap(&o, &frames)).expect("write");
    let out = flowdoc()
        .args(["analyze", "--format", "json"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("user0.pcap: link type 147 is not one flowdoc reads"),
        "{err}"
    );
    assert!(
        err.contains("1 packets skipped: unknown-link-type-147 1"),
        "{err}"
    );
}

/// The terminal report of the midstream fixture, compared with `crates/cli/tests/golden/midstream.txt`.
/// Regenerate after reviewing a change: `UPDATE_GOLDEN=1 cargo test -p flowdoc --test analyze golden`.
#[test]
fn golden_terminal_report() {
    let out = flowdoc()
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "analyze",
            "--no-color",
            "--width",
            "120",
            "fixtures/midstream.pcap",
        ])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/midstream.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, text.as_bytes()).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        text, want,
        "terminal report changed; review and run with UPDATE_GOLDEN=1"
    );
}

#[test]
fn payloads_are_identified_and_checked_against_the_guide() {
    let rs = records(&[fixture("payloads.pcap").to_str().unwrap_or_default()]);
    let by = |port: u16, n: usize| {
        find(
            &rs,
            port,
            if port == 161 || n == 99 { "udp" } else { "tcp" },
        )
    };
    let tls5061 = by(5061, 0);
    // Server authentication only, though its ClientHello came split, reordered and repeated.
    let d = tls5061[0].app_detail.as_ref().expect("tls detail");
    assert_eq!(tls5061[0].app.as_deref(), Some("tls"));
    assert_eq!(d.sni.as_deref(), Some("imp.example.com"));
    assert_eq!(d.tls_version.as_deref(), Some("1.2"));
    assert_eq!(d.mutual_auth, Some(false));
    assert!(
        d.ja4
            .as_deref()
            .is_some_and(|j| j.starts_with("t12d060400_")),
        "{:?}",
        d.ja4
    );
    assert!(tls5061[0].findings.is_empty());
    // 5062: with a client certificate, mutual; asked and not given, not mutual.
    let tls5062 = by(5062, 0);
    let mutual: Vec<Option<bool>> = tls5062
        .iter()
        .map(|r| r.app_detail.as_ref().and_then(|d| d.mutual_auth))
        .collect();
    assert_eq!(mutual, [Some(true), Some(false)]);
    // Plaintext on 5061: HTTP is another protocol and not TLS; SIP is right but not TLS.
    let plain: Vec<(Option<&str>, Vec<&str>)> = tls5061[1..]
        .iter()
        .map(|r| (r.app.as_deref(), r.findings.iter().map(|f| &**f).collect()))
        .collect();
    assert_eq!(
        plain,
        [
            (Some("http"), vec!["protocol-mismatch", "tls-expected"]),
            (Some("sip"), vec!["tls-expected"]),
        ]
    );
    // Opaque bytes on UDP 5060 are not SIP; a CRLF keepalive on TCP 5060 is.
    let udp5060 = find(&rs, 5060, "udp");
    assert_eq!(
        (udp5060[0].app.as_deref(), udp5060[0].findings.clone()),
        (None, vec![std::borrow::Cow::Borrowed("protocol-mismatch")])
    );
    let tcp5060 = by(5060, 0);
    assert_eq!(
        (tcp5060[0].app.as_deref(), tcp5060[0].findings.len()),
        (Some("sip"), 0)
    );
    // SNMP v1 and v3; Redis where the guide names no protocol; HTTP where it names nothing.
    let snmp: Vec<Option<&str>> = by(161, 99)
        .iter()
        .map(|r| {
            r.app_detail
                .as_ref()
                .and_then(|d| d.snmp_version.as_deref())
        })
        .collect();
    assert_eq!(snmp, [Some("1"), Some("3")]);
    assert_eq!(by(6379, 0)[0].app.as_deref(), Some("redis"));
    let web = by(9999, 0)[0];
    assert_eq!(
        (&*web.status, web.app.as_deref()),
        ("undocumented", Some("http"))
    );
    let d = web.app_detail.as_ref().expect("http detail");
    assert_eq!(d.http_host.as_deref(), Some("tools.example.com:9999"));
    // The terminal report shows what it looks like.
    let out = flowdoc()
        .args(["analyze", "--no-color", "--width", "200"])
        .arg(fixture("payloads.pcap"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("http GET tools.example.com:9999/status"),
        "{text}"
    );
    assert!(text.contains("http 1, sip 1, tls 1"), "{text}");
    assert!(
        text.contains("5061/tcp: http GET imp.example.com:5061/"),
        "{text}"
    );
}

#[test]
fn every_documented_protocol_of_the_cluster_is_identified_without_findings() {
    let rs = records(&[fixture("cluster.pcap").to_str().unwrap_or_default()]);
    let apps: BTreeSet<&str> = rs.iter().filter_map(|r| r.app.as_deref()).collect();
    let want = [
        "dns", "http", "icmp", "isakmp", "ldap", "mdns", "ntp", "pgsql", "rmi", "sip", "snmp",
        "ssh", "tds", "tls", "tns", "xmpp",
    ];
    assert_eq!(apps, want.into_iter().collect());
    assert!(!rs.iter().any(|r| r
        .findings
        .iter()
        .any(|f| f.contains("protocol") || f == "tls-expected")));
    // With identification off, no payload is read and no app is reported.
    let out = flowdoc()
        .args(["analyze", "--format", "json", "--payload-bytes", "0"])
        .arg(fixture("cluster.pcap"))
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > 90, "{text}");
    assert!(!text.contains("\"app\":\""), "{text}");
}

/// `-o` onto something that is not a regular file (a FIFO here; /dev/null in practice) writes
/// into it: the write-whole-then-rename of regular files would replace it.
#[test]
fn output_to_a_fifo_writes_into_it_and_leaves_it_a_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let dir = std::env::temp_dir().join(format!("flowdoc-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("out");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the fifo"))
    };
    let out = flowdoc()
        .args(["analyze", "--format", "json", "-o"])
        .arg(&fifo)
        .arg(fixture("cluster.pcap"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = reader.join().expect("reader");
    assert_eq!(text.lines().count(), 104);
    let kind = std::fs::metadata(&fifo).expect("fifo").file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A capture streamed through a FIFO (`mkfifo x; tcpdump -w x & flowdoc analyze x`), plain and
/// gzip-compressed: the bytes read to tell the formats apart cannot be read twice from a pipe.
#[test]
fn a_capture_from_a_fifo_is_read_whole() {
    let dir = std::env::temp_dir().join(format!("flowdoc-fifo-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("in.pcap");
    // On the default threads, and on threads named.
    for (source, threads) in [
        ("cluster.pcap", None),
        ("midstream-ns-be.pcap.gz", None),
        ("cluster.pcap", Some("2")),
        ("midstream-ns-be.pcap.gz", Some("3")),
    ] {
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let writer = {
            let (fifo, bytes) = (
                fifo.clone(),
                std::fs::read(fixture(source)).expect("fixture"),
            );
            std::thread::spawn(move || std::fs::write(fifo, bytes).expect("write the fifo"))
        };
        let from_fifo = flowdoc()
            .args(["analyze", "--format", "json"])
            .args(threads.map(|t| ["--threads", t]).iter().flatten())
            .arg(&fifo)
            .output()
            .expect("run");
        writer.join().expect("writer");
        assert_eq!(
            from_fifo.status.code(),
            Some(0),
            "{source}: {}",
            String::from_utf8_lossy(&from_fifo.stderr)
        );
        let from_file = flowdoc()
            .args(["analyze", "--format", "json"])
            .arg(fixture(source))
            .output()
            .expect("run");
        assert!(!from_file.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&from_fifo.stdout),
            String::from_utf8_lossy(&from_file.stdout),
            "{source}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JSON line `analyze` writes straight from a flow (through `JsonLines`, with each row's
/// part escaped once, and through `json_line_of`) is, byte for byte, the line of the flow
/// record that `report` and `live` make, and so is the CSV row: every flow of the shipped captures
/// (payload details, tunnels, fragments, IPv6, other link types), with the inventory's names.
#[test]
fn the_line_written_from_a_flow_is_its_records_line() {
    use flowdoc_catalogue::Catalogue;
    use flowdoc_inventory::Inventory;
    use flowdoc_pipeline::{analyze_files, Options, Reference};

    let cat = Catalogue::embedded();
    let inv = Inventory::load(&fixture("cluster-inventory.toml")).expect("inventory");
    let rf = Reference {
        catalogue: &cat,
        inventory: Some(&inv),
    };
    let paths: Vec<PathBuf> = [
        "cluster.pcap",
        "payloads.pcap",
        "tunnels.pcap",
        "fragments.pcap",
        "links.pcapng",
        "midstream.pcap",
        "midstream-ns-be.pcap.gz",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let (mut flows, mut named, mut detailed) = (0, 0, 0);
    let json = flowdoc_report::JsonLines::new(rf);
    analyze_files(
        rf,
        &paths,
        Options::default(),
        1,
        &mut |lf| {
            let (mut direct, mut record, mut lines) = (Vec::new(), Vec::new(), Vec::new());
            FlowRecord::json_line_of(rf, lf, &mut direct);
            FlowRecord::new(rf, lf).json_line(&mut record);
            json.line(lf, &mut lines);
            let direct = String::from_utf8_lossy(&direct).into_owned();
            assert_eq!(direct, String::from_utf8_lossy(&record));
            assert_eq!(direct, String::from_utf8_lossy(&lines));
            // The same for the CSV row.
            let (mut row, mut record_row) = (Vec::new(), Vec::new());
            FlowRecord::csv_row_of(rf, lf, &mut row);
            FlowRecord::new(rf, lf).csv_row(&mut record_row);
            assert_eq!(
                String::from_utf8_lossy(&row),
                String::from_utf8_lossy(&record_row)
            );
            flows += 1;
            named += usize::from(direct.contains("\"name\":"));
            detailed += usize::from(!direct.contains("\"app_detail\":null"));
        },
        &mut |_, _, _| {},
    );
    assert!(
        flows > 100 && named > 10 && detailed > 10,
        "{flows} flows, {named} with names, {detailed} with details"
    );
}

/// The terminal report groups documented flows by port and matched rows: a group's hosts are
/// counted once each, IPv4 and IPv6 alike, and its payload column names each protocol with
/// its flows, by name.
#[test]
fn a_label_groups_hosts_are_counted_once_over_ipv4_and_ipv6() {
    use flowdoc_fixturegen::messages::sip_request;
    use flowdoc_fixturegen::packet::{ethernet, udp, Ip};
    use flowdoc_fixturegen::write::{pcap, Frame, PcapOptions};
    let v4 = |last: u8| Ip::V4([10, 0, 0, last]);
    let v6 = |last: u8| {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        Ip::V6(a)
    };
    let sip = sip_request("OPTIONS", "UDP");
    let opaque = [0x17u8, 0x99, 0x42, 0x00, 0x13, 0x37, 0xfe, 0x01];
    // (initiator, responder, source port, payload): 10.0.0.1 twice, 10.0.0.9 three times.
    let flows: [(Ip, Ip, u16, &[u8]); 4] = [
        (v4(1), v4(9), 40_000, &sip),
        (v4(2), v4(9), 40_001, &sip),
        (v4(1), v4(9), 40_002, &opaque),
        (v6(1), v6(9), 40_003, &sip),
    ];
    let frames: Vec<Frame> = flows
        .iter()
        .enumerate()
        .map(|(i, &(a, b, sport, payload))| {
            Frame::new(
                i as i64 * 1_000_000,
                ethernet(&udp(a, b, sport, 5060, payload), &[]),
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("flowdoc-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("hosts.pcap");
    std::fs::write(&path, pcap(&PcapOptions::ethernet(), &frames)).expect("write");
    for threads in ["1", "2"] {
        let out = flowdoc()
            .args(["analyze", "--width", "200", "--threads", threads])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let row = text
            .lines()
            .find(|l| l.contains("5060/udp"))
            .unwrap_or_else(|| panic!("no 5060/udp row:\n{text}"));
        let cells: Vec<&str> = row.split('┆').map(|c| c.trim_matches(['│', ' '])).collect();
        // Table, Label, Port, Protocol, Payload, Flows, Packets, Bytes, Hosts.
        assert_eq!(cells[4], "opaque 1, sip 3", "{row}");
        assert_eq!(cells[5], "4", "{row}");
        assert_eq!(cells[8], "5", "three IPv4 hosts and two IPv6 hosts: {row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

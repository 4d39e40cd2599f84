//! Firewall rules from a compliance report: allow rules for the documented openings only,
//! aggregated (every source of one destination, transport and port in one rule where the
//! format has sets), each citing the guide's rows. Undocumented flows never become rules: they
//! are listed as comments to review.
//!
//! Openings whose flows are role mismatches or localhost-only ports on the wire are held back
//! and listed as comments too; loopback openings need no rule.
//!
//! Formats: nftables (a regular chain `flowdoc_allow` in table `inet flowdoc`, to `jump` to
//! from the site's own chain), iptables-restore (chain `FLOWDOC-ALLOW`, IPv4; IPv6 openings
//! are listed as comments), Cisco ASA access-list, Cisco IOS extended ACL, and CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;

use crate::compliance::{Citation, ComplianceReport, Opening, Party};

/// The rule formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFormat {
    Nftables,
    Iptables,
    Asa,
    Ios,
    Csv,
}

/// One allow rule: every source seen opening one destination's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub sources: Vec<Party>,
    pub destination: Party,
    pub transport: String,
    pub port: Option<u16>,
    pub rows: Vec<Citation>,
    pub flows: u64,
    pub bytes: u64,
}

impl Rule {
    /// "T22.2 XCP server-to-server (S2S); T22.x ...": the comment every format carries.
    pub fn citation(&self) -> String {
        crate::compliance::citations(&self.rows)
    }

    fn nets(p: &[&Party]) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = p
            .iter()
            .flat_map(|p| p.addresses.iter().filter_map(|a| a.parse().ok()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn source_nets(&self) -> Vec<IpNet> {
        Rule::nets(&self.sources.iter().collect::<Vec<_>>())
    }

    fn destination_nets(&self) -> Vec<IpNet> {
        Rule::nets(&[&self.destination])
    }

    /// Every (source, destination) pair of one address family: what one-pair-a-line formats
    /// (iptables, ASA, IOS) write.
    fn pairs(&self) -> Vec<(IpNet, IpNet)> {
        let dst = self.destination_nets();
        self.source_nets()
            .into_iter()
            .flat_map(|s| {
                dst.iter()
                    .filter(move |d| v4(d) == v4(&s))
                    .map(move |&d| (s, d))
            })
            .collect()
    }
}

/// Findings that keep an opening out of the rules: the guide documents the port, but not for
/// these hosts, or not across the network.
const HELD_BACK: [&str; 2] = ["role-mismatch", "localhost-only-on-wire"];

/// Whether an opening is loopback-only (no firewall sees it).
fn loopback(o: &Opening) -> bool {
    [&o.source, &o.destination].iter().all(|p| {
        p.addresses
            .iter()
            .filter_map(|a| a.parse::<IpNet>().ok())
            .all(|n| n.addr().is_loopback())
    })
}

/// Openings that become rules: not held back by a finding, not loopback.
fn allowed(o: &Opening) -> bool {
    !loopback(o) && !o.findings.iter().any(|f| HELD_BACK.contains(&f.as_str()))
}

/// The rules of a report: allowed openings grouped by destination, transport and port.
pub fn rules(r: &ComplianceReport) -> Vec<Rule> {
    let mut groups: BTreeMap<(String, String, Option<u16>), Rule> = BTreeMap::new();
    for o in r.openings.iter().filter(|o| allowed(o)) {
        let key = (o.destination.label.clone(), o.transport.clone(), o.port);
        let e = groups.entry(key).or_insert_with(|| Rule {
            sources: Vec::new(),
            destination: o.destination.clone(),
            transport: o.transport.clone(),
            port: o.port,
            rows: Vec::new(),
            flows: 0,
            bytes: 0,
        });
        if !e.sources.contains(&o.source) {
            e.sources.push(o.source.clone());
        }
        for c in &o.rows {
            if !e.rows.contains(c) {
                e.rows.push(c.clone());
            }
        }
        e.flows += o.flows;
        e.bytes += o.bytes;
    }
    let mut v: Vec<Rule> = groups.into_values().collect();
    for r in &mut v {
        r.sources.sort();
        r.rows.sort();
    }
    v
}

/// Comment text safe in every format: printable ASCII-ish, no quotes, bounded.
fn comment(s: &str, max: usize) -> String {
    let mut o: String = crate::escape(s)
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    if o.len() > max {
        let mut cut = max;
        while !o.is_char_boundary(cut) {
            cut -= 1;
        }
        o.truncate(cut);
    }
    o
}

fn header(r: &ComplianceReport, prefix: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{prefix} flowdoc rules: allow the openings the capture showed and the IM and Presence port guide documents"
    );
    for f in &r.provenance.files {
        let _ = writeln!(
            o,
            "{prefix} capture {} sha256 {}",
            comment(&f.path, 200),
            f.sha256.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        o,
        "{prefix} catalogue {}; {} openings, {} undocumented flows (listed at the end, never allowed)",
        comment(&r.provenance.catalogue_version, 120),
        r.verdict.openings,
        r.verdict.undocumented
    );
    o
}

fn review(r: &ComplianceReport, prefix: &str) -> String {
    let mut o = String::new();
    let held: Vec<&Opening> = r
        .openings
        .iter()
        .filter(|p| !loopback(p) && !allowed(p))
        .collect();
    if !held.is_empty() {
        let _ = writeln!(
            o,
            "{prefix} Documented ports held back by a finding (not allowed by these rules):"
        );
        for p in held {
            let _ = writeln!(
                o,
                "{prefix}   {} -> {} {}{} ({}): {} flows [{}]",
                comment(&p.source.label, 100),
                comment(&p.destination.label, 100),
                p.transport,
                p.port.map(|x| format!("/{x}")).unwrap_or_default(),
                comment(
                    &p.rows
                        .iter()
                        .map(|c| c.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    100
                ),
                p.flows,
                p.findings.join(", ")
            );
        }
    }
    if r.undocumented.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "{prefix} Undocumented flows to review (not allowed by these rules):"
    );
    for u in &r.undocumented {
        let _ = writeln!(
            o,
            "{prefix}   {} -> {} {}{}: {} flows, {} bytes, looks like {}{}",
            comment(&u.source.label, 100),
            comment(&u.destination.label, 100),
            u.transport,
            u.port.map(|p| format!("/{p}")).unwrap_or_default(),
            u.flows,
            u.bytes,
            u.looks_like.join(", "),
            if u.findings.is_empty() {
                String::new()
            } else {
                format!(" [{}]", u.findings.join(", "))
            }
        );
    }
    o
}

/// The rules in one format.
pub fn render(r: &ComplianceReport, format: RuleFormat) -> String {
    let rules = rules(r);
    match format {
        RuleFormat::Nftables => nftables(r, &rules),
        RuleFormat::Iptables => iptables(r, &rules),
        RuleFormat::Asa => asa(r, &rules),
        RuleFormat::Ios => ios(r, &rules),
        RuleFormat::Csv => csv(r, &rules),
    }
}

fn v4(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}

/// nftables: `nft -f` loads it; `nft -c -f` checks it.
fn nftables(r: &ComplianceReport, rules: &[Rule]) -> String {
    let mut o = header(r, "#");
    o.push_str("# Jump here from your own chain, e.g. `jump flowdoc_allow` in a forward chain.\n");
    o.push_str("table inet flowdoc {\n\tchain flowdoc_allow {\n");
    for rule in rules {
        let _ = writeln!(
            o,
            "\t\t# {} ({} flows, {} bytes)",
            comment(&rule.citation(), 400),
            rule.flows,
            rule.bytes
        );
        for family in [true, false] {
            let src: Vec<IpNet> = rule
                .source_nets()
                .into_iter()
                .filter(|n| v4(n) == family)
                .collect();
            let dst: Vec<IpNet> = rule
                .destination_nets()
                .into_iter()
                .filter(|n| v4(n) == family)
                .collect();
            if src.is_empty() || dst.is_empty() {
                continue;
            }
            let ip = if family { "ip" } else { "ip6" };
            let set = |v: &[IpNet]| {
                let items: Vec<String> = v.iter().map(nft_addr).collect();
                if items.len() == 1 {
                    items[0].clone()
                } else {
                    format!("{{ {} }}", items.join(", "))
                }
            };
            let l4 = match (rule.transport.as_str(), rule.port) {
                ("tcp", Some(p)) => format!("tcp dport {p}"),
                ("udp", Some(p)) => format!("udp dport {p}"),
                ("icmp", _) if family => "meta l4proto icmp".to_string(),
                ("icmp", _) => "meta l4proto ipv6-icmp".to_string(),
                (t, _) => format!("meta l4proto {t}"),
            };
            let _ = writeln!(
                o,
                "\t\t{ip} saddr {} {ip} daddr {} {l4} accept comment \"{}\"",
                set(&src),
                set(&dst),
                comment(&rule.citation(), 120)
            );
        }
    }
    o.push_str("\t}\n}\n");
    o.push_str(&review(r, "#"));
    o
}

fn nft_addr(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

/// iptables-restore: `iptables-restore --test` checks it. IPv4 only: IPv6 openings are listed
/// as comments (the nftables output covers both).
fn iptables(r: &ComplianceReport, rules: &[Rule]) -> String {
    let mut o = header(r, "#");
    o.push_str("# Jump here from your own chain, e.g. -A FORWARD -j FLOWDOC-ALLOW.\n");
    o.push_str("*filter\n:FLOWDOC-ALLOW - [0:0]\n");
    let mut v6 = Vec::new();
    for rule in rules {
        let _ = writeln!(
            o,
            "# {} ({} flows, {} bytes)",
            comment(&rule.citation(), 400),
            rule.flows,
            rule.bytes
        );
        for (s, d) in rule.pairs() {
            if !v4(&s) {
                v6.push(format!(
                    "{s} -> {d} {}{}",
                    rule.transport,
                    rule.port.map(|p| format!("/{p}")).unwrap_or_default()
                ));
                continue;
            }
            let l4 = match (rule.transport.as_str(), rule.port) {
                ("tcp", Some(p)) => format!("-p tcp -m tcp --dport {p}"),
                ("udp", Some(p)) => format!("-p udp -m udp --dport {p}"),
                (t, _) => format!("-p {t}"),
            };
            let _ = writeln!(
                o,
                "-A FLOWDOC-ALLOW -s {s} -d {d} {l4} -m comment --comment \"{}\" -j ACCEPT",
                comment(&rule.citation(), 200)
            );
        }
    }
    o.push_str("COMMIT\n");
    if !v6.is_empty() {
        o.push_str("# IPv6 openings (for ip6tables-restore, or use the nftables output):\n");
        for l in v6 {
            let _ = writeln!(o, "#   {l}");
        }
    }
    o.push_str(&review(r, "#"));
    o
}

/// ASA and IOS address forms: `host A`, or network and mask (ASA) / wildcard (IOS).
fn cisco_addr(n: &IpNet, wildcard: bool) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        return format!("host {}", n.addr());
    }
    match n {
        IpNet::V4(v) => {
            let mask = if wildcard { v.hostmask() } else { v.netmask() };
            format!("{} {}", v.network(), mask)
        }
        IpNet::V6(v) => v.to_string(),
    }
}

fn cisco_l4(rule: &Rule) -> (String, String) {
    match (rule.transport.as_str(), rule.port) {
        ("tcp", Some(p)) => ("tcp".into(), format!(" eq {p}")),
        ("udp", Some(p)) => ("udp".into(), format!(" eq {p}")),
        (t, _) => (t.to_string(), String::new()),
    }
}

fn asa(r: &ComplianceReport, rules: &[Rule]) -> String {
    let mut o = header(r, "!");
    for rule in rules {
        let _ = writeln!(
            o,
            "access-list FLOWDOC-ALLOW remark {}",
            comment(&rule.citation(), 100)
        );
        let (proto, port) = cisco_l4(rule);
        for (s, d) in rule.pairs() {
            let _ = writeln!(
                o,
                "access-list FLOWDOC-ALLOW extended permit {proto} {} {}{port}",
                cisco_addr(&s, false),
                cisco_addr(&d, false)
            );
        }
    }
    o.push_str(&review(r, "!"));
    o
}

fn ios(r: &ComplianceReport, rules: &[Rule]) -> String {
    let mut o = header(r, "!");
    for (family, name) in [
        (true, "ip access-list extended FLOWDOC-ALLOW"),
        (false, "ipv6 access-list FLOWDOC-ALLOW6"),
    ] {
        let mut body = String::new();
        for rule in rules {
            let (proto, port) = cisco_l4(rule);
            let mut lines = String::new();
            for (s, d) in rule.pairs().into_iter().filter(|(s, _)| v4(s) == family) {
                let _ = writeln!(
                    lines,
                    " permit {proto} {} {}{port}",
                    cisco_addr(&s, true),
                    cisco_addr(&d, true)
                );
            }
            if !lines.is_empty() {
                let _ = writeln!(body, " remark {}", comment(&rule.citation(), 100));
                body.push_str(&lines);
            }
        }
        if !body.is_empty() {
            let _ = writeln!(o, "{name}");
            o.push_str(&body);
        }
    }
    o.push_str(&review(r, "!"));
    o
}

fn csv(r: &ComplianceReport, rules: &[Rule]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "action",
        "transport",
        "sources",
        "destination",
        "port",
        "row_ids",
        "labels",
        "flows",
        "bytes",
    ]);
    let nets = |v: Vec<IpNet>| v.iter().map(IpNet::to_string).collect::<Vec<_>>().join(" ");
    for rule in rules {
        let _ = w.write_record([
            "allow".to_string(),
            rule.transport.clone(),
            nets(rule.source_nets()),
            nets(rule.destination_nets()),
            rule.port.map(|p| p.to_string()).unwrap_or_default(),
            rule.rows
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
                .join(";"),
            rule.rows
                .iter()
                .map(|c| c.label.clone())
                .collect::<Vec<_>>()
                .join(";"),
            rule.flows.to_string(),
            rule.bytes.to_string(),
        ]);
    }
    for u in &r.undocumented {
        let _ = w.write_record([
            "review".to_string(),
            u.transport.clone(),
            u.source.addresses.join(" "),
            u.destination.addresses.join(" "),
            u.port.map(|p| p.to_string()).unwrap_or_default(),
            String::new(),
            format!("undocumented; looks like {}", u.looks_like.join(", ")),
            u.flows.to_string(),
            u.bytes.to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

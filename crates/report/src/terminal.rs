use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell, CellAlignment, Color, ContentArrangement, Table,
};
use flowdoc_catalogue::Catalogue;
use flowdoc_classify::Finding;
use flowdoc_classify::Rows;
use flowdoc_dissect::{link, Addr, Proto};
use flowdoc_inventory::Inventory;
use flowdoc_pipeline::{LabelledFlow, Summary};
use foldhash::fast::FixedState;

use crate::app::{app_name, summary};
use crate::rfc3339;

/// How the terminal report looks.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub color: bool,
    /// Fixed width (tests, pipes); `None` lets comfy-table ask the terminal.
    pub width: Option<u16>,
    /// Most undocumented rows shown (the rest are counted; JSON has them all).
    pub max_undocumented: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            width: Some(120),
            max_undocumented: 50,
        }
    }
}

#[derive(Debug, Default)]
struct Agg {
    flows: u64,
    packets: u64,
    bytes: u64,
    /// Flows per identified protocol ("tls", "opaque", "-"), with the first one's summary; a
    /// few at most, in the order first met (sorted by name when shown).
    apps: Vec<(&'static str, u64, String)>,
}

impl Agg {
    fn add(&mut self, lf: &LabelledFlow) {
        self.flows += 1;
        self.packets += lf.flow.packets();
        self.bytes += lf.flow.bytes();
        let name = app_name(&lf.flow);
        // The names are the same few static strings: the same one is the same pointer, so
        // most flows find theirs without comparing text.
        let same = |a: &&str| std::ptr::eq(*a, name) || *a == name;
        match self.apps.iter_mut().find(|(a, _, _)| same(a)) {
            Some(e) => e.1 += 1,
            None => {
                let ex = lf.flow.identified().map(summary).unwrap_or_default();
                self.apps.push((name, 1, ex));
            }
        }
    }

    /// The apps by name.
    fn apps(&self) -> Vec<&(&'static str, u64, String)> {
        let mut v: Vec<_> = self.apps.iter().collect();
        v.sort_unstable_by_key(|(a, _, _)| *a);
        v
    }

    /// "tls 3, opaque 1": what the payload of the group's flows was.
    fn apps_text(&self) -> String {
        let v: Vec<String> = self
            .apps()
            .into_iter()
            .map(|(a, n, _)| format!("{a} {n}"))
            .collect();
        v.join(", ")
    }

    /// The first identified flow's summary, for groups that need an example.
    fn example(&self) -> String {
        let v: Vec<String> = self
            .apps()
            .into_iter()
            .map(|(a, n, ex)| match (ex.is_empty(), *n) {
                (true, 1) => a.to_string(),
                (true, n) => format!("{a} ({n})"),
                (false, 1) => ex.clone(),
                (false, n) => format!("{ex} ({n})"),
            })
            .collect();
        v.join("; ")
    }
}

/// Documented flows grouped by (transport, port), then by matched rows: the groups of one port
/// (one or two) are found by comparing their rows in place, without a copy of the flow's rows
/// to look them up by.
type PortKey = (Proto, Option<u16>);
/// A documented group: its matched rows, flows and hosts.
type LabelGroup = (Rows, Agg, Hosts);
/// Undocumented flows grouped by (transport, responder port, initiator, responder, transport
/// mismatch). The group is found by the hosts' addresses and holds their names, made once
/// when it is new: a host's name always holds its address, so the groups are those of the
/// names.
type UndocKey = (Proto, Option<u16>, IpAddr, IpAddr, bool);
/// An undocumented group: its flows and the names of its initiator and responder.
type UndocGroup = (Agg, String, String);
/// Findings grouped by (finding, matched rows, transport, port).
type FindingKey = (Finding, Rows, Proto, Option<u16>);

/// The aggregate's maps: every flow is added to one or two groups at the end of input, on the
/// thread that writes, so they hash with foldhash, not std's SipHash, and are put in order
/// only when rendered.
type Map<K, V> = HashMap<K, V, FixedState>;

/// Most distinct undocumented groups held; past it flows are only counted.
const MAX_UNDOC_GROUPS: usize = 100_000;
/// Most distinct hosts remembered per label group.
const MAX_HOSTS: usize = 100_000;

/// The distinct hosts of a label group, at most [`MAX_HOSTS`]. IPv4 addresses are kept in 4
/// bytes, not 16: a group's set (thousands of hosts on a large capture, every flow adding two)
/// then stays in the processor's cache, where at 16 bytes each the sets of a few dozen groups
/// missed it on most flows.
#[derive(Debug, Default)]
struct Hosts {
    v4: HashSet<u32, FixedState>,
    /// Any other address (IPv6), as it is.
    wide: HashSet<Addr, FixedState>,
}

impl Hosts {
    fn insert(&mut self, a: Addr) {
        if self.len() >= MAX_HOSTS {
            return;
        }
        match a {
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, v4 @ ..] => self.v4.insert(u32::from_ne_bytes(v4)),
            _ => self.wide.insert(a),
        };
    }

    fn len(&self) -> usize {
        self.v4.len() + self.wide.len()
    }
}

/// Aggregates labelled flows for the terminal report; memory is bounded by the groups.
#[derive(Debug, Default)]
pub struct TableReport {
    labels: Map<PortKey, Vec<LabelGroup>>,
    undocumented: Map<UndocKey, UndocGroup>,
    undocumented_overflow: Agg,
    findings: Map<FindingKey, (Agg, String)>,
}

fn port_of(lf: &LabelledFlow) -> Option<u16> {
    matches!(lf.flow.key.proto, Proto::Tcp | Proto::Udp)
        .then(|| lf.flow.key.endpoint(lf.class.initiator.other()).port)
}

fn port_text(proto: Proto, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{p}/{}", proto.as_str()),
        None => proto.as_str().to_string(),
    }
}

impl TableReport {
    pub fn new() -> TableReport {
        TableReport::default()
    }

    pub fn add(&mut self, lf: &LabelledFlow) {
        self.add_in(None, lf);
    }

    /// Adds a flow; with an inventory, hosts are shown by name.
    pub fn add_in(&mut self, inv: Option<&Inventory>, lf: &LabelledFlow) {
        let f = &lf.flow;
        let init = f.key.endpoint(lf.class.initiator);
        let resp = f.key.endpoint(lf.class.initiator.other());
        let port = port_of(lf);
        if lf.class.documented() {
            let groups = self.labels.entry((f.key.proto, port)).or_default();
            let rows = &lf.class.matches;
            let i = match groups.iter().position(|g| g.0 == *rows) {
                Some(i) => i,
                None => {
                    groups.push((rows.clone(), Agg::default(), Hosts::default()));
                    groups.len() - 1
                }
            };
            let (_, agg, hosts) = &mut groups[i];
            agg.add(lf);
            hosts.insert(init.addr);
            hosts.insert(resp.addr);
        } else {
            let key = (
                f.key.proto,
                port,
                init.ip(f.key.v6),
                resp.ip(f.key.v6),
                lf.class.findings.contains(&Finding::TransportMismatch),
            );
            if let Some((a, _, _)) = self.undocumented.get_mut(&key) {
                a.add(lf);
            } else if self.undocumented.len() < MAX_UNDOC_GROUPS {
                let names = (crate::host_label(inv, key.2), crate::host_label(inv, key.3));
                let mut a = Agg::default();
                a.add(lf);
                self.undocumented.insert(key, (a, names.0, names.1));
            } else {
                self.undocumented_overflow.add(lf);
            }
        }
        for &fd in &lf.class.findings {
            let e = self
                .findings
                .entry((fd, lf.class.matches.clone(), f.key.proto, port))
                .or_insert_with(|| {
                    let mut ex = format!(
                        "{} -> {} {}",
                        crate::host_label(inv, init.ip(f.key.v6)),
                        crate::host_label(inv, resp.ip(f.key.v6)),
                        port_text(f.key.proto, port)
                    );
                    if let Some(id) = f.identified() {
                        ex.push_str(": ");
                        ex.push_str(&summary(id));
                    }
                    (Agg::default(), ex)
                });
            e.0.add(lf);
        }
    }

    /// The whole report as text.
    pub fn render(&self, cat: &Catalogue, s: &Summary, o: &RenderOptions) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", heading("flowdoc analyze", o));
        for f in &s.files {
            let lts: Vec<String> = f.link_types.iter().map(|&l| link::name(l)).collect();
            let _ = write!(
                out,
                "  {}  {}  {}  {} records",
                f.path.display(),
                f.format.unwrap_or("-"),
                if lts.is_empty() {
                    "-".to_string()
                } else {
                    lts.join(",")
                },
                f.records
            );
            match &f.error {
                Some(e) => {
                    let _ = writeln!(
                        out,
                        "  {}",
                        paint(&format!("INCOMPLETE: {e}"), Color::Red, o)
                    );
                }
                None => out.push('\n'),
            }
        }
        let span = match (s.first_ns, s.last_ns) {
            (Some(a), Some(b)) => {
                format!(
                    "{} .. {} ({:.3} s)",
                    rfc3339(a),
                    rfc3339(b),
                    (b - a) as f64 / 1e9
                )
            }
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  packets {}  in flows {}  skipped {}  |  flows {}: {} documented, {} undocumented  |  {}",
            s.packets,
            s.flow_packets,
            s.skipped_total(),
            s.flows,
            s.documented,
            s.undocumented,
            span
        );
        if !s.skipped.is_empty() {
            let _ = writeln!(out, "  skipped packets: {}", s.skipped_text());
        }
        let t = &s.table;
        if t.evicted + t.ended_idle + t.ended_reused + t.orphan_fragments + s.skipped_blocks > 0 {
            let _ = writeln!(
                out,
                "  flow table: {} evicted (table full), {} ended idle, {} ended on port reuse; {} fragments without their first; {} pcapng blocks skipped",
                t.evicted, t.ended_idle, t.ended_reused, t.orphan_fragments, s.skipped_blocks
            );
        }
        let _ = writeln!(out, "  catalogue: {}", s.catalogue);

        out.push('\n');
        let _ = writeln!(
            out,
            "{}",
            heading("Documented flows (by catalogue label)", o)
        );
        if self.labels.is_empty() {
            out.push_str("  none\n");
        } else {
            let mut tb = table(
                o,
                &[
                    "Table", "Label", "Port", "Protocol", "Payload", "Flows", "Packets", "Bytes",
                    "Hosts",
                ],
            );
            let mut rows: Vec<_> = self
                .labels
                .iter()
                .flat_map(|(key, groups)| groups.iter().map(move |g| (key, g)))
                .collect();
            rows.sort_by_key(|((proto, port), (ids, _, _))| {
                (cat.row(ids[0]).table, ids.clone(), *proto, *port)
            });
            for ((proto, port), (ids, agg, hosts)) in rows {
                let mut tables: Vec<u8> = ids.iter().map(|&r| cat.row(r).table).collect();
                tables.dedup();
                let tables: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
                let labels: Vec<String> = ids
                    .iter()
                    .map(|&r| format!("{} {}", cat.row(r).id, cat.row(r).label))
                    .collect();
                let mut protos: Vec<&str> =
                    ids.iter().map(|&r| cat.row(r).protocol.as_str()).collect();
                protos.dedup();
                tb.add_row(vec![
                    Cell::new(tables.join(", ")),
                    Cell::new(labels.join("\n")),
                    Cell::new(port_text(*proto, *port)),
                    Cell::new(protos.join(", ")),
                    Cell::new(agg.apps_text()),
                    num(agg.flows),
                    num(agg.packets),
                    num(agg.bytes),
                    num(hosts.len() as u64),
                ]);
            }
            let _ = writeln!(out, "{tb}");
        }

        out.push('\n');
        let _ = writeln!(
            out,
            "{}",
            heading("Undocumented flows (the guide does not list them)", o)
        );
        if self.undocumented.is_empty() && self.undocumented_overflow.flows == 0 {
            out.push_str("  none\n");
        } else {
            let mut tb = table(
                o,
                &[
                    "Initiator",
                    "Responder",
                    "Port",
                    "Looks like",
                    "Flows",
                    "Packets",
                    "Bytes",
                    "Note",
                ],
            );
            let mut rows: Vec<_> = self
                .undocumented
                .iter()
                .map(|(&(proto, port, _, _, mismatch), (agg, i, r))| {
                    ((proto, port, i, r, mismatch), agg)
                })
                .collect();
            rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(&b.0)));
            for ((proto, port, i, r, mismatch), agg) in rows.iter().take(o.max_undocumented) {
                tb.add_row(vec![
                    Cell::new(i),
                    Cell::new(r),
                    Cell::new(port_text(*proto, *port)).fg_if(o.color, Color::Yellow),
                    Cell::new(agg.example()),
                    num(agg.flows),
                    num(agg.packets),
                    num(agg.bytes),
                    Cell::new(if *mismatch { "transport-mismatch" } else { "" }),
                ]);
            }
            let _ = writeln!(out, "{tb}");
            let hidden = rows.len().saturating_sub(o.max_undocumented);
            if hidden > 0 || self.undocumented_overflow.flows > 0 {
                let _ = writeln!(
                    out,
                    "  ... {} more rows and {} more flows not shown; --format json lists every flow",
                    hidden, self.undocumented_overflow.flows
                );
            }
        }

        out.push('\n');
        let _ = writeln!(out, "{}", heading("Findings", o));
        if self.findings.is_empty() {
            out.push_str("  none\n");
        } else {
            let mut tb = table(
                o,
                &[
                    "Finding",
                    "Port",
                    "Rows",
                    "Flows",
                    "Example",
                    "Why it matters",
                ],
            );
            let mut findings: Vec<_> = self.findings.iter().collect();
            findings.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for ((fd, ids, proto, port), (agg, ex)) in findings {
                let rows: Vec<String> = ids.iter().map(|&r| cat.row(r).id.clone()).collect();
                tb.add_row(vec![
                    Cell::new(fd.code()).fg_if(o.color, Color::Red),
                    Cell::new(port_text(*proto, *port)),
                    Cell::new(rows.join(", ")),
                    num(agg.flows),
                    Cell::new(ex),
                    Cell::new(fd.explain()),
                ]);
            }
            let _ = writeln!(out, "{tb}");
        }
        out
    }
}

trait CellExt {
    fn fg_if(self, on: bool, c: Color) -> Cell;
}

impl CellExt for Cell {
    fn fg_if(self, on: bool, c: Color) -> Cell {
        if on {
            self.fg(c)
        } else {
            self
        }
    }
}

fn num(n: u64) -> Cell {
    Cell::new(n).set_alignment(CellAlignment::Right)
}

fn table(o: &RenderOptions, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if o.color {
        t.enforce_styling();
        t.set_header(
            header
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
    } else {
        t.force_no_tty();
        t.set_header(header.to_vec());
    }
    if let Some(w) = o.width {
        t.set_width(w);
    }
    t
}

fn paint(s: &str, c: Color, o: &RenderOptions) -> String {
    if !o.color {
        return s.to_string();
    }
    let code = match c {
        Color::Red => 31,
        Color::Yellow => 33,
        _ => 1,
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn heading(s: &str, o: &RenderOptions) -> String {
    if o.color {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use comfy_table::{
    presets::UTF8_FULL_CONDENSED, Attribute, Cell, CellAlignment, Color, ContentArrangement, Table,
};
use flowdoc_catalogue::Catalogue;
use flowdoc_classify::Finding;
use flowdoc_classify::Rows;
use flowdoc_dissect::{link, Addr, Proto};
use flowdoc_inventory::Inventory;
use flowdoc_pipeline::{LabelledFlow, Summary};

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
    /// Flows per identified protocol ("tls", "opaque", "-"), with the first one's summary.
    apps: BTreeMap<&'static str, (u64, String)>,
}

impl Agg {
    fn add(&mut self, lf: &LabelledFlow) {
        self.flows += 1;
        self.packets += lf.flow.packets();
        self.bytes += lf.flow.bytes();
        let e = self
            .apps
            .entry(app_name(&lf.flow))
            .or_insert_with(|| (0, lf.flow.identified().map(summary).unwrap_or_default()));
        e.0 += 1;
    }

    /// "tls 3, opaque 1": what the payload of the group's flows was.
    fn apps_text(&self) -> String {
        let v: Vec<String> = self
            .apps
            .iter()
            .map(|(a, (n, _))| format!("{a} {n}"))
            .collect();
        v.join(", ")
    }

    /// The first identified flow's summary, for groups that need an example.
    fn example(&self) -> String {
        let v: Vec<String> = self
            .apps
            .iter()
            .map(|(a, (n, ex))| match (ex.is_empty(), *n) {
                (true, 1) => a.to_string(),
                (true, n) => format!("{a} ({n})"),
                (false, 1) => ex.clone(),
                (false, n) => format!("{ex} ({n})"),
            })
            .collect();
        v.join("; ")
    }
}

/// Documented flows grouped by (matched rows, transport, port).
type LabelKey = (Rows, Proto, Option<u16>);
/// Undocumented flows grouped by (transport, responder port, initiator, responder).
type UndocKey = (Proto, Option<u16>, String, String, bool);
/// Findings grouped by (finding, matched rows, transport, port).
type FindingKey = (Finding, Rows, Proto, Option<u16>);

/// Most distinct undocumented groups held; past it flows are only counted.
const MAX_UNDOC_GROUPS: usize = 100_000;
/// Most distinct hosts remembered per label group.
const MAX_HOSTS: usize = 100_000;

/// Aggregates labelled flows for the terminal report; memory is bounded by the groups.
#[derive(Debug, Default)]
pub struct TableReport {
    labels: BTreeMap<LabelKey, (Agg, HashSet<Addr>)>,
    undocumented: HashMap<UndocKey, Agg>,
    undocumented_overflow: Agg,
    findings: BTreeMap<FindingKey, (Agg, String)>,
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
            let e = self
                .labels
                .entry((lf.class.matches.clone(), f.key.proto, port))
                .or_default();
            e.0.add(lf);
            for a in [init.addr, resp.addr] {
                if e.1.len() < MAX_HOSTS {
                    e.1.insert(a);
                }
            }
        } else {
            let key = (
                f.key.proto,
                port,
                crate::host_label(inv, init.ip(f.key.v6)),
                crate::host_label(inv, resp.ip(f.key.v6)),
                lf.class.findings.contains(&Finding::TransportMismatch),
            );
            if let Some(a) = self.undocumented.get_mut(&key) {
                a.add(lf);
            } else if self.undocumented.len() < MAX_UNDOC_GROUPS {
                self.undocumented.entry(key).or_default().add(lf);
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
            let mut rows: Vec<_> = self.labels.iter().collect();
            rows.sort_by_key(|((ids, proto, port), _)| {
                (cat.row(ids[0]).table, ids.clone(), *proto, *port)
            });
            for ((ids, proto, port), (agg, hosts)) in rows {
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
            let mut rows: Vec<_> = self.undocumented.iter().collect();
            rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
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
            for ((fd, ids, proto, port), (agg, ex)) in &self.findings {
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

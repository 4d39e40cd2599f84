use std::io::{self, Write};

use flowdoc_catalogue::Transport;
use flowdoc_dissect::Proto;
use flowdoc_flow::{Detail, Side};
use flowdoc_pipeline::LabelledFlow;
use flowdoc_pipeline::Reference;
use serde::{Deserialize, Serialize};

/// One endpoint of a flow record. `port` is null for ICMP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointRecord {
    pub ip: String,
    pub port: Option<u16>,
    /// The inventory's name for the host or network, when an inventory was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One catalogue row that documents the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRecord {
    pub table: u8,
    /// The documented port the flow matched (the responder's, or the fixed source port); null for ICMP.
    pub port: Option<u16>,
    pub transport: String,
    pub protocol: String,
    pub label: String,
    /// The row's stable catalogue id (e.g. "T22.2").
    pub id: String,
}

/// What one side sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideRecord {
    pub packets: u64,
    pub bytes: u64,
    /// Extra IP fragments after each datagram's first.
    pub fragments: u64,
    /// TCP flags seen, e.g. "SYN,ACK,FIN" (empty for other transports).
    pub tcp_flags: String,
}

/// The JSON flow record. Keys up to `findings` are the public contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRecord {
    pub transport: String,
    pub initiator: EndpointRecord,
    pub responder: EndpointRecord,
    pub initiator_rule: String,
    pub packets: u64,
    pub bytes: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub status: String,
    pub matches: Vec<MatchRecord>,
    pub findings: Vec<String>,
    /// The protocol the payload was identified as ("sip", "tls", ...); null when the flow
    /// carried no payload or nothing was recognised.
    pub app: Option<String>,
    /// What the payload said (TLS version, SNI, ALPN, mutual_auth, JA4, XMPP namespace, HTTP
    /// host, SIP method, ...); only the keys seen. Null when `app` is null.
    pub app_detail: Option<Detail>,
    /// Sent by the initiator and by the responder.
    pub from_initiator: SideRecord,
    pub from_responder: SideRecord,
    /// The outermost tunnel the flow was carried in ("gre", "6in4", "ip-in-ip"); the endpoints
    /// are the inner ones.
    pub tunnel: Option<String>,
    pub vlan: Option<u16>,
    /// Why the flow record was closed: end-of-input, idle, port-reused, evicted.
    pub end_reason: String,
}

/// Nanoseconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(ns: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("invalid-timestamp-{ns}"))
}

fn flags(f: u8) -> String {
    const NAMES: [(u8, &str); 8] = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x20, "URG"),
        (0x40, "ECE"),
        (0x80, "CWR"),
    ];
    let v: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join(",")
}

impl FlowRecord {
    /// The record of a flow; with an inventory in `rf`, its endpoints carry their names.
    pub fn new<'a>(rf: impl Into<Reference<'a>>, lf: &LabelledFlow) -> FlowRecord {
        let rf = rf.into();
        let cat = rf.catalogue;
        let f = &lf.flow;
        let c = &lf.class;
        let ports = matches!(f.key.proto, Proto::Tcp | Proto::Udp);
        let ep = |side: Side| {
            let e = f.key.endpoint(side);
            let ip = e.ip(f.key.v6);
            EndpointRecord {
                ip: ip.to_string(),
                port: ports.then_some(e.port),
                name: rf
                    .inventory
                    .and_then(|inv| inv.lookup(ip))
                    .map(|w| w.name.to_string()),
            }
        };
        let init = f.key.endpoint(c.initiator);
        let resp = f.key.endpoint(c.initiator.other());
        let matches = c
            .matches
            .iter()
            .map(|&r| {
                let row = cat.row(r);
                let port = if !ports {
                    None
                } else if row.ports.contains(&resp.port) {
                    Some(resp.port)
                } else {
                    Some(init.port)
                };
                let transport =
                    flowdoc_classify::transport_of(f.key.proto).unwrap_or(Transport::Icmp);
                MatchRecord {
                    table: row.table,
                    port,
                    transport: transport.as_str().to_string(),
                    protocol: row.protocol.clone(),
                    label: row.label.clone(),
                    id: row.id.clone(),
                }
            })
            .collect();
        let side = |s: Side| {
            let d = f.side(s);
            SideRecord {
                packets: d.packets,
                bytes: d.bytes,
                fragments: u64::from(d.fragments),
                tcp_flags: flags(d.tcp_flags),
            }
        };
        FlowRecord {
            transport: f.key.proto.as_str().to_string(),
            initiator: ep(c.initiator),
            responder: ep(c.initiator.other()),
            initiator_rule: c.rule.as_str().to_string(),
            packets: f.packets(),
            bytes: f.bytes(),
            first_seen: rfc3339(f.first_ns),
            last_seen: rfc3339(f.last_ns),
            status: c.status().to_string(),
            matches,
            findings: c.findings.iter().map(|x| x.code().to_string()).collect(),
            app: f.app().map(|a| a.as_str().to_string()),
            app_detail: f
                .identified()
                .filter(|id| id.app.is_some())
                .map(|id| id.detail().clone()),
            from_initiator: side(c.initiator),
            from_responder: side(c.initiator.other()),
            tunnel: f.tunnel.map(|t| t.as_str().to_string()),
            vlan: f.vlan,
            end_reason: f.end.as_str().to_string(),
        }
    }

    /// One line of JSON, newline included, handed to `out` in one write (the serializer's
    /// many small writes go to a local buffer, not through the caller's writer).
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        serde_json::to_writer(&mut line, self)?;
        line.push(b'\n');
        out.write_all(&line)
    }
}

/// The same fields as the JSON record, flat, with a header row.
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
}

impl<W: Write> std::fmt::Debug for CsvWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsvWriter")
    }
}

/// Column names of the CSV output.
pub const CSV_HEADER: [&str; 26] = [
    "transport",
    "initiator_ip",
    "initiator_port",
    "responder_ip",
    "responder_port",
    "initiator_rule",
    "packets",
    "bytes",
    "first_seen",
    "last_seen",
    "status",
    "tables",
    "labels",
    "row_ids",
    "findings",
    "app",
    "app_detail",
    "initiator_packets",
    "initiator_bytes",
    "responder_packets",
    "responder_bytes",
    "tunnel",
    "vlan",
    "end_reason",
    "initiator_name",
    "responder_name",
];

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> io::Result<CsvWriter<W>> {
        let mut inner = csv::Writer::from_writer(out);
        inner.write_record(CSV_HEADER).map_err(io::Error::other)?;
        Ok(CsvWriter { inner })
    }

    pub fn write(&mut self, r: &FlowRecord) -> io::Result<()> {
        let opt = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        let join = |f: &dyn Fn(&MatchRecord) -> String| {
            r.matches.iter().map(f).collect::<Vec<_>>().join(";")
        };
        let row = [
            r.transport.clone(),
            r.initiator.ip.clone(),
            opt(r.initiator.port),
            r.responder.ip.clone(),
            opt(r.responder.port),
            r.initiator_rule.clone(),
            r.packets.to_string(),
            r.bytes.to_string(),
            r.first_seen.clone(),
            r.last_seen.clone(),
            r.status.clone(),
            join(&|m| m.table.to_string()),
            join(&|m| m.label.clone()),
            join(&|m| m.id.clone()),
            r.findings.join(";"),
            r.app.clone().unwrap_or_default(),
            r.app_detail
                .as_ref()
                .and_then(|d| serde_json::to_string(d).ok())
                .unwrap_or_default(),
            r.from_initiator.packets.to_string(),
            r.from_initiator.bytes.to_string(),
            r.from_responder.packets.to_string(),
            r.from_responder.bytes.to_string(),
            r.tunnel.clone().unwrap_or_default(),
            opt(r.vlan),
            r.end_reason.clone(),
            r.initiator.name.clone().unwrap_or_default(),
            r.responder.name.clone().unwrap_or_default(),
        ];
        self.inner.write_record(&row).map_err(io::Error::other)
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.inner
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

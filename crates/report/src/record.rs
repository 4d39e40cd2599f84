use std::borrow::Cow;
use std::cell::Cell;
use std::io::{self, Write};

use flowdoc_catalogue::Transport;
use flowdoc_dissect::Proto;
use flowdoc_flow::{Detail, PackedDetail, Side, Value};
use flowdoc_pipeline::LabelledFlow;
use flowdoc_pipeline::Reference;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// A text field that is mostly one of a few fixed words: those are borrowed, not copied
/// (a record is made per flow); read back from JSON it is owned.
pub type Text = Cow<'static, str>;

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
    pub transport: Text,
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
    pub tcp_flags: Text,
}

/// The JSON flow record. Keys up to `findings` are the public contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRecord {
    pub transport: Text,
    pub initiator: EndpointRecord,
    pub responder: EndpointRecord,
    pub initiator_rule: Text,
    pub packets: u64,
    pub bytes: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub status: Text,
    pub matches: Vec<MatchRecord>,
    pub findings: Vec<Text>,
    /// The protocol the payload was identified as ("sip", "tls", ...); null when the flow
    /// carried no payload or nothing was recognised.
    pub app: Option<Text>,
    /// What the payload said (TLS version, SNI, ALPN, mutual_auth, JA4, XMPP namespace, HTTP
    /// host, SIP method, ...); only the keys seen. Null when `app` is null.
    pub app_detail: Option<Detail<'static>>,
    /// Sent by the initiator and by the responder.
    pub from_initiator: SideRecord,
    pub from_responder: SideRecord,
    /// The outermost tunnel the flow was carried in ("gre", "6in4", "ip-in-ip"); the endpoints
    /// are the inner ones.
    pub tunnel: Option<Text>,
    pub vlan: Option<u16>,
    /// Why the flow record was closed: end-of-input, idle, port-reused, evicted.
    pub end_reason: Text,
}

/// Nanoseconds since the epoch as RFC 3339 in UTC.
pub fn rfc3339(ns: i64) -> String {
    let mut b = Vec::with_capacity(30);
    rfc3339_into(&mut b, ns);
    String::from_utf8(b).unwrap_or_else(|_| rfc3339_general(ns))
}

/// [`rfc3339`] appended to `j`, without a string of its own (it runs twice per flow).
fn rfc3339_into(j: &mut Vec<u8>, ns: i64) {
    if !civil(j, ns) {
        j.extend_from_slice(rfc3339_general(ns).as_bytes());
    }
}

/// "00" to "99".
const PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Years 0 to 9999 without the general formatter: the days-to-date conversion of Howard
/// Hinnant's `civil_from_days`, and the fraction without trailing zeros, as the `time` crate
/// writes it (a test holds the two together). `false`, with nothing written, for other years.
fn civil(j: &mut Vec<u8>, ns: i64) -> bool {
    thread_local! {
        /// The last day written, and its date: flows' times mostly fall on a few days.
        static DAY: Cell<(i64, [u8; 10])> = const { Cell::new((i64::MIN, [0; 10])) };
    }
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let date = match DAY.with(Cell::get) {
        // (`days` is never i64::MIN: it is nanoseconds divided.)
        (last, date) if last == days => date,
        _ => {
            let Some(date) = civil_date(days) else {
                return false;
            };
            DAY.with(|c| c.set((days, date)));
            date
        }
    };
    let mut b = [0u8; 30];
    b[..10].copy_from_slice(&date);
    b[10] = b'T';
    two(&mut b, 11, sod / 3600);
    b[13] = b':';
    two(&mut b, 14, sod / 60 % 60);
    b[16] = b':';
    two(&mut b, 17, sod % 60);
    let mut n = 19;
    if frac > 0 {
        // Nine digits: one, then four pairs.
        let f = frac as usize;
        let mut digits = [b'0'; 9];
        digits[0] = b'0' + (f / 100_000_000) as u8;
        for (k, div) in [1_000_000, 10_000, 100, 1].into_iter().enumerate() {
            digits[1 + 2 * k..3 + 2 * k].copy_from_slice(&PAIRS[f / div % 100]);
        }
        let keep = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        b[n] = b'.';
        b[n + 1..n + 1 + keep].copy_from_slice(&digits[..keep]);
        n += 1 + keep;
    }
    b[n] = b'Z';
    fixed(j, &b, n + 1);
    true
}

/// `v`, 0 to 99, as two digits at `at`.
fn two<const N: usize>(b: &mut [u8; N], at: usize, v: i64) {
    b[at..at + 2].copy_from_slice(&PAIRS[v as usize % 100]);
}

/// "YYYY-MM-DD" of a day since the epoch; `None` outside years 0 to 9999.
fn civil_date(days: i64) -> Option<[u8; 10]> {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut b = [0u8; 10];
    two(&mut b, 0, year / 100);
    two(&mut b, 2, year % 100);
    b[4] = b'-';
    two(&mut b, 5, month);
    b[7] = b'-';
    two(&mut b, 8, day);
    Some(b)
}

fn rfc3339_general(ns: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("invalid-timestamp-{ns}"))
}

/// An address as text.
fn ip_text(ip: std::net::IpAddr) -> String {
    let mut b = Vec::with_capacity(15);
    ip_into(&mut b, ip);
    String::from_utf8(b).unwrap_or_else(|_| ip.to_string())
}

/// Each byte's decimal digits, as the table of its text: the digits, left-aligned, and how
/// many there are.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, o) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + d, b'0' + o], 3)
        } else if i >= 10 {
            ([b'0' + d, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        i += 1;
    }
    t
};

/// [`ip_text`] appended to `j`; IPv4 without the general formatter (it runs twice per flow):
/// the address is put together on the stack from a table of the 256 bytes' digits and
/// appended in one go.
fn ip_into(j: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Four digits' room per byte: each copies all three of its table entry's.
            let mut b = [0u8; 16];
            let mut n = 0;
            for o in v4.octets() {
                let (digits, len) = OCTETS[usize::from(o)];
                b[n..n + 3].copy_from_slice(&digits);
                n += usize::from(len);
                b[n] = b'.';
                n += 1;
            }
            fixed(j, &b, n - 1);
        }
        v6 => {
            let _ = write!(j, "{v6}");
        }
    }
}

/// TCP flags as names, e.g. "SYN,ACK,FIN": each of the 256 sets written once.
fn flags(f: u8) -> &'static str {
    static ALL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| (0..=u8::MAX).map(flag_names).collect());
    all[usize::from(f)].as_str()
}

fn flag_names(f: u8) -> String {
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

/// An address or a time as a record holds it (text) or as a flow has it (a value, written
/// straight into the line without a string of its own).
#[derive(Debug, Clone, Copy)]
enum Shown<'a, T> {
    Text(&'a str),
    Value(T),
}

impl<T: Copy> Shown<'_, T> {
    /// As a string of its own, a value made by `text`.
    fn owned(self, text: fn(T) -> String) -> String {
        match self {
            Shown::Text(t) => t.to_string(),
            Shown::Value(v) => text(v),
        }
    }
}

#[derive(Debug)]
struct EndpointLine<'a> {
    ip: Shown<'a, std::net::IpAddr>,
    port: Option<u16>,
    name: Option<&'a str>,
}

#[derive(Debug)]
struct MatchLine<'a> {
    /// The row's parts escaped once (from [`JsonLines`]); `None`: written field by field.
    fixed: Option<&'a RowJson>,
    table: u8,
    port: Option<u16>,
    transport: &'a str,
    protocol: &'a str,
    label: &'a str,
    id: &'a str,
}

/// A line's matches, each made as it is written (a list of them made first was moved
/// whole, some 400 bytes, on every line).
#[derive(Debug, Clone, Copy)]
enum Matches<'a, 'w> {
    /// A flow's catalogue rows.
    Flow {
        cat: &'a flowdoc_catalogue::Catalogue,
        rows: &'a [flowdoc_catalogue::RowId],
        fixed: Option<&'a [RowJson]>,
        /// The ports of the initiator and the responder (`None`: a transport without ports).
        ports: Option<(u16, u16)>,
        transport: &'w str,
    },
    /// A record's.
    Record(&'a [MatchRecord]),
}

impl Matches<'_, '_> {
    fn len(&self) -> usize {
        match self {
            Matches::Flow { rows, .. } => rows.len(),
            Matches::Record(r) => r.len(),
        }
    }

    fn each(&self) -> impl Iterator<Item = MatchLine<'_>> + '_ {
        (0..self.len()).map(move |i| match *self {
            Matches::Flow {
                cat,
                rows,
                fixed,
                ports,
                transport,
            } => {
                let r = rows[i];
                let row = cat.row(r);
                // The port the row documents: the responder's when it is one of the row's.
                let port = ports.map(|(init, resp)| {
                    if row.ports.contains(&resp) {
                        resp
                    } else {
                        init
                    }
                });
                MatchLine {
                    fixed: fixed.and_then(|f| f.get(usize::from(r))),
                    table: row.table,
                    port,
                    transport,
                    protocol: &row.protocol,
                    label: &row.label,
                    id: &row.id,
                }
            }
            Matches::Record(list) => {
                let m = &list[i];
                MatchLine {
                    fixed: None,
                    table: m.table,
                    port: m.port,
                    transport: &m.transport,
                    protocol: &m.protocol,
                    label: &m.label,
                    id: &m.id,
                }
            }
        })
    }
}

#[derive(Debug)]
struct SideLine<'w> {
    packets: u64,
    bytes: u64,
    fragments: u64,
    tcp_flags: &'w str,
}

/// A flow record's fields, borrowed: from a [`FlowRecord`], or straight from a labelled flow
/// (then the fixed words, `'w`, are `'static`, and an owned record is made without copying
/// them). One derivation of the fields and one JSON writer serve both.
#[derive(Debug)]
struct Line<'a, 'w> {
    transport: &'w str,
    initiator: EndpointLine<'a>,
    responder: EndpointLine<'a>,
    initiator_rule: &'w str,
    packets: u64,
    bytes: u64,
    first_seen: Shown<'a, i64>,
    last_seen: Shown<'a, i64>,
    status: &'w str,
    matches: Matches<'a, 'w>,
    findings: SmallVec<[&'w str; 4]>,
    app: Option<&'w str>,
    /// `None`: no app (`null`). `Some(None)`: an app and nothing beyond its name (`{}`).
    app_detail: Option<Option<Cow<'a, PackedDetail>>>,
    from_initiator: SideLine<'w>,
    from_responder: SideLine<'w>,
    tunnel: Option<&'w str>,
    vlan: Option<u16>,
    end_reason: &'w str,
    /// The words (`'w`) are flowdoc's own names, none with a character JSON escapes: they are
    /// written between quotes as they are. False for a record's, which may hold anything.
    plain_words: bool,
}

impl<'a> Line<'a, 'static> {
    #[inline(always)]
    fn of(
        rf: Reference<'a>,
        lf: &'a LabelledFlow,
        rows: Option<&'a [RowJson]>,
    ) -> Line<'a, 'static> {
        let cat = rf.catalogue;
        let f = &lf.flow;
        let c = &lf.class;
        let ports = matches!(f.key.proto, Proto::Tcp | Proto::Udp);
        let ep = |side: Side| {
            let e = f.key.endpoint(side);
            let ip = e.ip(f.key.v6);
            EndpointLine {
                ip: Shown::Value(ip),
                port: ports.then_some(e.port),
                name: rf.inventory.and_then(|inv| inv.lookup(ip)).map(|w| w.name),
            }
        };
        let init = f.key.endpoint(c.initiator);
        let resp = f.key.endpoint(c.initiator.other());
        let transport = flowdoc_classify::transport_of(f.key.proto).unwrap_or(Transport::Icmp);
        let matches = Matches::Flow {
            cat,
            rows: &c.matches,
            fixed: rows,
            ports: ports.then_some((init.port, resp.port)),
            transport: transport.as_str(),
        };
        let side = |s: Side| {
            let d = f.side(s);
            SideLine {
                packets: d.packets,
                bytes: d.bytes,
                fragments: u64::from(d.fragments),
                tcp_flags: flags(d.tcp_flags),
            }
        };
        Line {
            transport: f.key.proto.as_str(),
            initiator: ep(c.initiator),
            responder: ep(c.initiator.other()),
            initiator_rule: c.rule.as_str(),
            packets: f.packets(),
            bytes: f.bytes(),
            first_seen: Shown::Value(f.first_ns),
            last_seen: Shown::Value(f.last_ns),
            status: c.status(),
            matches,
            findings: c.findings.iter().map(|x| x.code()).collect(),
            app: f.app().map(|a| a.as_str()),
            app_detail: f
                .identified()
                .filter(|id| id.app.is_some())
                .map(|id| id.detail.as_ref().map(Cow::Borrowed)),
            from_initiator: side(c.initiator),
            from_responder: side(c.initiator.other()),
            tunnel: f.tunnel.map(|t| t.as_str()),
            vlan: f.vlan,
            end_reason: f.end.as_str(),
            plain_words: true,
        }
    }

    fn to_record(&self) -> FlowRecord {
        let ep = |e: &EndpointLine<'_>| EndpointRecord {
            ip: e.ip.owned(ip_text),
            port: e.port,
            name: e.name.map(str::to_string),
        };
        let side = |s: &SideLine<'static>| SideRecord {
            packets: s.packets,
            bytes: s.bytes,
            fragments: s.fragments,
            tcp_flags: Cow::Borrowed(s.tcp_flags),
        };
        FlowRecord {
            transport: Cow::Borrowed(self.transport),
            initiator: ep(&self.initiator),
            responder: ep(&self.responder),
            initiator_rule: Cow::Borrowed(self.initiator_rule),
            packets: self.packets,
            bytes: self.bytes,
            first_seen: self.first_seen.owned(rfc3339),
            last_seen: self.last_seen.owned(rfc3339),
            status: Cow::Borrowed(self.status),
            matches: match self.matches {
                Matches::Flow { transport, .. } => self
                    .matches
                    .each()
                    .map(|m| MatchRecord {
                        table: m.table,
                        port: m.port,
                        transport: Cow::Borrowed(transport),
                        protocol: m.protocol.to_string(),
                        label: m.label.to_string(),
                        id: m.id.to_string(),
                    })
                    .collect(),
                Matches::Record(list) => list.to_vec(),
            },
            findings: self.findings.iter().map(|&x| Cow::Borrowed(x)).collect(),
            app: self.app.map(Cow::Borrowed),
            app_detail: self
                .app_detail
                .as_ref()
                .map(|d| d.as_ref().map(|p| p.unpack()).unwrap_or_default()),
            from_initiator: side(&self.from_initiator),
            from_responder: side(&self.from_responder),
            tunnel: self.tunnel.map(Cow::Borrowed),
            vlan: self.vlan,
            end_reason: Cow::Borrowed(self.end_reason),
        }
    }
}

impl<'a> Line<'a, 'a> {
    fn from_record(r: &'a FlowRecord) -> Line<'a, 'a> {
        let ep = |e: &'a EndpointRecord| EndpointLine {
            ip: Shown::Text(&e.ip),
            port: e.port,
            name: e.name.as_deref(),
        };
        let side = |s: &'a SideRecord| SideLine {
            packets: s.packets,
            bytes: s.bytes,
            fragments: s.fragments,
            tcp_flags: &s.tcp_flags,
        };
        Line {
            transport: &r.transport,
            initiator: ep(&r.initiator),
            responder: ep(&r.responder),
            initiator_rule: &r.initiator_rule,
            packets: r.packets,
            bytes: r.bytes,
            first_seen: Shown::Text(&r.first_seen),
            last_seen: Shown::Text(&r.last_seen),
            status: &r.status,
            matches: Matches::Record(&r.matches),
            findings: r.findings.iter().map(|f| &**f).collect(),
            app: r.app.as_deref(),
            app_detail: r.app_detail.as_ref().map(|d| d.pack().map(Cow::Owned)),
            from_initiator: side(&r.from_initiator),
            from_responder: side(&r.from_responder),
            tunnel: r.tunnel.as_deref(),
            vlan: r.vlan,
            end_reason: &r.end_reason,
            plain_words: false,
        }
    }
}

impl Line<'_, '_> {
    /// One line of JSON, byte for byte what serde_json writes for the record (a test holds
    /// the two together). Written by hand because it runs once per flow: a scan of millions
    /// of flows spent most of its time in the generic serializer.
    fn write(&self, j: &mut Vec<u8>) {
        fn opt_num(j: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
            match n {
                Some(n) => num(j, n),
                None => j.extend_from_slice(b"null"),
            }
        }
        /// A value is written by `into` without escaping: addresses and times hold no
        /// character JSON escapes.
        fn shown<T: Copy>(j: &mut Vec<u8>, v: Shown<'_, T>, into: fn(&mut Vec<u8>, T)) {
            match v {
                Shown::Text(t) => text(j, t),
                Shown::Value(x) => {
                    j.push(b'"');
                    into(j, x);
                    j.push(b'"');
                }
            }
        }
        fn endpoint(j: &mut Vec<u8>, e: &EndpointLine<'_>) {
            j.extend_from_slice(b"{\"ip\":");
            shown(j, e.ip, ip_into);
            j.extend_from_slice(b",\"port\":");
            opt_num(j, e.port);
            if let Some(name) = e.name {
                j.extend_from_slice(b",\"name\":");
                text(j, name);
            }
            j.push(b'}');
        }
        fn side(j: &mut Vec<u8>, s: &SideLine<'_>, plain: bool) {
            j.extend_from_slice(b"{\"packets\":");
            num(j, s.packets);
            j.extend_from_slice(b",\"bytes\":");
            num(j, s.bytes);
            j.extend_from_slice(b",\"fragments\":");
            num(j, s.fragments);
            j.extend_from_slice(b",\"tcp_flags\":");
            word(j, s.tcp_flags, plain);
            j.push(b'}');
        }
        j.extend_from_slice(b"{\"transport\":");
        let plain = self.plain_words;
        word(j, self.transport, plain);
        j.extend_from_slice(b",\"initiator\":");
        endpoint(j, &self.initiator);
        j.extend_from_slice(b",\"responder\":");
        endpoint(j, &self.responder);
        j.extend_from_slice(b",\"initiator_rule\":");
        word(j, self.initiator_rule, plain);
        j.extend_from_slice(b",\"packets\":");
        num(j, self.packets);
        j.extend_from_slice(b",\"bytes\":");
        num(j, self.bytes);
        j.extend_from_slice(b",\"first_seen\":");
        shown(j, self.first_seen, rfc3339_into);
        j.extend_from_slice(b",\"last_seen\":");
        shown(j, self.last_seen, rfc3339_into);
        j.extend_from_slice(b",\"status\":");
        word(j, self.status, plain);
        j.extend_from_slice(b",\"matches\":[");
        for (i, m) in self.matches.each().enumerate() {
            if i > 0 {
                j.push(b',');
            }
            match m.fixed {
                Some(row) => j.extend_from_slice(&row.head),
                None => match_head(j, m.table),
            }
            opt_num(j, m.port);
            j.extend_from_slice(b",\"transport\":");
            word(j, m.transport, plain);
            match m.fixed {
                Some(row) => j.extend_from_slice(&row.tail),
                None => match_tail(j, m.protocol, m.label, m.id),
            }
        }
        j.extend_from_slice(b"],\"findings\":[");
        for (i, f) in self.findings.iter().enumerate() {
            if i > 0 {
                j.push(b',');
            }
            word(j, f, plain);
        }
        j.extend_from_slice(b"],\"app\":");
        opt_word(j, self.app, plain);
        j.extend_from_slice(b",\"app_detail\":");
        match &self.app_detail {
            Some(d) => detail_object(j, d.as_deref()),
            None => j.extend_from_slice(b"null"),
        }
        j.extend_from_slice(b",\"from_initiator\":");
        side(j, &self.from_initiator, plain);
        j.extend_from_slice(b",\"from_responder\":");
        side(j, &self.from_responder, plain);
        j.extend_from_slice(b",\"tunnel\":");
        opt_word(j, self.tunnel, plain);
        j.extend_from_slice(b",\"vlan\":");
        opt_num(j, self.vlan);
        j.extend_from_slice(b",\"end_reason\":");
        word(j, self.end_reason, plain);
        j.extend_from_slice(b"}\n");
    }

    /// One CSV row of [`CSV_HEADER`]'s columns, newline included, byte for byte what the csv
    /// crate writes for [`CsvWriter`]'s fields (a test holds the two together): lists joined
    /// with `;`, the detail as its JSON object, a field quoted when it holds a comma, a quote
    /// or a line break. Written into `j` as it goes: a field that needs quotes is quoted in
    /// place, so a row costs no allocation.
    fn write_csv(&self, j: &mut Vec<u8>) {
        /// Writes a field with `put`, then quotes it if it must be.
        fn field(j: &mut Vec<u8>, put: impl FnOnce(&mut Vec<u8>)) {
            let start = j.len();
            put(j);
            csv_quote_from(j, start);
        }
        fn raw(j: &mut Vec<u8>, s: &str) {
            j.extend_from_slice(s.as_bytes());
        }
        /// A text field.
        fn one(j: &mut Vec<u8>, s: &str) {
            field(j, |j| raw(j, s));
        }
        fn shown<T: Copy>(j: &mut Vec<u8>, v: Shown<'_, T>, into: fn(&mut Vec<u8>, T)) {
            match v {
                Shown::Text(t) => one(j, t),
                Shown::Value(x) => into(j, x),
            }
        }
        fn opt_num(j: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
            if let Some(n) = n {
                num(j, n);
            }
        }
        fn opt_text(j: &mut Vec<u8>, s: Option<&str>) {
            one(j, s.unwrap_or_default());
        }
        /// Items joined with `;`, as one field.
        fn joined<'s>(j: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
            field(j, |j| {
                for (i, s) in items.enumerate() {
                    if i > 0 {
                        j.push(b';');
                    }
                    raw(j, s);
                }
            });
        }
        let endpoint = |j: &mut Vec<u8>, e: &EndpointLine<'_>| {
            shown(j, e.ip, ip_into);
            j.push(b',');
            opt_num(j, e.port);
        };
        let side = |j: &mut Vec<u8>, s: &SideLine<'_>| {
            num(j, s.packets);
            j.push(b',');
            num(j, s.bytes);
        };
        one(j, self.transport);
        j.push(b',');
        endpoint(j, &self.initiator);
        j.push(b',');
        endpoint(j, &self.responder);
        j.push(b',');
        one(j, self.initiator_rule);
        j.push(b',');
        num(j, self.packets);
        j.push(b',');
        num(j, self.bytes);
        j.push(b',');
        shown(j, self.first_seen, rfc3339_into);
        j.push(b',');
        shown(j, self.last_seen, rfc3339_into);
        j.push(b',');
        one(j, self.status);
        j.push(b',');
        for (i, m) in self.matches.each().enumerate() {
            if i > 0 {
                j.push(b';');
            }
            num(j, m.table);
        }
        j.push(b',');
        joined(j, self.matches.each().map(|m| m.label));
        j.push(b',');
        joined(j, self.matches.each().map(|m| m.id));
        j.push(b',');
        joined(j, self.findings.iter().copied());
        j.push(b',');
        opt_text(j, self.app);
        j.push(b',');
        if let Some(d) = &self.app_detail {
            field(j, |j| detail_object(j, d.as_deref()));
        }
        j.push(b',');
        side(j, &self.from_initiator);
        j.push(b',');
        side(j, &self.from_responder);
        j.push(b',');
        opt_text(j, self.tunnel);
        j.push(b',');
        opt_num(j, self.vlan);
        j.push(b',');
        one(j, self.end_reason);
        j.push(b',');
        opt_text(j, self.initiator.name);
        j.push(b',');
        opt_text(j, self.responder.name);
        j.push(b'\n');
    }
}

/// The detail as the JSON object serde_json writes for a [`Detail`] (`{}` for none).
fn detail_object(j: &mut Vec<u8>, d: Option<&PackedDetail>) {
    j.push(b'{');
    for (i, (name, v)) in d.iter().flat_map(|p| p.fields()).enumerate() {
        if i > 0 {
            j.push(b',');
        }
        // Field names are the detail's own identifiers.
        word(j, name, true);
        j.push(b':');
        match v {
            Value::Text(s) => text(j, s),
            Value::Flag(b) => j.extend_from_slice(if b { b"true" } else { b"false" }),
            Value::Num(n) => num(j, n),
            Value::Texts(list) => {
                j.push(b'[');
                for (k, s) in list.enumerate() {
                    if k > 0 {
                        j.push(b',');
                    }
                    text(j, s);
                }
                j.push(b']');
            }
        }
    }
    j.push(b'}');
}

/// Quotes the CSV field that starts at `start` and runs to the end of `j` when the csv crate
/// would (it holds a comma, a quote, CR or LF): in place, quotes doubled, from the end back.
fn csv_quote_from(j: &mut Vec<u8>, start: usize) {
    let special = |b: &u8| matches!(b, b',' | b'"' | b'\r' | b'\n');
    if !j[start..].iter().any(special) {
        return;
    }
    let quotes = j[start..].iter().filter(|&&b| b == b'"').count();
    let old = j.len();
    j.resize(old + quotes + 2, 0);
    let mut w = j.len() - 1;
    j[w] = b'"';
    for r in (start..old).rev() {
        let b = j[r];
        w -= 1;
        j[w] = b;
        if b == b'"' {
            w -= 1;
            j[w] = b'"';
        }
    }
    j[start] = b'"';
}

/// One of [`Line`]'s words as a JSON string: as it is between quotes when the words are
/// known to be plain (flowdoc's own names), else escaped.
fn word(j: &mut Vec<u8>, s: &str, plain: bool) {
    if plain {
        debug_assert!(self::plain(s.as_bytes()), "{s:?}");
        quoted(j, s);
    } else {
        text(j, s);
    }
}

fn opt_word(j: &mut Vec<u8>, s: Option<&str>, plain: bool) {
    match s {
        Some(s) => word(j, s, plain),
        None => j.extend_from_slice(b"null"),
    }
}

/// A JSON string, escaped as serde_json escapes it, appended to `j`.
fn text(j: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        quoted(j, s);
    } else {
        // Escapes exactly as serde_json does; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *j, s);
    }
}

/// `s` between quotes, as it is: a string with nothing to escape. A short one (flowdoc's
/// words: "tcp", "SYN,ACK", "end-of-input"; several a line) is put together on the stack and
/// appended by one fixed-size copy, without a call to `memcpy` for a few bytes.
#[inline]
fn quoted(j: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let n = b.len();
    if n > 30 {
        j.reserve(n + 2);
        j.push(b'"');
        j.extend_from_slice(b);
        j.push(b'"');
        return;
    }
    let mut w = [0u8; 32];
    w[0] = b'"';
    copy_short(&mut w[1..], b);
    w[n + 1] = b'"';
    fixed(j, &w, n + 2);
}

/// The first `len` bytes of `b` appended to `j`: all `N` copied (a fixed size, a few vector
/// moves inline), then the vector cut back. For text put together on the stack.
#[inline(always)]
fn fixed<const N: usize>(j: &mut Vec<u8>, b: &[u8; N], len: usize) {
    let end = j.len() + len.min(N);
    j.extend_from_slice(b);
    j.truncate(end);
}

/// `src` (at most 32 bytes) to the start of `dst` by two overlapping copies of a fixed size:
/// what `memcpy` does for short lengths, without the call.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..n].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/// No byte of `b` is one JSON escapes (a control character, `"` or `\`). Eight bytes at a
/// time: the strings here are short (a few words per line, most under 16 bytes), where a
/// byte-by-byte check costs more than the copy.
fn plain(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` below 0x20, or equal to `"` or `\`, sets its high bit in the result
    // (the classic has-zero-byte test; a byte at 0x80 or above never counts, as a
    // borrow into it cannot come from a byte that does not count either).
    let bad = |w: u64| {
        let below = w.wrapping_sub(ONES * 0x20);
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        (below | quote.wrapping_sub(ONES) | slash.wrapping_sub(ONES)) & !w & HIGH
    };
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
    if b.len() < 8 {
        return !b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
    }
    let mut any = 0;
    for c in b.chunks_exact(8) {
        any |= bad(word(c));
    }
    // The last eight bytes again, overlapping the words above: the tail is read in place.
    // (Copied into a padded word first, its read waited for the copy's narrower stores.)
    any |= bad(word(&b[b.len() - 8..]));
    any == 0
}

fn num(j: &mut Vec<u8>, n: impl itoa::Integer) {
    j.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A match's JSON up to its port's value.
fn match_head(j: &mut Vec<u8>, table: u8) {
    j.extend_from_slice(b"{\"table\":");
    num(j, table);
    j.extend_from_slice(b",\"port\":");
}

/// A match's JSON after its transport.
fn match_tail(j: &mut Vec<u8>, protocol: &str, label: &str, id: &str) {
    j.extend_from_slice(b",\"protocol\":");
    text(j, protocol);
    j.extend_from_slice(b",\"label\":");
    text(j, label);
    j.extend_from_slice(b",\"id\":");
    text(j, id);
    j.push(b'}');
}

/// One catalogue row's part of a match in a JSON line, escaped once: the bytes before the
/// port and the bytes after the transport (which are the flow's).
#[derive(Debug)]
struct RowJson {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Writes the JSON lines of labelled flows against one catalogue (and inventory): each
/// row's part of a match (table, protocol, label, id) is escaped once, here, not for every
/// flow. The bytes are [`FlowRecord::json_line_of`]'s (a test holds the two together).
#[derive(Debug)]
pub struct JsonLines<'c> {
    rf: Reference<'c>,
    rows: Vec<RowJson>,
}

impl<'c> JsonLines<'c> {
    pub fn new(rf: impl Into<Reference<'c>>) -> JsonLines<'c> {
        let rf = rf.into();
        let rows = rf
            .catalogue
            .rows()
            .iter()
            .map(|row| {
                let (mut head, mut tail) = (Vec::new(), Vec::new());
                match_head(&mut head, row.table);
                match_tail(&mut tail, &row.protocol, &row.label, &row.id);
                RowJson { head, tail }
            })
            .collect();
        JsonLines { rf, rows }
    }

    /// The JSON line of a labelled flow, appended to `j`.
    pub fn line(&self, lf: &LabelledFlow, j: &mut Vec<u8>) {
        Line::of(self.rf, lf, Some(&self.rows)).write(j);
    }
}

impl FlowRecord {
    /// The record of a flow; with an inventory in `rf`, its endpoints carry their names.
    pub fn new<'a>(rf: impl Into<Reference<'a>>, lf: &LabelledFlow) -> FlowRecord {
        Line::of(rf.into(), lf, None).to_record()
    }

    /// The JSON line of a labelled flow, appended to `j`: the same bytes as
    /// `FlowRecord::new(rf, lf).json_line(j)` without making the record (its strings are
    /// written straight from the flow and the catalogue). For many flows, [`JsonLines`]
    /// makes the same bytes with less work.
    pub fn json_line_of<'a>(rf: impl Into<Reference<'a>>, lf: &LabelledFlow, j: &mut Vec<u8>) {
        Line::of(rf.into(), lf, None).write(j);
    }

    /// The record as one line of JSON, byte for byte what serde_json writes for it (a test
    /// holds the two together), appended to `j`.
    pub fn json_line(&self, j: &mut Vec<u8>) {
        Line::from_record(self).write(j);
    }

    /// The record as one CSV row of [`CSV_HEADER`]'s columns, newline included, appended
    /// to `j`.
    pub fn csv_row(&self, j: &mut Vec<u8>) {
        Line::from_record(self).write_csv(j);
    }

    /// The CSV row of a labelled flow, appended to `j`: the same bytes as
    /// `FlowRecord::new(rf, lf).csv_row(j)` without making the record.
    pub fn csv_row_of<'a>(rf: impl Into<Reference<'a>>, lf: &LabelledFlow, j: &mut Vec<u8>) {
        Line::of(rf.into(), lf, None).write_csv(j);
    }
}

/// The same fields as the JSON record, flat, with a header row. Each row, made by
/// [`FlowRecord::csv_row`] or [`FlowRecord::csv_row_of`] as the csv crate writes it (a test
/// holds the two together), is written in one write.
pub struct CsvWriter<W: Write> {
    inner: W,
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
    pub fn new(mut out: W) -> io::Result<CsvWriter<W>> {
        out.write_all(CSV_HEADER.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        Ok(CsvWriter { inner: out })
    }

    /// Writes a row made by [`FlowRecord::csv_row_of`] or [`FlowRecord::csv_row`].
    pub fn write_row(&mut self, row: &[u8]) -> io::Result<()> {
        self.inner.write_all(row)
    }

    /// The writer, to write a row made in place (after the header).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Flushes and hands back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Plain words, quotes, backslashes, control characters and non-ASCII.
        prop_oneof![
            "[a-z0-9 .:-]{0,12}",
            "[\"\\\\\u{0}-\u{1f}\u{7f}é✓]{0,6}",
            any::<String>()
        ]
    }

    fn endpoint() -> impl Strategy<Value = EndpointRecord> {
        (text(), any::<Option<u16>>(), proptest::option::of(text()))
            .prop_map(|(ip, port, name)| EndpointRecord { ip, port, name })
    }

    fn side() -> impl Strategy<Value = SideRecord> {
        (any::<u64>(), any::<u64>(), any::<u64>(), text()).prop_map(
            |(packets, bytes, fragments, tcp_flags)| SideRecord {
                packets,
                bytes,
                fragments,
                tcp_flags: tcp_flags.into(),
            },
        )
    }

    fn matched() -> impl Strategy<Value = MatchRecord> {
        (
            any::<u8>(),
            any::<Option<u16>>(),
            text(),
            text(),
            text(),
            text(),
        )
            .prop_map(
                |(table, port, transport, protocol, label, id)| MatchRecord {
                    table,
                    port,
                    transport: transport.into(),
                    protocol,
                    label,
                    id,
                },
            )
    }

    /// A detail with a field of each kind (text, list, flag, u16, u8), each maybe set.
    fn detail() -> impl Strategy<Value = Detail<'static>> {
        (
            proptest::option::of(text()),
            proptest::option::of(proptest::collection::vec(text(), 0..3)),
            any::<Option<bool>>(),
            any::<Option<u16>>(),
            any::<Option<u8>>(),
            proptest::option::of(text()),
        )
            .prop_map(
                |(sni, alpn, mutual_auth, http_status, ntp_mode, redis_command)| Detail {
                    sni: sni.map(Into::into),
                    alpn: alpn.map(|v| v.into_iter().map(Into::into).collect()),
                    mutual_auth,
                    http_status,
                    ntp_mode,
                    redis_command: redis_command.map(Into::into),
                    ..Detail::default()
                },
            )
    }

    fn record() -> impl Strategy<Value = FlowRecord> {
        (
            (
                text(),
                endpoint(),
                endpoint(),
                text(),
                any::<u64>(),
                any::<u64>(),
            ),
            (
                text(),
                text(),
                text(),
                proptest::collection::vec(matched(), 0..3),
            ),
            (
                proptest::collection::vec(text(), 0..3),
                proptest::option::of(text()),
                proptest::option::of(detail()),
            ),
            (
                side(),
                side(),
                proptest::option::of(text()),
                any::<Option<u16>>(),
                text(),
            ),
        )
            .prop_map(
                |(
                    (transport, initiator, responder, initiator_rule, packets, bytes),
                    (first_seen, last_seen, status, matches),
                    (findings, app, detail),
                    (from_initiator, from_responder, tunnel, vlan, end_reason),
                )| FlowRecord {
                    transport: transport.into(),
                    initiator,
                    responder,
                    initiator_rule: initiator_rule.into(),
                    packets,
                    bytes,
                    first_seen,
                    last_seen,
                    status: status.into(),
                    matches,
                    findings: findings.into_iter().map(Text::from).collect(),
                    app: app.map(Text::from),
                    app_detail: detail,
                    from_initiator,
                    from_responder,
                    tunnel: tunnel.map(Text::from),
                    vlan,
                    end_reason: end_reason.into(),
                },
            )
    }

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.102.0.1",
            "255.255.255.255",
            "192.0.2.9",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("address");
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn words_of_every_length_are_quoted_whole() {
        // Each length the short copy handles a different way (none, 1-3, 4-7, 8-15, 16-30)
        // and the long path past it, after text already in the line; no byte twice or lost.
        let all: String = ('a'..='z').chain('A'..='Z').collect();
        for n in 0..=40 {
            let w = &all[..n];
            let mut j = b"{\"x\":".to_vec();
            quoted(&mut j, w);
            j.push(b'}');
            assert_eq!(
                String::from_utf8(j).expect("text"),
                format!("{{\"x\":\"{w}\"}}"),
                "{n}"
            );
        }
    }

    #[test]
    fn timestamps_at_the_calendar_edges_are_the_time_crates() {
        // Leap days of a 400-year era's last year and of a century that is not a leap year,
        // the epoch and the instant before it.
        for (secs, frac) in [
            (951_782_400, 0),   // 2000-02-29
            (951_868_800, 10),  // 2000-03-01
            (4_107_456_000, 0), // 2100-02-28
            (4_107_542_400, 0), // 2100-03-01
            (0, 0),
            (-1, 999_999_999),
            (1_714_521_600, 1_000_000),
        ] {
            let ns = secs * 1_000_000_000 + frac;
            for t in [ns - 86_400_000_000_000, ns - 1, ns, ns + 1] {
                assert_eq!(rfc3339(t), rfc3339_general(t), "{t}");
            }
        }
    }

    /// Every byte value at every place of strings of 0 to 24 bytes (three words and a tail):
    /// the word-at-a-time check finds exactly the bytes JSON escapes, whatever is around.
    #[test]
    fn the_escape_check_finds_every_byte_json_escapes() {
        let escaped = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
        for len in 0..=24 {
            for around in [b'a', 0xff, 0x21, 0x80, 0x5b] {
                let mut s = vec![around; len];
                assert_eq!(plain(&s), !escaped(around), "{len} {around}");
                for at in 0..len {
                    for b in 0..=255u8 {
                        s[at] = b;
                        let want = !escaped(b) && !escaped(around);
                        assert_eq!(plain(&s), want, "byte {b:#x} at {at} of {len}");
                    }
                    s[at] = around;
                }
            }
        }
    }

    /// What the csv crate writes for a record's row: the columns of [`CSV_HEADER`], the
    /// mapping `CsvWriter` used before it wrote rows itself.
    fn csv_by_the_crate(r: &FlowRecord) -> String {
        let opt = |p: Option<u16>| p.map(|p| p.to_string()).unwrap_or_default();
        let join = |f: &dyn Fn(&MatchRecord) -> String| {
            r.matches.iter().map(f).collect::<Vec<_>>().join(";")
        };
        let row: [String; 26] = [
            r.transport.to_string(),
            r.initiator.ip.clone(),
            opt(r.initiator.port),
            r.responder.ip.clone(),
            opt(r.responder.port),
            r.initiator_rule.to_string(),
            r.packets.to_string(),
            r.bytes.to_string(),
            r.first_seen.clone(),
            r.last_seen.clone(),
            r.status.to_string(),
            join(&|m| m.table.to_string()),
            join(&|m| m.label.clone()),
            join(&|m| m.id.clone()),
            r.findings.join(";"),
            r.app.as_deref().unwrap_or_default().to_string(),
            r.app_detail
                .as_ref()
                .map(|d| serde_json::to_string(d).expect("serialize"))
                .unwrap_or_default(),
            r.from_initiator.packets.to_string(),
            r.from_initiator.bytes.to_string(),
            r.from_responder.packets.to_string(),
            r.from_responder.bytes.to_string(),
            r.tunnel.as_deref().unwrap_or_default().to_string(),
            opt(r.vlan),
            r.end_reason.to_string(),
            r.initiator.name.clone().unwrap_or_default(),
            r.responder.name.clone().unwrap_or_default(),
        ];
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&row).expect("write");
        String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
    }

    #[test]
    fn csv_fields_with_commas_quotes_and_line_breaks_are_quoted() {
        let mut j = b"a,".to_vec();
        for (field, want) in [
            ("plain", "plain"),
            ("", ""),
            ("x,y", "\"x,y\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("\"", "\"\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
        ] {
            j.truncate(2);
            j.extend_from_slice(field.as_bytes());
            csv_quote_from(&mut j, 2);
            assert_eq!(String::from_utf8_lossy(&j[2..]), want, "{field:?}");
            assert_eq!(&j[..2], b"a,");
        }
    }

    proptest! {
        /// Every IPv4 address comes out as std writes it (the table of bytes' digits).
        #[test]
        fn ipv4_addresses_are_written_as_std_writes_them(a in any::<u32>()) {
            let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::from(a));
            prop_assert_eq!(ip_text(ip), ip.to_string());
        }

        /// Every timestamp (years 1677 to 2262) comes out as the `time` crate writes it.
        #[test]
        fn timestamps_are_the_time_crates(
            ns in any::<i64>(),
            whole in any::<bool>(),
            later in 0i64..200_000_000_000_000,
        ) {
            let ns = if whole { ns / 1_000_000_000 * 1_000_000_000 } else { ns };
            prop_assert_eq!(rfc3339(ns), rfc3339_general(ns));
            // Next, a time up to two days later, often the same day (whose date is kept from
            // one time to the next), then this one again.
            let next = ns.saturating_add(later);
            prop_assert_eq!(rfc3339(next), rfc3339_general(next));
            prop_assert_eq!(rfc3339(ns), rfc3339_general(ns));
        }

        /// The hand-written line is what serde_json writes for the record, whatever its
        /// strings hold.
        #[test]
        fn the_json_line_is_serde_jsons(r in record()) {
            let mut line = Vec::new();
            r.json_line(&mut line);
            let want = serde_json::to_string(&r).expect("serialize") + "\n";
            prop_assert_eq!(String::from_utf8_lossy(&line), want);
        }

        #[test]
        fn the_csv_row_is_the_csv_crates(r in record()) {
            let mut row = Vec::new();
            r.csv_row(&mut row);
            prop_assert_eq!(String::from_utf8_lossy(&row), csv_by_the_crate(&r));
        }
    }
}

//! Flows to catalogue rows.
//!
//! [`classify`] names a flow's initiator (SYN sender; else receiver of the SYN-ACK; else the
//! side whose port is not a documented listener; else the well-known/ephemeral port rule; else
//! the first sender) and matches the responder's port and transport against the catalogue's
//! [`PortIndex`](flowdoc_catalogue::PortIndex) in O(1). Every matching row is kept. A flow
//! with no match is undocumented. Findings are stable codes (see [`Finding`]).
//!
//! ```
//! use flowdoc_catalogue::Catalogue;
//! let cat = Catalogue::embedded();
//! assert_eq!(cat.index().by_listener(flowdoc_catalogue::Transport::Udp, 5060).len(), 1);
//! ```

use flowdoc_catalogue::{App, Catalogue, Expect, RowId, SourcePort, Transport};
use flowdoc_dissect::Proto;
use flowdoc_flow::{Endpoint, Flow, Side, Value};
pub use flowdoc_inventory::Inventory;

/// What flows are judged against: the guide's catalogue and, when the site gave one, its
/// inventory of hosts and roles.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    pub catalogue: &'a Catalogue,
    pub inventory: Option<&'a Inventory>,
}

impl<'a> From<&'a Catalogue> for Reference<'a> {
    fn from(catalogue: &'a Catalogue) -> Reference<'a> {
        Reference {
            catalogue,
            inventory: None,
        }
    }
}

/// Which evidence named the initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiatorRule {
    /// It sent the SYN.
    Syn,
    /// It received the SYN-ACK (the SYN itself was not captured).
    SynAck,
    /// The other side's port is a documented listener and its own is not.
    CataloguePort,
    /// The other side's port is well known (below 1024) or not ephemeral, and its own is.
    WellKnownPort,
    /// Nothing else decided: it sent the first packet seen.
    FirstPacket,
}

impl InitiatorRule {
    pub fn as_str(self) -> &'static str {
        match self {
            InitiatorRule::Syn => "syn",
            InitiatorRule::SynAck => "syn-ack",
            InitiatorRule::CataloguePort => "catalogue-port",
            InitiatorRule::WellKnownPort => "well-known-port",
            InitiatorRule::FirstPacket => "first-packet",
        }
    }
}

/// Something about a flow that a reviewer should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Finding {
    /// A row the guide marks localhost-only matched between non-loopback addresses.
    LocalhostOnlyOnWire,
    /// The port is documented only for the other transport (e.g. DNS over TCP).
    TransportMismatch,
    /// The payload is clearly another protocol than every matched row documents.
    ProtocolMismatch,
    /// The matched rows document TLS and the flow stayed plaintext.
    TlsExpected,
    /// With an inventory: no matched row gives the initiator and responder the roles they hold.
    RoleMismatch,
}

impl Finding {
    pub fn code(self) -> &'static str {
        match self {
            Finding::LocalhostOnlyOnWire => "localhost-only-on-wire",
            Finding::TransportMismatch => "transport-mismatch",
            Finding::ProtocolMismatch => "protocol-mismatch",
            Finding::TlsExpected => "tls-expected",
            Finding::RoleMismatch => "role-mismatch",
        }
    }
    pub fn explain(self) -> &'static str {
        match self {
            Finding::LocalhostOnlyOnWire => {
                "the guide documents this port for localhost traffic only, yet it crossed the network"
            }
            Finding::TransportMismatch => {
                "the guide documents this port for the other transport only; the flow is undocumented"
            }
            Finding::ProtocolMismatch => {
                "the payload is another protocol than the guide documents for this port"
            }
            Finding::TlsExpected => {
                "the guide documents TLS for this port, yet the flow spoke in plaintext"
            }
            Finding::RoleMismatch => {
                "the inventory's roles for these hosts are not the sender and listener the guide names for this port"
            }
        }
    }
}

/// Catalogue rows: a flow matches at most a handful (5 in the shipped guide), held without an
/// allocation.
pub type Rows = smallvec::SmallVec<[RowId; 8]>;

/// A flow's findings: a few at most, held without an allocation.
pub type Findings = smallvec::SmallVec<[Finding; 8]>;

/// The verdict on one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub initiator: Side,
    pub rule: InitiatorRule,
    /// Every catalogue row that documents the flow, in catalogue order.
    pub matches: Rows,
    pub findings: Findings,
}

impl Classification {
    pub fn documented(&self) -> bool {
        !self.matches.is_empty()
    }
    pub fn status(&self) -> &'static str {
        if self.documented() {
            "documented"
        } else {
            "undocumented"
        }
    }
}

/// The catalogue transport of a flow's protocol (ICMPv6 is not in the guide).
pub fn transport_of(p: Proto) -> Option<Transport> {
    match p {
        Proto::Tcp => Some(Transport::Tcp),
        Proto::Udp => Some(Transport::Udp),
        Proto::Icmp => Some(Transport::Icmp),
        Proto::Icmpv6 => None,
    }
}

fn other_transport(t: Transport) -> Option<Transport> {
    match t {
        Transport::Tcp => Some(Transport::Udp),
        Transport::Udp => Some(Transport::Tcp),
        Transport::Icmp => None,
    }
}

/// Ports at or above this are taken as ephemeral (Linux's default range starts at 32768).
const EPHEMERAL_FROM: u16 = 32_768;

/// Names the initiator and matches the flow against the catalogue.
pub fn classify(cat: &Catalogue, flow: &Flow) -> Classification {
    classify_in(Reference::from(cat), flow)
}

/// [`classify`], and with an inventory the role check of every documented flow.
pub fn classify_in(rf: Reference<'_>, flow: &Flow) -> Classification {
    let cat = rf.catalogue;
    let transport = transport_of(flow.key.proto);
    let (initiator, rule) = initiator(cat, flow, transport);
    let mut matches = Rows::new();
    let mut findings = Findings::new();
    let Some(t) = transport else {
        return Classification {
            initiator,
            rule,
            matches,
            findings,
        };
    };
    let init = flow.key.endpoint(initiator);
    let resp = flow.key.endpoint(initiator.other());
    if t == Transport::Icmp {
        matches.extend_from_slice(cat.index().by_listener(t, 0));
    } else {
        rows_for(cat, t, init, resp, &mut matches);
        if matches.is_empty() {
            if let Some(o) = other_transport(t) {
                if documents(cat, o, init, resp) {
                    findings.push(Finding::TransportMismatch);
                }
            }
        }
    }
    matches.sort_unstable();
    matches.dedup();
    let on_wire = !(is_loopback(&init, flow.key.v6) && is_loopback(&resp, flow.key.v6));
    if on_wire && matches.iter().any(|&r| cat.row(r).localhost_only) {
        findings.push(Finding::LocalhostOnlyOnWire);
    }
    payload_findings(cat, flow, &matches, &mut findings);
    if let Some(inv) = rf.inventory {
        let (i, r) = (init.ip(flow.key.v6), resp.ip(flow.key.v6));
        if !matches.is_empty() && !matches.iter().any(|&m| inv.roles_agree(cat.row(m), i, r)) {
            findings.push(Finding::RoleMismatch);
        }
    }
    findings.sort_unstable();
    Classification {
        initiator,
        rule,
        matches,
        findings,
    }
}

/// Expected payloads that flowdoc always recognises from a flow's first bytes (TLS records,
/// SIP/HTTP start lines, XMPP streams, SSH banners, BER messages, DNS headers, JRMI): when
/// they are absent, the payload is something else. NTP, TNS, TDS and IKE are checked by
/// shape only, so an unrecognised payload proves nothing there.
fn unmistakable(e: &Expect) -> bool {
    e.tls
        || matches!(
            e.app,
            Some(
                App::Sip
                    | App::Http
                    | App::Xmpp
                    | App::Ssh
                    | App::Ldap
                    | App::Snmp
                    | App::Dns
                    | App::Mdns
                    | App::Rmi
                    | App::Pgsql
                    | App::Redis
            )
        )
}

/// Protocols that carry no encryption of their own.
fn plaintext(app: App) -> bool {
    !matches!(app, App::Tls | App::Ssh | App::Isakmp | App::Icmp)
}

/// `protocol-mismatch` and `tls-expected`: only when every matched row names a checkable
/// protocol (a proprietary or unnamed row could explain any payload) and the payload was
/// identified (no payload, or an unknown one, proves nothing).
fn payload_findings(cat: &Catalogue, flow: &Flow, matches: &[RowId], out: &mut Findings) {
    if matches.is_empty() {
        return;
    }
    // Only when every matched row says what its payload is.
    if matches.iter().any(|&r| cat.row(r).payload.is_none()) {
        return;
    }
    let expects = || matches.iter().filter_map(|&r| cat.row(r).payload);
    let Some((id, app)) = flow.identified().and_then(|id| Some((id, id.app?))) else {
        // Payload that no recogniser knew, from the flow's first byte on, where every row
        // documents a protocol whose opening is unmistakable: clearly not what the guide says.
        let start_seen = flow.key.proto == Proto::Udp || flow.syn_from.is_some();
        if flow.carried_payload() && start_seen && expects().all(|e| unmistakable(&e)) {
            out.push(Finding::ProtocolMismatch);
        }
        return;
    };
    if app == App::Icmp {
        return;
    }
    // A STARTTLS taken matters only where a row would accept this protocol with it: the
    // flow's detail (a cold cache line by now) is read then, not for every flow.
    let taken = || id.detail.as_ref().and_then(|d| d.get("starttls")) == Some(Value::Text("taken"));
    if expects().any(|e| e.accepts(app, false))
        || (expects().any(|e| e.accepts(app, true)) && taken())
    {
        return;
    }
    if !expects().any(|e| e.app == Some(app)) {
        out.push(Finding::ProtocolMismatch);
    }
    if plaintext(app) && expects().all(|e| e.tls) {
        out.push(Finding::TlsExpected);
    }
}

/// Rows documenting a connection from `init` to `resp`: by listener port (a fixed source port,
/// where the row has one, must match too), and rows that fix only the source port.
fn rows_for(cat: &Catalogue, t: Transport, init: Endpoint, resp: Endpoint, out: &mut Rows) {
    for &r in cat.index().by_listener(t, resp.port) {
        match cat.row(r).source_port {
            SourcePort::Fixed(sp) if sp != init.port => {}
            _ => out.push(r),
        }
    }
    out.extend_from_slice(cat.index().by_fixed_source(t, init.port));
}

/// Whether `rows_for` would find anything, without collecting the rows.
fn documents(cat: &Catalogue, t: Transport, init: Endpoint, resp: Endpoint) -> bool {
    let by_listener = cat
        .index()
        .by_listener(t, resp.port)
        .iter()
        .any(|&r| !matches!(cat.row(r).source_port, SourcePort::Fixed(sp) if sp != init.port));
    by_listener || !cat.index().by_fixed_source(t, init.port).is_empty()
}

fn initiator(cat: &Catalogue, flow: &Flow, t: Option<Transport>) -> (Side, InitiatorRule) {
    if let Some(s) = flow.syn_from {
        return (s, InitiatorRule::Syn);
    }
    if let Some(s) = flow.syn_ack_from {
        return (s.other(), InitiatorRule::SynAck);
    }
    let (a, b) = (flow.key.a, flow.key.b);
    if let Some(t) = t.filter(|t| *t != Transport::Icmp) {
        match (documents(cat, t, a, b), documents(cat, t, b, a)) {
            (true, false) => return (Side::A, InitiatorRule::CataloguePort),
            (false, true) => return (Side::B, InitiatorRule::CataloguePort),
            _ => {}
        }
        let rank = |p: u16| match p {
            0..=1023 => 0,
            1024..EPHEMERAL_FROM => 1,
            _ => 2,
        };
        match rank(a.port).cmp(&rank(b.port)) {
            std::cmp::Ordering::Less => return (Side::B, InitiatorRule::WellKnownPort),
            std::cmp::Ordering::Greater => return (Side::A, InitiatorRule::WellKnownPort),
            std::cmp::Ordering::Equal => {}
        }
    }
    (flow.first_sender, InitiatorRule::FirstPacket)
}

fn is_loopback(e: &Endpoint, v6: bool) -> bool {
    e.ip(v6).is_loopback()
}

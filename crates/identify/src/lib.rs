//! Payload identification: the first bytes of a flow to the protocol they carry.
//!
//! A port number is a claim; the first bytes are the evidence. [`identify`] looks at the first
//! bytes each side of a flow sent (in order, as the flow table reassembled them) and answers
//! with an [`App`] and a [`Detail`] (TLS version, SNI, ALPN, cipher, mutual authentication,
//! JA3/JA4; XMPP namespace and STARTTLS; HTTP host and path; SIP method; ...), or asks for
//! more bytes. It never allocates per byte, never panics on any input, and keeps strings short.
//!
//! The well-kept rusticata parsers do the protocol work where they exist (tls-parser,
//! snmp-parser, ldap-parser, ipsec-parser, ntp-parser) and simple-dns reads DNS; the text
//! protocols (SIP, HTTP, XMPP, SSH, Redis) and the database handshakes (PostgreSQL, Oracle TNS,
//! MS SQL TDS, Java RMI) are recognised here by their fixed openings.
//!
//! It knows nothing of flows, ports documented by the guide or findings.
//!
//! ```
//! use flowdoc_identify::{identify, App, Input, Transport, Verdict};
//! let req = b"OPTIONS sip:imp.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1\r\n\r\n";
//! let input = Input { transport: Transport::Tcp, ports: [40000, 5060], data: [req, b""],
//!     client: 0, segments: 1, last: false, from_start: true };
//! let Verdict::Done(id) = identify(&input) else { panic!() };
//! assert_eq!(id.app, Some(App::Sip));
//! assert_eq!(id.detail().sip_method.as_deref(), Some("OPTIONS"));
//! ```

mod asn1;
mod binary;
mod detail;
mod text;
mod tls;
mod wire;

use serde::{Deserialize, Serialize};

pub use detail::{Detail, PackedDetail, Text, Texts, Value};

/// A protocol flowdoc can recognise from payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Sip,
    Tls,
    Xmpp,
    Http,
    Ldap,
    Snmp,
    Dns,
    Mdns,
    Ntp,
    Isakmp,
    Ssh,
    Pgsql,
    Tns,
    Tds,
    Rmi,
    Redis,
    Icmp,
}

impl App {
    pub const ALL: [App; 17] = [
        App::Sip,
        App::Tls,
        App::Xmpp,
        App::Http,
        App::Ldap,
        App::Snmp,
        App::Dns,
        App::Mdns,
        App::Ntp,
        App::Isakmp,
        App::Ssh,
        App::Pgsql,
        App::Tns,
        App::Tds,
        App::Rmi,
        App::Redis,
        App::Icmp,
    ];

    /// The lower-case name used in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            App::Sip => "sip",
            App::Tls => "tls",
            App::Xmpp => "xmpp",
            App::Http => "http",
            App::Ldap => "ldap",
            App::Snmp => "snmp",
            App::Dns => "dns",
            App::Mdns => "mdns",
            App::Ntp => "ntp",
            App::Isakmp => "isakmp",
            App::Ssh => "ssh",
            App::Pgsql => "pgsql",
            App::Tns => "tns",
            App::Tds => "tds",
            App::Rmi => "rmi",
            App::Redis => "redis",
            App::Icmp => "icmp",
        }
    }

    pub fn from_name(name: &str) -> Option<App> {
        App::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest string kept from a packet.
pub const MAX_TEXT: usize = 200;

/// Bytes from the wire as a short, valid string (lossy UTF-8, cut at [`MAX_TEXT`] chars),
/// borrowed from the bytes when they are one already.
pub(crate) fn text(b: &[u8]) -> Text<'_> {
    let b = &b[..b.len().min(MAX_TEXT * 4)];
    match std::str::from_utf8(b) {
        // No more bytes than MAX_TEXT: no more characters either, nothing to cut.
        Ok(s) if s.len() <= MAX_TEXT => Text::Borrowed(s),
        _ => Text::Owned(String::from_utf8_lossy(b).chars().take(MAX_TEXT).collect()),
    }
}

/// [`text`], owned: for bytes that do not outlive the call (made by it, or joined from
/// several records).
pub(crate) fn text_owned(b: &[u8]) -> Text<'static> {
    Text::Owned(text(b).into_owned())
}

/// The protocol of a flow and what it said. Small: a flow holds one for its whole life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identified {
    pub app: Option<App>,
    /// `None` when nothing beyond the name was seen.
    pub detail: Option<PackedDetail>,
}

impl Identified {
    fn new(app: App, detail: &Detail<'_>) -> Identified {
        Identified {
            app: Some(app),
            detail: detail.pack(),
        }
    }

    /// The detail, empty when none was seen.
    pub fn detail(&self) -> Detail<'static> {
        self.detail
            .as_ref()
            .map(PackedDetail::unpack)
            .unwrap_or_default()
    }
}

/// The flow's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// The first bytes of a flow, per side (index 0 and 1 are the flow's two endpoints).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub transport: Transport,
    /// Port of each side.
    pub ports: [u16; 2],
    /// TCP: each side's first bytes in sequence order. UDP: each side's first datagram.
    pub data: [&'a [u8]; 2],
    /// The side that most likely opened the flow (SYN sender, else first sender).
    pub client: usize,
    /// Payload-carrying packets folded in so far, both sides.
    pub segments: u32,
    /// No more bytes will come: the flow ended or the capture budget is spent.
    pub last: bool,
    /// TCP: every side with bytes holds them from its stream's first byte (its SYN was seen),
    /// so nothing reordered can come before them and "not recognised" is final at once.
    pub from_start: bool,
}

impl Input<'_> {
    /// Side indexes, the client's first: requests are looked for before answers.
    pub(crate) fn sides(&self) -> [usize; 2] {
        [self.client, 1 - self.client]
    }
}

/// The answer for the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Decided: nothing later in the flow changes it.
    Done(Identified),
    /// Not enough bytes yet.
    More,
}

/// What one recogniser says.
#[derive(Debug)]
// A guess lives for one call, on the stack: boxing its detail would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Guess<'a> {
    /// Not this protocol.
    No,
    /// Too few bytes to say.
    Short,
    /// This protocol; `complete` when no later byte would add detail.
    Yes {
        app: App,
        detail: Detail<'a>,
        complete: bool,
    },
}

impl<'a> Guess<'a> {
    pub(crate) fn yes(app: App, detail: Detail<'a>, complete: bool) -> Guess<'a> {
        Guess::Yes {
            app,
            detail,
            complete,
        }
    }
}

type Recogniser = for<'a, 'i> fn(&'i Input<'a>) -> Guess<'a>;

/// Strong openings first; weaker, port-assisted ones (NTP) last.
const TCP: &[Recogniser] = &[
    tls::recognise,
    text::sip,
    text::http,
    text::xmpp,
    text::ssh,
    text::redis,
    binary::pgsql,
    binary::tns,
    binary::tds,
    binary::rmi,
    asn1::ldap,
    wire::dns,
];
const UDP: &[Recogniser] = &[
    text::sip,
    // HTTPU (HTTP over UDP: Exchange notifications, SSDP).
    text::http,
    wire::dns,
    asn1::snmp,
    asn1::ldap,
    wire::isakmp,
    wire::ntp,
];

/// TCP: segments folded in before an unknown flow is given up on (one reordered first segment
/// must not decide it), unless the bytes are known to start their streams.
const TCP_SEGMENTS_BEFORE_UNKNOWN: u32 = 3;

/// The recogniser (an index into `list`) of the protocol registered with IANA for `port`.
fn by_port(list: &[Recogniser], transport: Transport, port: u16) -> Option<usize> {
    let r: Recogniser = match (transport, port) {
        (Transport::Tcp, 443 | 636 | 3269 | 5061 | 5223 | 8443) => tls::recognise,
        (_, 5060) => text::sip,
        (Transport::Tcp, 80 | 8080) => text::http,
        (Transport::Tcp, 5222 | 5269) => text::xmpp,
        (Transport::Tcp, 22) => text::ssh,
        (Transport::Tcp, 6379) => text::redis,
        (Transport::Tcp, 5432) => binary::pgsql,
        (Transport::Tcp, 1521) => binary::tns,
        (Transport::Tcp, 1433) => binary::tds,
        (Transport::Tcp, 1099) => binary::rmi,
        (_, 389 | 3268) => asn1::ldap,
        (_, 53 | 5353) => wire::dns,
        (Transport::Udp, 161 | 162) => asn1::snmp,
        (Transport::Udp, 500 | 4500) => wire::isakmp,
        (Transport::Udp, 123) => wire::ntp,
        _ => return None,
    };
    list.iter().position(|&x| std::ptr::fn_addr_eq(x, r))
}

/// Identifies the protocol from the bytes seen so far.
///
/// The recogniser of a port's registered protocol is asked first: the bytes still decide,
/// the order saves the other recognisers' work on the usual case.
pub fn identify(input: &Input<'_>) -> Verdict {
    let list = match input.transport {
        Transport::Tcp => TCP,
        Transport::Udp => UDP,
    };
    let first = by_port(list, input.transport, input.ports[1 - input.client])
        .or_else(|| by_port(list, input.transport, input.ports[input.client]));
    let order = first
        .into_iter()
        .chain((0..list.len()).filter(|&i| Some(i) != first));
    let mut short = false;
    for i in order {
        // The guess is matched in place: its detail (some 560 bytes) is read where the
        // recogniser left it, not moved out first.
        match &list[i](input) {
            &Guess::Yes {
                app,
                ref detail,
                complete,
            } => {
                if complete || input.last {
                    return Verdict::Done(Identified::new(app, detail));
                }
                return Verdict::More;
            }
            Guess::Short => short = true,
            Guess::No => {}
        }
    }
    let patient = input.transport == Transport::Tcp
        && !input.from_start
        && input.segments < TCP_SEGMENTS_BEFORE_UNKNOWN;
    if !input.last && (short || patient) {
        return Verdict::More;
    }
    Verdict::Done(Identified::default())
}

/// ICMP and ICMPv6 carry their type in the header: identified from the first packet.
pub fn identify_icmp(icmp_type: u8, icmp_code: u8) -> Identified {
    Identified::new(
        App::Icmp,
        &Detail {
            icmp_type: Some(icmp_type),
            icmp_code: Some(icmp_code),
            ..Detail::default()
        },
    )
}

/// The first line of `d` (without CR LF), if it ends within `max` bytes.
pub(crate) fn first_line(d: &[u8], max: usize) -> Option<&[u8]> {
    let pos = find(&d[..d.len().min(max)], b"\r\n")?;
    Some(&d[..pos])
}

/// `needle` in `hay`, exact. The first bytes of a flow are short: a scan for the needle's
/// first byte beats building a substring searcher (memmem's set-up dominates at this size).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    memchr::memchr_iter(first, hay).find(|&i| hay[i + 1..].starts_with(rest))
}

#[cfg(test)]
mod tests;

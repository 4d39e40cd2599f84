//! Captured bytes to the headers a flow needs, or a counted reason to skip the packet.
//!
//! [`dissect`] takes a packet's link type and bytes and walks link layer (Ethernet, Linux
//! cooked SLL and SLL2, raw IP, BSD null/loopback, PPP, NFLOG), any stack of 802.1Q/802.1ad
//! tags, IPv4 or IPv6 with extension headers (etherparse's lax slices, so snaplen-cut packets
//! still give their ports), tunnels (IP-in-IP, 6in4, 4in6, GRE, PPTP's enhanced GRE: the
//! innermost flow is the flow), and TCP, UDP, ICMP or ICMPv6. Everything it returns borrows
//! from the packet: nothing is allocated.
//!
//! It keeps no state: IP fragments come back as [`Dissected::Fragment`] for the flow table to
//! attribute. It knows nothing of flows or of the catalogue.
//!
//! ```
//! use flowdoc_dissect::{dissect, Dissected, link};
//! let frame = [0u8; 10];
//! assert!(matches!(dissect(link::ETHERNET, &frame), Dissected::Skip(_)));
//! ```

mod layers;

pub use layers::{dissect, dissect_common, dissect_into};

/// LINKTYPE_* values flowdoc reads.
pub mod link {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const PPP: u16 = 9;
    pub const RAW_OPENBSD: u16 = 12;
    pub const RAW_BSDOS: u16 = 14;
    pub const PPP_HDLC: u16 = 50;
    pub const PPP_ETHER: u16 = 51;
    pub const RAW: u16 = 101;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const NFLOG: u16 = 239;
    pub const LINUX_SLL2: u16 = 276;

    /// Whether flowdoc reads packets of this link type.
    pub fn is_supported(lt: u16) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | PPP
                | RAW_OPENBSD
                | RAW_BSDOS
                | PPP_HDLC
                | PPP_ETHER
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | NFLOG
                | LINUX_SLL2
        )
    }

    /// A short name for reports.
    pub fn name(lt: u16) -> String {
        match lt {
            NULL => "null/loopback".into(),
            ETHERNET => "ethernet".into(),
            PPP | PPP_HDLC => "ppp".into(),
            PPP_ETHER => "pppoe".into(),
            RAW | RAW_OPENBSD | RAW_BSDOS => "raw-ip".into(),
            LOOP => "openbsd-loop".into(),
            LINUX_SLL => "linux-sll".into(),
            IPV4 => "raw-ipv4".into(),
            IPV6 => "raw-ipv6".into(),
            NFLOG => "nflog".into(),
            LINUX_SLL2 => "linux-sll2".into(),
            other => format!("linktype-{other}"),
        }
    }
}

/// Transport of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmpv6 => "icmpv6",
        }
    }
    pub fn ip_number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
            Proto::Icmpv6 => 58,
        }
    }
}

/// The outermost tunnel a packet came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// IPv4 in IPv4 (protocol 4) or IPv4 in IPv6.
    IpInIp,
    /// IPv6 in IPv4 (protocol 41) or IPv6 in IPv6.
    SixInFour,
    /// GRE (protocol 47), including PPTP's enhanced GRE.
    Gre,
}

impl Tunnel {
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::IpInIp => "ip-in-ip",
            Tunnel::SixInFour => "6in4",
            Tunnel::Gre => "gre",
        }
    }
}

/// An IP address as 16 bytes; IPv4 sits in the last four with `v6 == false` on the packet.
pub type Addr = [u8; 16];

/// An IPv4 address as an [`Addr`], made in a register. Made in memory (an array zeroed, then
/// its last four bytes written) it is two stores, and the 16-byte read that follows (the
/// flow's key, a copy of the packet) cannot be served from them: it waits until they are
/// written back, on every packet.
#[inline]
pub fn ipv4_addr(octets: [u8; 4]) -> Addr {
    // A little-endian number's top four bytes are the array's last four.
    (u128::from(u32::from_le_bytes(octets)) << 96).to_le_bytes()
}

/// The transport-level view of one packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub src: Addr,
    pub dst: Addr,
    pub v6: bool,
    pub proto: Proto,
    /// Ports for TCP/UDP. For ICMP echo both hold the echo identifier; otherwise 0.
    pub sport: u16,
    pub dport: u16,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...); 0 otherwise.
    pub tcp_flags: u8,
    /// TCP sequence number (0 otherwise, or when the header is cut before it).
    pub tcp_seq: u32,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    /// Transport payload, as far as it was captured.
    pub payload: &'a [u8],
    pub tunnel: Option<Tunnel>,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// Set on the first fragment of a fragmented datagram (the one that carries the ports).
    pub first_fragment: Option<FragmentId>,
}

/// Identifies the datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentId {
    pub src: Addr,
    pub dst: Addr,
    pub ip_proto: u8,
    pub id: u32,
}

/// Why a packet gives no flow. Counted, never logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The capture's link type is not one flowdoc reads.
    UnknownLinkType(u16),
    /// Not IP: ARP, spanning tree, LLDP, ...
    NotIp,
    /// IP, but a transport without ports or type: IGMP, ESP, OSPF, VRRP, ...
    OtherTransport(u8),
    /// The capture ends before the transport header's ports (snaplen or a broken frame).
    Truncated,
    /// A header that cannot be right (bad IHL, bad version, bad lengths).
    Malformed,
    /// More VLAN tags or tunnel levels than flowdoc follows.
    TooDeep,
    /// A record with no bytes.
    Empty,
}

impl SkipReason {
    /// A stable code for reports and JSON.
    pub fn code(self) -> String {
        match self {
            SkipReason::UnknownLinkType(lt) => format!("unknown-link-type-{lt}"),
            SkipReason::NotIp => "not-ip".into(),
            SkipReason::OtherTransport(p) => format!("ip-protocol-{p}"),
            SkipReason::Truncated => "truncated".into(),
            SkipReason::Malformed => "malformed".into(),
            SkipReason::TooDeep => "too-deep".into(),
            SkipReason::Empty => "empty".into(),
        }
    }
}

/// What a packet is, from a flow table's point of view.
#[derive(Debug, Clone, Copy)]
pub enum Dissected<'a> {
    Packet(Packet<'a>),
    /// A non-first IP fragment: it carries no ports, only the datagram it belongs to.
    Fragment(FragmentId),
    Skip(SkipReason),
}

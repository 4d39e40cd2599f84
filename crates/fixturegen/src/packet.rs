//! Packet bytes: IP packets and the link headers and tunnels around them.

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;

/// An IPv4 or IPv6 address for the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn built(r: Result<(), etherparse::err::packet::BuildWriteError>) {
    // Every builder input here is made by this crate and fits: a failure is a bug in it.
    if let Err(e) = r {
        panic!("fixturegen built an impossible packet: {e}");
    }
}

fn base(src: Ip, dst: Ip) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    match (src, dst) {
        (Ip::V4(s), Ip::V4(d)) => PacketBuilder::ipv4(s, d, 64),
        (Ip::V6(s), Ip::V6(d)) => PacketBuilder::ipv6(s, d, 64),
        _ => panic!("fixturegen mixed IPv4 and IPv6 in one packet"),
    }
}

/// A TCP segment in an IP packet.
pub fn tcp(
    src: Ip,
    dst: Ip,
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = base(src, dst).tcp(sport, dport, seq, 64_240);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(1);
    }
    if flags & FIN != 0 {
        b = b.fin();
    }
    if flags & RST != 0 {
        b = b.rst();
    }
    if flags & PSH != 0 {
        b = b.psh();
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    built(b.write(&mut out, payload));
    out
}

/// A UDP datagram in an IP packet.
pub fn udp(src: Ip, dst: Ip, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = base(src, dst).udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    built(b.write(&mut out, payload));
    out
}

/// An ICMP (or ICMPv6) echo request or reply.
pub fn echo(src: Ip, dst: Ip, id: u16, seq: u16, reply: bool) -> Vec<u8> {
    let payload = [0x61u8; 32];
    let mut out = Vec::new();
    let b = base(src, dst);
    let r = match (src, reply) {
        (Ip::V4(_), false) => b.icmpv4_echo_request(id, seq).write(&mut out, &payload),
        (Ip::V4(_), true) => b.icmpv4_echo_reply(id, seq).write(&mut out, &payload),
        (Ip::V6(_), false) => b.icmpv6_echo_request(id, seq).write(&mut out, &payload),
        (Ip::V6(_), true) => b.icmpv6_echo_reply(id, seq).write(&mut out, &payload),
    };
    built(r);
    out
}

/// An IP packet carrying `inner` as protocol `proto` (4 IP-in-IP, 41 6in4, 47 GRE).
pub fn ip_carrying(src: Ip, dst: Ip, proto: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    built(base(src, dst).write(&mut out, IpNumber(proto), inner));
    out
}

/// A GRE (version 0, no options) header and payload of the given EtherType.
pub fn gre(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// Splits an IPv4 packet's payload into fragments of `chunk` bytes (a multiple of 8).
pub fn fragment_v4(packet: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    let Ok((h, payload)) = Ipv4Header::from_slice(packet) else {
        panic!("fixturegen: fragment_v4 needs an IPv4 packet");
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut fh = h.clone();
        fh.identification = id;
        fh.more_fragments = end < payload.len();
        fh.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16)
            .unwrap_or(etherparse::IpFragOffset::ZERO);
        if fh.set_payload_len(end - off).is_err() {
            panic!("fixturegen: fragment too large");
        }
        let mut v = Vec::new();
        if fh.write(&mut v).is_err() {
            panic!("fixturegen: cannot write an IPv4 header");
        }
        v.extend_from_slice(&payload[off..end]);
        out.push(v);
        off = end;
    }
    out
}

fn ether_type_of(ip: &[u8]) -> u16 {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    }
}

/// An Ethernet II frame, with 802.1Q tags (outermost first) and 802.1ad for the outer of two.
pub fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut f = vec![
        0x00, 0x1b, 0x54, 0x00, 0x00, 0x02, 0x00, 0x1b, 0x54, 0x00, 0x00, 0x01,
    ];
    for (i, v) in vlans.iter().enumerate() {
        let tpid: u16 = if vlans.len() > 1 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(v & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ether_type_of(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// An Ethernet frame of another EtherType (ARP and the like).
pub fn ethernet_raw(ether_type: u16, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x00, 0x1b, 0x54, 0x00, 0x00, 0x01]);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Linux cooked capture v1 (LINKTYPE_LINUX_SLL).
pub fn sll(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 0x00, 0x1b, 0x54, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ether_type_of(ip).to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2).
pub fn sll2(ip: &[u8]) -> Vec<u8> {
    let mut f = ether_type_of(ip).to_be_bytes().to_vec();
    f.extend_from_slice(&[
        0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0x00, 0x1b, 0x54, 0, 0, 1, 0, 0,
    ]);
    f.extend_from_slice(ip);
    f
}

/// BSD loopback (LINKTYPE_NULL): the address family in little-endian host order.
pub fn null(ip: &[u8]) -> Vec<u8> {
    let fam: u32 = if ether_type_of(ip) == 0x86dd { 24 } else { 2 };
    let mut f = fam.to_le_bytes().to_vec();
    f.extend_from_slice(ip);
    f
}

/// PPP in HDLC-like framing (LINKTYPE_PPP).
pub fn ppp(ip: &[u8]) -> Vec<u8> {
    let proto: u16 = if ether_type_of(ip) == 0x86dd {
        0x0057
    } else {
        0x0021
    };
    let mut f = vec![0xff, 0x03];
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// A small deterministic PRNG (xorshift64*), so generated traffic is the same every run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

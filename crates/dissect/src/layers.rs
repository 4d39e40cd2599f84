//! The walk down the layers. Each step either narrows the slice or says why it stops.

use etherparse::{Ethernet2HeaderSlice, Ipv6ExtensionSlice, LaxIpSlice, SingleVlanHeaderSlice};

use crate::{ipv4_addr, link, Addr, Dissected, FragmentId, Packet, Proto, SkipReason, Tunnel};

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_TEB: u16 = 0x6558;
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Deeper stacks are taken as hostile rather than followed.
const MAX_VLAN_TAGS: usize = 8;
const MAX_TUNNEL_DEPTH: u8 = 4;

type Step<'a, T> = Result<T, SkipReason>;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Dissects one captured packet of the given LINKTYPE.
#[inline]
pub fn dissect(link_type: u16, data: &[u8]) -> Dissected<'_> {
    match dissect_common(link_type, data) {
        Some(p) => Dissected::Packet(p),
        None => by_walk(link_type, data),
    }
}

/// The common frame (Ethernet, IPv4 not fragmented, TCP or UDP) as [`dissect`] reads it, or
/// `None` for anything else, which [`dissect`] then reads by the general walk. For a caller
/// that files a packet's fields somewhere: its packets need not meet the walk's answers in
/// one value (as `dissect_into` says).
#[inline(always)]
pub fn dissect_common(link_type: u16, data: &[u8]) -> Option<Packet<'_>> {
    if link_type == link::ETHERNET {
        ethernet_ipv4(data)
    } else {
        None
    }
}

/// [`dissect`], its answer written into `out`: the common frame's fields go straight into
/// place and the general walk, out of line, writes its own. (Returned, the two answers met
/// in one set of registers spilled to the stack, and were copied into place field by field
/// from there: 40 instructions a packet.)
#[inline]
pub fn dissect_into<'a>(link_type: u16, data: &'a [u8], out: &mut Dissected<'a>) {
    match dissect_common(link_type, data) {
        Some(p) => *out = Dissected::Packet(p),
        None => walk_into(link_type, data, out),
    }
}

#[inline(never)]
fn walk_into<'a>(link_type: u16, data: &'a [u8], out: &mut Dissected<'a>) {
    *out = by_walk(link_type, data);
}

/// Any frame, by the general walk.
fn by_walk(link_type: u16, data: &[u8]) -> Dissected<'_> {
    if data.is_empty() {
        return Dissected::Skip(SkipReason::Empty);
    }
    match walk(link_type, data) {
        Ok(d) => d,
        Err(reason) => Dissected::Skip(reason),
    }
}

fn walk(link_type: u16, data: &[u8]) -> Step<'_, Dissected<'_>> {
    let mut vlan = None;
    let (ether_type, rest) = link_layer(link_type, data)?;
    let (ether_type, rest) = below_ether_type(ether_type, rest, &mut vlan)?;
    let mut d = ip(ether_type, rest, 0, None)?;
    if let Dissected::Packet(p) = &mut d {
        p.vlan = vlan;
    }
    Ok(d)
}

/// Strips the link header: returns the EtherType-like number of what follows.
fn link_layer(link_type: u16, data: &[u8]) -> Step<'_, (u16, &[u8])> {
    let trunc = SkipReason::Truncated;
    match link_type {
        link::ETHERNET => {
            let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| trunc)?;
            Ok((eth.ether_type().0, &data[eth.slice().len()..]))
        }
        link::LINUX_SLL => Ok((be16(data, 14).ok_or(trunc)?, data.get(16..).ok_or(trunc)?)),
        link::LINUX_SLL2 => Ok((be16(data, 0).ok_or(trunc)?, data.get(20..).ok_or(trunc)?)),
        link::RAW | link::RAW_OPENBSD | link::RAW_BSDOS => match data[0] >> 4 {
            4 => Ok((ETH_IPV4, data)),
            6 => Ok((ETH_IPV6, data)),
            _ => Err(SkipReason::Malformed),
        },
        link::IPV4 => Ok((ETH_IPV4, data)),
        link::IPV6 => Ok((ETH_IPV6, data)),
        link::NULL | link::LOOP => {
            let fam = data.get(..4).ok_or(trunc)?;
            let fam = [fam[0], fam[1], fam[2], fam[3]];
            // DLT_NULL is in the capturing host's byte order; DLT_LOOP is big-endian.
            let family = if link_type == link::LOOP || u32::from_le_bytes(fam) > 0xffff {
                u32::from_be_bytes(fam)
            } else {
                u32::from_le_bytes(fam)
            };
            match family {
                2 => Ok((ETH_IPV4, &data[4..])),
                10 | 24 | 28 | 30 => Ok((ETH_IPV6, &data[4..])),
                _ => Err(SkipReason::NotIp),
            }
        }
        link::PPP | link::PPP_HDLC => ppp(data),
        link::PPP_ETHER => pppoe(data),
        link::NFLOG => nflog(data),
        other => Err(SkipReason::UnknownLinkType(other)),
    }
}

/// PPP: optional `ff 03` address/control, then a 1- or 2-byte protocol number.
fn ppp(data: &[u8]) -> Step<'_, (u16, &[u8])> {
    let data = if data.starts_with(&[0xff, 0x03]) {
        &data[2..]
    } else {
        data
    };
    let first = *data.first().ok_or(SkipReason::Truncated)?;
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), &data[1..])
    } else {
        (be16(data, 0).ok_or(SkipReason::Truncated)?, &data[2..])
    };
    match proto {
        0x0021 => Ok((ETH_IPV4, rest)),
        0x0057 => Ok((ETH_IPV6, rest)),
        _ => Err(SkipReason::NotIp),
    }
}

fn pppoe(data: &[u8]) -> Step<'_, (u16, &[u8])> {
    ppp(data.get(6..).ok_or(SkipReason::Truncated)?)
}

/// NFLOG: a 4-byte header, then TLVs (little-endian lengths); type 9 holds the packet.
fn nflog(data: &[u8]) -> Step<'_, (u16, &[u8])> {
    let family = *data.first().ok_or(SkipReason::Truncated)?;
    let mut rest = data.get(4..).ok_or(SkipReason::Truncated)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let kind = u16::from_le_bytes([rest[2], rest[3]]);
        if len < 4 {
            return Err(SkipReason::Malformed);
        }
        let value = rest.get(4..len).ok_or(SkipReason::Truncated)?;
        if kind == 9 {
            return match family {
                2 => Ok((ETH_IPV4, value)),
                10 => Ok((ETH_IPV6, value)),
                _ => Err(SkipReason::NotIp),
            };
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Err(SkipReason::NotIp)
}

/// VLAN tags and PPPoE sessions between the link header and IP.
fn below_ether_type<'a>(
    mut ether_type: u16,
    mut rest: &'a [u8],
    vlan: &mut Option<u16>,
) -> Step<'a, (u16, &'a [u8])> {
    let mut tags = 0;
    while VLAN_TAGS.contains(&ether_type) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(SkipReason::TooDeep);
        }
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| SkipReason::Truncated)?;
        vlan.get_or_insert(tag.vlan_identifier().value());
        ether_type = tag.ether_type().0;
        rest = &rest[4..];
    }
    if ether_type == ETH_PPPOE_SESSION {
        return pppoe(rest);
    }
    Ok((ether_type, rest))
}

fn ip(ether_type: u16, data: &[u8], depth: u8, tunnel: Option<Tunnel>) -> Step<'_, Dissected<'_>> {
    if ether_type != ETH_IPV4 && ether_type != ETH_IPV6 {
        return Err(SkipReason::NotIp);
    }
    if depth > MAX_TUNNEL_DEPTH {
        return Err(SkipReason::TooDeep);
    }
    let (slice, ext_err) = LaxIpSlice::from_slice(data).map_err(|_| {
        if data.len() < 20 {
            SkipReason::Truncated
        } else {
            SkipReason::Malformed
        }
    })?;
    if ext_err.is_some() {
        return Err(SkipReason::Malformed);
    }
    let (src, dst, v6, fragment, payload) = match &slice {
        LaxIpSlice::Ipv4(s) => {
            let h = s.header();
            let p = s.payload();
            let frag = p
                .fragmented
                .then(|| (h.fragments_offset().value(), u32::from(h.identification())));
            (
                ipv4_addr(h.source()),
                ipv4_addr(h.destination()),
                false,
                frag,
                p,
            )
        }
        LaxIpSlice::Ipv6(s) => {
            let h = s.header();
            let p = s.payload();
            let frag = if p.fragmented {
                s.extensions().clone().into_iter().find_map(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) => {
                        Some((f.fragment_offset().value(), f.identification()))
                    }
                    _ => None,
                })
            } else {
                None
            };
            (h.source(), h.destination(), true, frag, p)
        }
    };
    let ip_proto = payload.ip_number.0;
    let body = payload.payload;
    // The capture cut the packet short (snaplen), or the datagram goes on in the next
    // fragment: headers past the end are not an error then.
    let cut = payload.incomplete || fragment.is_some();
    let mut first_fragment = None;
    if let Some((offset, id)) = fragment {
        let fid = FragmentId {
            src,
            dst,
            ip_proto,
            id,
        };
        if offset != 0 {
            return Ok(Dissected::Fragment(fid));
        }
        first_fragment = Some(fid);
    }
    let outer = |t: Tunnel| Some(tunnel.unwrap_or(t));
    let t: Ports<'_> = match ip_proto {
        4 => return ip(ETH_IPV4, body, depth + 1, outer(Tunnel::IpInIp)),
        41 => return ip(ETH_IPV6, body, depth + 1, outer(Tunnel::SixInFour)),
        47 => {
            let (et, inner) = gre(body)?;
            if et == ETH_TEB {
                let eth =
                    Ethernet2HeaderSlice::from_slice(inner).map_err(|_| SkipReason::Truncated)?;
                let mut vlan = None;
                let (et, rest) = below_ether_type(eth.ether_type().0, &inner[14..], &mut vlan)?;
                return ip(et, rest, depth + 1, outer(Tunnel::Gre));
            }
            return ip(et, inner, depth + 1, outer(Tunnel::Gre));
        }
        6 | 17 => transport(ip_proto, body, cut)?,
        1 | 58 => {
            let ty = *body.first().ok_or(SkipReason::Truncated)?;
            let code = body.get(1).copied().unwrap_or(0);
            let echo = if ip_proto == 1 {
                ty == 0 || ty == 8
            } else {
                ty == 128 || ty == 129
            };
            let id = if echo { be16(body, 4).unwrap_or(0) } else { 0 };
            let proto = if ip_proto == 1 {
                Proto::Icmp
            } else {
                Proto::Icmpv6
            };
            (
                proto,
                id,
                id,
                0,
                0,
                Some((ty, code)),
                body.get(8..).unwrap_or(&[]),
            )
        }
        other => return Err(SkipReason::OtherTransport(other)),
    };
    Ok(Dissected::Packet(packet(
        src,
        dst,
        v6,
        t,
        tunnel,
        first_fragment,
    )))
}

/// What TCP or UDP gives a flow: transport, ports, flags, sequence, no ICMP, payload.
type Ports<'a> = (Proto, u16, u16, u8, u32, Option<(u8, u8)>, &'a [u8]);

/// The TCP (6) or UDP (17) header at the start of `body`. `cut`: the datagram is known to go
/// on past the bytes at hand (snaplen or fragmentation), so a header past them is no error.
/// Always inlined: as a call (in `dissect` out of line) its answer went through memory.
#[inline(always)]
fn transport(ip_proto: u8, body: &[u8], cut: bool) -> Step<'_, Ports<'_>> {
    // Both ports in one load, split in registers.
    let ports = body.get(..4).ok_or(SkipReason::Truncated)?;
    let ports = u32::from_be_bytes([ports[0], ports[1], ports[2], ports[3]]);
    let (sport, dport) = ((ports >> 16) as u16, ports as u16);
    // TCP and UDP come mixed, packet after packet: both readings are made and the answer
    // picked by selects, not a branch that would be mispredicted on every change.
    let udp = ip_proto == 17;
    let flags = body.get(13).copied().unwrap_or(0);
    let seq = body
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let hl = body.get(12).map_or(20, |b| usize::from(b >> 4) * 4);
    // (`&` and `|`, not `&&` and `||`: the parts need not each be branched on; the answer is
    // almost always no.)
    if !udp & ((hl < 20) & (body.len() > 12) | (hl > body.len()) & !cut) {
        return Err(SkipReason::Malformed);
    }
    use std::hint::select_unpredictable as pick;
    Ok((
        pick(udp, Proto::Udp, Proto::Tcp),
        sport,
        dport,
        pick(udp, 0, flags),
        pick(udp, 0, seq),
        None,
        body.get(pick(udp, 8, hl)..).unwrap_or(&[]),
    ))
}

/// The packet of a transport header found below these addresses.
#[inline]
fn packet<'a>(
    src: Addr,
    dst: Addr,
    v6: bool,
    (proto, sport, dport, tcp_flags, tcp_seq, icmp, payload): Ports<'a>,
    tunnel: Option<Tunnel>,
    first_fragment: Option<FragmentId>,
) -> Packet<'a> {
    Packet {
        src,
        dst,
        v6,
        proto,
        sport,
        dport,
        tcp_flags,
        tcp_seq,
        icmp,
        payload,
        tunnel,
        vlan: None,
        first_fragment,
    }
}

/// The common case without the general walk: Ethernet, IPv4 not fragmented, TCP or UDP.
/// Everything else (and anything odd about these) is `None`, for the general walk, which
/// gives the same answer for what this takes (a property test holds the two together).
#[inline(always)]
fn ethernet_ipv4(data: &[u8]) -> Option<Packet<'_>> {
    let ip = data.get(14..)?;
    if data[12..14] != [0x08, 0x00] || ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let ip_proto = ip[9];
    // More-fragments flag or an offset: the general walk attributes fragments.
    if ihl < 20
        || ip.len() < ihl
        // (TCP or UDP, by one bit test rather than a branch for each.)
        || !(ip_proto < 32 && (1u32 << 6 | 1u32 << 17) >> ip_proto & 1 != 0)
        || ip[6] & 0x3f != 0
        || ip[7] != 0
    {
        return None;
    }
    // As etherparse's lax slice: a total length shorter than the header is ignored; a longer
    // one than the bytes captured means the capture cut the datagram.
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let (body, cut) = if total < ihl {
        (&ip[ihl..], false)
    } else if total > ip.len() {
        (&ip[ihl..], true)
    } else {
        (&ip[ihl..total], false)
    };
    // A bad transport header is the general walk's to name (rare; and a fast path that
    // answers only packets writes them straight into place).
    let t = transport(ip_proto, body, cut).ok()?;
    // Both addresses in one load: the bounds were checked above (ihl >= 20).
    let mut pair = [0u8; 8];
    pair.copy_from_slice(&ip[12..20]);
    let src = ipv4_addr([pair[0], pair[1], pair[2], pair[3]]);
    let dst = ipv4_addr([pair[4], pair[5], pair[6], pair[7]]);
    Some(packet(src, dst, false, t, None, None))
}

/// GRE (RFC 2784/2890) and PPTP's enhanced GRE (version 1, carrying PPP).
fn gre(b: &[u8]) -> Step<'_, (u16, &[u8])> {
    let flags = be16(b, 0).ok_or(SkipReason::Truncated)?;
    let proto = be16(b, 2).ok_or(SkipReason::Truncated)?;
    let version = flags & 0x7;
    let mut len = 4;
    if flags & 0x8000 != 0 {
        len += 4; // checksum and reserved
    }
    if flags & 0x2000 != 0 {
        len += 4; // key (or PPTP payload length and call id)
    }
    if flags & 0x1000 != 0 {
        len += 4; // sequence number
    }
    if version == 1 && flags & 0x0080 != 0 {
        len += 4; // PPTP acknowledgment number
    }
    let inner = b.get(len..).ok_or(SkipReason::Truncated)?;
    match (version, proto) {
        (0, _) => Ok((proto, inner)),
        (1, 0x880b) => {
            if inner.is_empty() {
                // An acknowledgment-only packet: no payload, no inner flow.
                return Err(SkipReason::OtherTransport(47));
            }
            ppp(inner)
        }
        _ => Err(SkipReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn eth_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 5222, 1, 1000);
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("build");
        out
    }

    fn skip(d: Dissected<'_>) -> Option<SkipReason> {
        match d {
            Dissected::Skip(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn a_plain_tcp_packet_gives_ports_flags_and_payload() {
        let f = eth_tcp(b"hello");
        let Dissected::Packet(p) = dissect(link::ETHERNET, &f) else {
            panic!("not a packet")
        };
        assert_eq!(
            (p.sport, p.dport, p.proto, p.payload),
            (40000, 5222, Proto::Tcp, &b"hello"[..])
        );
    }

    #[test]
    fn an_ipv4_header_with_a_bad_ihl_is_malformed() {
        let mut f = eth_tcp(b"");
        f[14] = 0x43;
        assert_eq!(
            skip(dissect(link::ETHERNET, &f)),
            Some(SkipReason::Malformed)
        );
    }

    #[test]
    fn a_tcp_data_offset_past_the_packet_is_malformed_unless_the_capture_cut_it() {
        let mut f = eth_tcp(b"");
        f[14 + 20 + 12] = 0xf0;
        assert_eq!(
            skip(dissect(link::ETHERNET, &f)),
            Some(SkipReason::Malformed)
        );
        let mut g = eth_tcp(&[0u8; 100]);
        g[14 + 20 + 12] = 0xf0;
        g.truncate(14 + 20 + 30);
        assert!(
            matches!(dissect(link::ETHERNET, &g), Dissected::Packet(_)),
            "snaplen cut"
        );
    }

    #[test]
    fn a_first_fragment_with_half_a_tcp_header_still_gives_its_ports() {
        let mut f = eth_tcp(b"");
        // Keep 16 bytes of the TCP header and mark the datagram as fragmented (MF set).
        f.truncate(14 + 20 + 16);
        f[14 + 2..14 + 4].copy_from_slice(&36u16.to_be_bytes());
        f[14 + 6] = 0x20;
        let Dissected::Packet(p) = dissect(link::ETHERNET, &f) else {
            panic!("not a packet")
        };
        assert_eq!((p.sport, p.dport), (40000, 5222));
        assert!(p.first_fragment.is_some());
    }

    #[test]
    fn twenty_vlan_tags_are_too_deep() {
        let f = eth_tcp(b"");
        let mut g = f[..12].to_vec();
        for _ in 0..20 {
            g.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        }
        g.extend_from_slice(&f[12..]);
        assert_eq!(skip(dissect(link::ETHERNET, &g)), Some(SkipReason::TooDeep));
    }

    #[test]
    fn an_endless_ipv6_extension_chain_is_skipped_not_followed() {
        // 200 destination-options headers, each pointing at the next.
        let n = 200;
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((n * 8) as u16).to_be_bytes());
        ip.push(60);
        ip.push(64);
        ip.extend_from_slice(&[0u8; 32]);
        for _ in 0..n {
            ip.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        let r = skip(dissect(link::RAW, &ip));
        assert!(
            matches!(
                r,
                Some(SkipReason::Malformed | SkipReason::TooDeep | SkipReason::OtherTransport(_))
            ),
            "{r:?}"
        );
    }

    #[test]
    fn an_empty_record_and_an_unknown_link_type_are_counted() {
        assert_eq!(skip(dissect(link::ETHERNET, &[])), Some(SkipReason::Empty));
        assert_eq!(
            skip(dissect(147, &[1, 2, 3])),
            Some(SkipReason::UnknownLinkType(147))
        );
    }

    mod fast_path {
        use super::*;
        use proptest::prelude::*;

        /// The general walk's answer, without the fast path in front of it.
        fn general(data: &[u8]) -> String {
            format!(
                "{:?}",
                walk(link::ETHERNET, data).unwrap_or_else(Dissected::Skip)
            )
        }

        fn frame(tcp: bool, payload: &[u8]) -> Vec<u8> {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
            let mut out = Vec::new();
            if tcp {
                b.tcp(40000, 5061, 7, 1000).syn().write(&mut out, payload)
            } else {
                b.udp(5060, 5060).write(&mut out, payload)
            }
            .expect("build");
            out
        }

        #[test]
        fn the_fast_path_takes_plain_tcp_and_udp() {
            for tcp in [true, false] {
                let f = frame(tcp, b"OPTIONS sip:x SIP/2.0");
                assert!(ethernet_ipv4(&f).is_some());
                assert_eq!(format!("{:?}", dissect(link::ETHERNET, &f)), general(&f));
                // IP total lengths shorter than the header, than the transport header, and
                // longer than the frame (a snaplen cut).
                for total in [0u16, 19, 20, 27, 40, 1500] {
                    let mut g = f.clone();
                    g[16..18].copy_from_slice(&total.to_be_bytes());
                    assert_eq!(
                        format!("{:?}", dissect(link::ETHERNET, &g)),
                        general(&g),
                        "{total}"
                    );
                }
            }
        }

        /// UDP is never read by TCP's rules: payload bytes where TCP keeps its header length
        /// (too short, or past the datagram) leave a plain UDP packet with no flags.
        #[test]
        fn a_udp_payload_is_not_a_tcp_header() {
            for b in [0x00, 0x10, 0xf0] {
                let mut payload = *b"0123456789abcdef";
                // Byte 12 of the transport header is the payload's fifth (after 8 of UDP).
                payload[4] = b;
                let f = frame(false, &payload);
                let Dissected::Packet(p) = dissect(link::ETHERNET, &f) else {
                    panic!("{b:#x}: not a packet")
                };
                assert_eq!(
                    (p.proto, p.tcp_flags, p.tcp_seq, p.payload),
                    (Proto::Udp, 0, 0, &payload[..]),
                    "{b:#x}"
                );
                assert_eq!(format!("{:?}", dissect(link::ETHERNET, &f)), general(&f));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]
            /// Whatever bytes are changed or cut, the fast path answers as the general walk
            /// does, or leaves the packet to it.
            #[test]
            fn the_fast_path_agrees_with_the_general_walk(
                tcp in any::<bool>(),
                payload in proptest::collection::vec(any::<u8>(), 0..64),
                edits in proptest::collection::vec((12usize..60, any::<u8>()), 0..4),
                cut in 0usize..120,
            ) {
                let mut f = frame(tcp, &payload);
                for (at, v) in edits {
                    // The EtherType, IP and transport headers.
                    if let Some(b) = f.get_mut(at) {
                        *b = v;
                    }
                }
                f.truncate(f.len().min(cut.max(1)));
                if let Some(fast) = ethernet_ipv4(&f) {
                    prop_assert_eq!(format!("{:?}", Dissected::Packet(fast)), general(&f));
                }
                // Both entries answer alike, whichever path.
                let mut into = Dissected::Skip(SkipReason::Empty);
                dissect_into(link::ETHERNET, &f, &mut into);
                prop_assert_eq!(format!("{into:?}"), general(&f));
            }
        }
    }
}

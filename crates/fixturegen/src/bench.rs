//! The benchmark capture: many IM and Presence flows with mixed packet sizes, written
//! streaming so that a gigabyte never sits in memory.

use std::io::{self, Write};

use flowdoc_catalogue::{Catalogue, Transport};

use crate::fixtures::{dialogue, Talk};
use crate::packet::{self, Ip, Rng, ACK, PSH, SYN};
use crate::write::{pcap_header, pcap_record, Frame, PcapOptions};

/// Largest payload of one generated packet: longer messages are cut into segments.
const MSS: usize = 1400;

/// Writes `packets` Ethernet packets in `flows` flows (about 480 bytes a packet on average)
/// over the catalogue's documented TCP and UDP ports, with a tenth undocumented. TCP flows
/// open with SYN and SYN-ACK; each flow on a documented port then speaks its row's protocol
/// (the cluster fixture's conversation: TLS handshakes, SIP, XMPP with STARTTLS, LDAP, ...)
/// before filler of mixed sizes in both directions, in sequence order. Undocumented flows and
/// rows with no known payload carry filler only.
pub fn write_capture(
    out: &mut impl Write,
    cat: &Catalogue,
    packets: u64,
    flows: u32,
) -> io::Result<u64> {
    let o = PcapOptions::ethernet();
    out.write_all(&pcap_header(&o))?;
    // (transport, port, the conversation's packets: true when from the client)
    let mut ports: Vec<(Transport, u16, Talk)> = Vec::new();
    for r in cat.rows() {
        for &t in &r.transports {
            if let Some(&p) = r.ports.first() {
                if t != Transport::Icmp {
                    let talk = r.payload.map(|e| dialogue(e, r, t)).unwrap_or_default();
                    let segments = talk
                        .iter()
                        .flat_map(|(c, m)| m.chunks(MSS).map(move |s| (*c, s.to_vec())))
                        .collect();
                    ports.push((t, p, segments));
                }
            }
        }
    }
    let none = Vec::new();
    let mut rng = Rng::new(0x5eed);
    let flows = flows.max(1);
    // 0: not started; 1: the client's SYN sent; 2: the server's SYN-ACK sent.
    let mut stage = vec![0u8; flows as usize];
    // Packets of the flow's conversation sent so far.
    let mut said = vec![0u16; flows as usize];
    // Each side's next sequence number: segments follow one another as in a real capture.
    let mut seq = vec![[2u32, 2u32]; flows as usize];
    let filler = [0x5au8; MSS];
    let mut buf = Vec::with_capacity(1600);
    let mut bytes = 0u64;
    for i in 0..packets {
        let f = rng.below(u64::from(flows)) as u32;
        let (t, sport_srv, talk) = if f % 10 == 9 {
            (Transport::Tcp, 9000 + (f % 100) as u16, &none)
        } else {
            let (t, p, talk) = &ports[f as usize % ports.len()];
            (*t, *p, talk)
        };
        let client = Ip::V4([10, 1 + (f >> 16) as u8, (f >> 8) as u8, f as u8]);
        let server = Ip::V4([10, 200, (f % 7) as u8, 1 + (f % 250) as u8]);
        let cport = 32_768 + (f % 28_000) as u16;
        let size = match rng.below(10) {
            0..=3 => 0,
            4..=6 => 100 + rng.below(100) as usize,
            _ => 1200 + rng.below(200) as usize,
        };
        let mut to_server = rng.below(2) == 0;
        let first = stage[f as usize] == 0;
        let syn_ack = t == Transport::Tcp && stage[f as usize] == 1;
        stage[f as usize] = (stage[f as usize] + 1).min(2);
        // After the handshake, the conversation first.
        let mut payload = &filler[..size];
        let step = said[f as usize] as usize;
        if (t == Transport::Udp || stage[f as usize] == 2 && !syn_ack) && step < talk.len() {
            to_server = talk[step].0 || first;
            payload = &talk[step].1;
            said[f as usize] += 1;
        }
        let side = usize::from(!to_server);
        let s = seq[f as usize][side];
        if t == Transport::Tcp && stage[f as usize] == 2 && !syn_ack {
            seq[f as usize][side] = s.wrapping_add(payload.len() as u32);
        }
        let ip = match t {
            Transport::Udp if to_server || first => {
                packet::udp(client, server, cport, sport_srv, payload)
            }
            Transport::Udp => packet::udp(server, client, sport_srv, cport, payload),
            _ if first => packet::tcp(client, server, cport, sport_srv, SYN, 1, &[]),
            _ if syn_ack => packet::tcp(server, client, sport_srv, cport, SYN | ACK, 1, &[]),
            _ if to_server => packet::tcp(client, server, cport, sport_srv, PSH | ACK, s, payload),
            _ => packet::tcp(server, client, sport_srv, cport, PSH | ACK, s, payload),
        };
        buf.clear();
        let frame = Frame::new(
            crate::fixtures::EPOCH_NS + i as i64 * 10_000,
            packet::ethernet(&ip, &[]),
        );
        pcap_record(&mut buf, &o, &frame);
        bytes += buf.len() as u64;
        out.write_all(&buf)?;
    }
    Ok(bytes)
}

/// A SYN scan: `flows` SYNs, each from its own source address and port to one server, so
/// every packet is a new flow (the flood that a bounded flow table must survive).
pub fn write_syn_scan(out: &mut impl Write, flows: u32) -> io::Result<u64> {
    let o = PcapOptions::ethernet();
    out.write_all(&pcap_header(&o))?;
    let server = Ip::V4([10, 200, 0, 1]);
    let mut buf = Vec::with_capacity(128);
    let mut bytes = 24u64;
    for i in 0..flows {
        let client = Ip::V4([11, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let ip = packet::tcp(
            client,
            server,
            1024 + (i % 60_000) as u16,
            5222,
            SYN,
            i,
            &[],
        );
        buf.clear();
        let frame = Frame::new(
            crate::fixtures::EPOCH_NS + i64::from(i) * 1_000,
            packet::ethernet(&ip, &[]),
        );
        pcap_record(&mut buf, &o, &frame);
        bytes += buf.len() as u64;
        out.write_all(&buf)?;
    }
    Ok(bytes)
}

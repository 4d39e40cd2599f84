//! Fixed-layout UDP protocols: DNS and mDNS (simple-dns), NTP (ntp-parser for v3/v4; the
//! older versions and mode 6 control by their header), ISAKMP/IKE (ipsec-parser's header).

use ipsec_parser::parse_ikev2_header;
use ntp_parser::{parse_ntp, NtpPacket};
use simple_dns::Packet;

use crate::{text_owned, App, Detail, Guess, Input, Text, Transport};

const MDNS_PORT: u16 = 5353;
const NTP_PORT: u16 = 123;
const NAT_T_PORT: u16 = 4500;

/// One DNS message, if `d` holds one that makes sense (a question, sane counts). On port 53,
/// a message cut inside its question (by the snaplen or a short IP packet) still counts when
/// what is there is well formed.
fn dns_message(d: &[u8], port_53: bool) -> Option<Detail<'static>> {
    if d.len() < 12 {
        return None;
    }
    let qd = u16::from_be_bytes([d[4], d[5]]);
    let an = u16::from_be_bytes([d[6], d[7]]);
    let opcode = (d[2] >> 3) & 0x0f;
    if qd > 16 || !matches!(opcode, 0 | 2 | 4 | 5) || (qd == 0 && an == 0) {
        return None;
    }
    let mut detail = Detail::default();
    match Packet::parse(d) {
        Ok(p) => {
            if let Some(q) = p.questions.first() {
                detail.dns_qname = Some(text_owned(q.qname.to_string().as_bytes()));
                detail.dns_qtype = Some(u16::from(q.qtype));
            }
        }
        // simple-dns reads every record and refuses the whole message over one it does not
        // know (DNSSEC, odd EDNS, a message cut by the capture): a well-formed header and
        // question are enough to say DNS.
        Err(_) => match question(d) {
            Question::Whole(name, qtype) => {
                detail.dns_qname = Some(name);
                detail.dns_qtype = Some(qtype);
            }
            Question::Cut(name) if port_53 => {
                detail.dns_qname = Some(name);
            }
            _ => return None,
        },
    }
    Some(detail)
}

enum Question {
    Whole(Text<'static>, u16),
    /// Well formed as far as it goes, then the bytes end.
    Cut(Text<'static>),
    Bad,
}

/// The first question of a DNS message: its name (labels checked) and type.
fn question(d: &[u8]) -> Question {
    if u16::from_be_bytes([d[4], d[5]]) == 0 {
        return Question::Bad;
    }
    let mut i = 12;
    let mut name = String::new();
    let cut = |name: &str| Question::Cut(text_owned(name.as_bytes()));
    loop {
        let Some(&len) = d.get(i) else {
            return cut(&name);
        };
        let len = usize::from(len);
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 || name.len() + len > 253 {
            return Question::Bad;
        }
        let label = &d[(i + 1).min(d.len())..(i + 1 + len).min(d.len())];
        if !label
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'*'))
        {
            return Question::Bad;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        if label.len() < len {
            return cut(&name);
        }
        i += 1 + len;
    }
    if d.len() < i + 4 {
        return cut(&name);
    }
    let qtype = u16::from_be_bytes([d[i], d[i + 1]]);
    let qclass = u16::from_be_bytes([d[i + 2], d[i + 3]]) & 0x7fff;
    if !matches!(qclass, 1 | 3 | 4 | 254 | 255) || qtype == 0 {
        return Question::Bad;
    }
    Question::Whole(text_owned(name.as_bytes()), qtype)
}

pub(crate) fn dns<'a>(input: &Input<'a>) -> Guess<'a> {
    let app = if input.ports.contains(&MDNS_PORT) {
        App::Mdns
    } else {
        App::Dns
    };
    for side in input.sides() {
        let d = input.data[side];
        let msg = match input.transport {
            Transport::Udp => d,
            Transport::Tcp => {
                // Two-byte length, then the message.
                if d.len() < 14 {
                    continue;
                }
                let len = usize::from(u16::from_be_bytes([d[0], d[1]]));
                if len < 12 || d.len() < 2 + len {
                    continue;
                }
                &d[2..2 + len]
            }
        };
        if let Some(detail) = dns_message(msg, input.ports.contains(&53)) {
            return Guess::yes(app, detail, true);
        }
    }
    Guess::No
}

pub(crate) fn ntp<'a>(input: &Input<'a>) -> Guess<'a> {
    // NTP's header has no magic: only on its port, and only when the header is consistent.
    if !input.ports.contains(&NTP_PORT) {
        return Guess::No;
    }
    for side in input.sides() {
        let d = input.data[side];
        if d.len() < 12 {
            continue;
        }
        let version = (d[0] >> 3) & 7;
        let mode = d[0] & 7;
        if !(1..=4).contains(&version) {
            continue;
        }
        let ok = match mode {
            // Control (ntpq): 12-byte header, count of data octets.
            6 => {
                let count = usize::from(u16::from_be_bytes([d[10], d[11]]));
                d[1] & 0x1f != 0 && 12 + count <= d.len() && count <= 468
            }
            // Private (ntpdc): implementation, request code.
            7 => d.len() >= 8,
            1..=5 if d.len() >= 48 && d[1] <= 16 => match version {
                3 | 4 => match parse_ntp(d) {
                    Ok((_, NtpPacket::V3(p))) => p.mode.0 == mode,
                    Ok((_, NtpPacket::V4(p))) => p.mode.0 == mode,
                    Err(_) => false,
                },
                _ => true,
            },
            _ => false,
        };
        if ok {
            let detail = Detail {
                ntp_version: Some(version),
                ntp_mode: Some(mode),
                ..Detail::default()
            };
            return Guess::yes(App::Ntp, detail, true);
        }
    }
    Guess::No
}

fn ike_exchange(version: u8, t: u8) -> Text<'static> {
    let name = match (version, t) {
        (1, 2) => "identity-protection",
        (1, 4) => "aggressive",
        (1, 5) => "informational",
        (1, 32) => "quick-mode",
        (1, 33) => "new-group",
        (2, 34) => "ike-sa-init",
        (2, 35) => "ike-auth",
        (2, 36) => "create-child-sa",
        (2, 37) => "informational",
        _ => return Text::Owned(t.to_string()),
    };
    Text::Borrowed(name)
}

pub(crate) fn isakmp<'a>(input: &Input<'a>) -> Guess<'a> {
    let nat_t = input.ports.contains(&NAT_T_PORT);
    for side in input.sides() {
        let mut d = input.data[side];
        if nat_t && d.len() >= 4 {
            if d[..4] == [0, 0, 0, 0] {
                // RFC 3948: the non-ESP marker precedes IKE.
                d = &d[4..];
            } else if d.len() >= 16 {
                // UDP-encapsulated ESP: SPI (non-zero), sequence number, payload.
                let detail = Detail {
                    esp_in_udp: Some(true),
                    ..Detail::default()
                };
                return Guess::yes(App::Isakmp, detail, true);
            }
        }
        let Ok((_, h)) = parse_ikev2_header(d) else {
            continue;
        };
        let version = h.maj_ver;
        if h.init_spi == 0 || !(1..=2).contains(&version) || h.length as usize != d.len() {
            continue;
        }
        let detail = Detail {
            ike_version: Some(version),
            ike_exchange: Some(ike_exchange(version, h.exch_type.0)),
            ..Detail::default()
        };
        return Guess::yes(App::Isakmp, detail, true);
    }
    Guess::No
}

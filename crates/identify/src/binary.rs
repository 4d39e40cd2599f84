//! Binary handshakes of database and RPC protocols, recognised by their fixed openings:
//! PostgreSQL (StartupMessage, SSLRequest), Oracle TNS (Connect), MS SQL TDS (PreLogin,
//! Login7), Java RMI (JRMP "JRMI" magic).

use crate::{find, App, Detail, Guess, Input};

/// The detail of these protocols: the kind of their first message.
fn opening(kind: &'static str) -> Detail<'static> {
    Detail {
        db_message: Some(kind.into()),
        ..Detail::default()
    }
}

fn be32(d: &[u8]) -> u32 {
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

const PG_SSL_REQUEST: u32 = 80_877_103;
const PG_GSSENC_REQUEST: u32 = 80_877_104;
const PG_CANCEL: u32 = 80_877_102;
const PG_PROTOCOL_3: u32 = 0x0003_0000;

pub(crate) fn pgsql<'a>(input: &Input<'a>) -> Guess<'a> {
    let c = input.data[input.client];
    let s = input.data[1 - input.client];
    for (d, other) in [(c, s), (s, c)] {
        if d.len() < 8 {
            continue;
        }
        let len = be32(d) as usize;
        let code = be32(&d[4..]);
        let (kind, ok) = match code {
            PG_SSL_REQUEST => ("ssl-request", len == 8),
            PG_GSSENC_REQUEST => ("gssenc-request", len == 8),
            PG_CANCEL => ("cancel", len == 16),
            PG_PROTOCOL_3 => (
                "startup",
                (9..=10_000).contains(&len) && (d.len() < len || d[len - 1] == 0),
            ),
            _ => ("", false),
        };
        if !ok {
            continue;
        }
        let mut detail = opening(kind);
        let mut complete = true;
        if code == PG_SSL_REQUEST {
            // The server answers one byte: S (TLS follows) or N.
            match other.first() {
                Some(b'S') => detail.starttls = Some("taken".into()),
                Some(b'N') => detail.starttls = Some("refused".into()),
                _ => {
                    detail.starttls = Some("offered".into());
                    complete = false;
                }
            }
        }
        return Guess::yes(App::Pgsql, detail, complete);
    }
    if c.len() < 8 && !c.is_empty() && c[0] == 0 {
        Guess::Short
    } else {
        Guess::No
    }
}

/// TNS packet types.
fn tns_type(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "connect",
        2 => "accept",
        3 => "ack",
        4 => "refuse",
        5 => "redirect",
        6 => "data",
        11 => "resend",
        12 => "marker",
        _ => return None,
    })
}

pub(crate) fn tns<'a>(input: &Input<'a>) -> Guess<'a> {
    for side in input.sides() {
        let d = input.data[side];
        if d.len() < 8 {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([d[0], d[1]]));
        let Some(kind) = tns_type(d[4]) else { continue };
        // The connect (client) or accept (server) carries the TNS version, 300 and up.
        let version = if d.len() >= 10 {
            u16::from_be_bytes([d[8], d[9]])
        } else {
            0
        };
        let strong = match d[4] {
            1 => {
                len >= 34
                    && (300..=400).contains(&version)
                    && (find(d, b"(DESCRIPTION").is_some()
                        || find(d, b"(CONNECT_DATA").is_some()
                        || d.len() < len)
            }
            2 => len >= 24 && (300..=400).contains(&version),
            _ => false,
        };
        if strong && len >= 8 {
            return Guess::yes(App::Tns, opening(kind), true);
        }
    }
    Guess::No
}

fn tds_type(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 => "sql-batch",
        0x02 => "pre-tds7-login",
        0x03 => "rpc",
        0x04 => "response",
        0x0e => "transaction-manager",
        0x10 => "login7",
        0x11 => "sspi",
        0x12 => "prelogin",
        _ => return None,
    })
}

pub(crate) fn tds<'a>(input: &Input<'a>) -> Guess<'a> {
    for side in input.sides() {
        let d = input.data[side];
        if d.len() < 8 {
            continue;
        }
        let Some(kind) = tds_type(d[0]) else { continue };
        let status_ok = d[1] & !0x1f == 0;
        let len = usize::from(u16::from_be_bytes([d[2], d[3]]));
        // Window is always 0; packets are at most 32 KiB.
        if !status_ok || d[7] != 0 || !(8..=32_768).contains(&len) {
            continue;
        }
        let body = &d[8..d.len().min(len)];
        let strong = match d[0] {
            // PreLogin: option tokens (type, offset, length) ending in 0xFF, VERSION first.
            0x12 | 0x04 => body.first() == Some(&0) && prelogin_ok(body, len - 8),
            // Login7: its own length (LE) equals the packet's body, TDS version 7.x.
            0x10 => {
                body.len() >= 8
                    && u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize == len - 8
                    && body[7] == 0x70
                    || body.len() >= 8 && body[7] & 0xf0 == 0x70
            }
            // SQL batch, RPC, transaction manager (TDS 7.2+): ALL_HEADERS first, its total
            // length (LE) inside the body, the first header's length inside that.
            0x01 | 0x03 | 0x0e => all_headers_ok(body) || (d[0] == 0x03 && rpc_name_ok(body)),
            _ => false,
        };
        // A server response seen without its request: a known first token.
        let response = d[0] == 0x04 && body.first().is_some_and(|t| TDS_TOKENS.contains(t));
        if strong || response {
            return Guess::yes(App::Tds, opening(kind), true);
        }
    }
    Guess::No
}

/// First tokens of a TDS response: DONE, DONEPROC, DONEINPROC, COLMETADATA, ERROR, INFO,
/// LOGINACK, ENVCHANGE, RETURNSTATUS, ORDER, ROW, RETURNVALUE, SSPI, FEATUREEXTACK.
const TDS_TOKENS: [u8; 14] = [
    0xfd, 0xfe, 0xff, 0x81, 0xaa, 0xab, 0xad, 0xe3, 0x79, 0xa9, 0xd1, 0xac, 0xed, 0xae,
];

fn all_headers_ok(body: &[u8]) -> bool {
    if body.len() < 10 {
        return false;
    }
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let total = le32(body);
    let first = le32(&body[4..]);
    let kind = u16::from_le_bytes([body[8], body[9]]);
    (10..=body.len()).contains(&total)
        && (6..=total - 4).contains(&first)
        && (1..=3).contains(&kind)
}

/// An RPC request without ALL_HEADERS (TDS 7.1): a procedure name in UTF-16LE, or 0xFFFF and
/// a procedure id.
fn rpc_name_ok(body: &[u8]) -> bool {
    if body.len() < 4 {
        return false;
    }
    let n = usize::from(u16::from_le_bytes([body[0], body[1]]));
    if n == 0xffff {
        return true;
    }
    let name = &body[2..body.len().min(2 + 2 * n)];
    (1..=128).contains(&n)
        && name.len() >= 2
        && name
            .chunks(2)
            .all(|c| c.len() == 2 && c[1] == 0 && (c[0].is_ascii_graphic()))
}

/// PreLogin option list: 5-byte entries ending with 0xFF, offsets inside the body.
fn prelogin_ok(body: &[u8], body_len: usize) -> bool {
    let mut i = 0;
    for _ in 0..16 {
        match body.get(i) {
            Some(0xff) => return i > 0,
            Some(_) if i + 5 <= body.len() => {
                let off = usize::from(u16::from_be_bytes([body[i + 1], body[i + 2]]));
                let len = usize::from(u16::from_be_bytes([body[i + 3], body[i + 4]]));
                if off + len > body_len {
                    return false;
                }
                i += 5;
            }
            _ => return false,
        }
    }
    false
}

pub(crate) fn rmi<'a>(input: &Input<'a>) -> Guess<'a> {
    for side in input.sides() {
        let d = input.data[side];
        if d.len() >= 7
            && d.starts_with(b"JRMI")
            && matches!(u16::from_be_bytes([d[4], d[5]]), 1 | 2)
            && matches!(d[6], 0x4b..=0x4d)
        {
            let kind = match d[6] {
                0x4b => "stream",
                0x4c => "single-op",
                _ => "multiplex",
            };
            return Guess::yes(App::Rmi, opening(kind), true);
        }
        if !d.is_empty() && d.len() < 7 && b"JRMI".starts_with(&d[..d.len().min(4)]) {
            return Guess::Short;
        }
    }
    Guess::No
}

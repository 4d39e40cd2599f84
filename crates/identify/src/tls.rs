//! TLS: the record layer is walked here (handshakes split over records, or several in one,
//! are joined); the handshake messages are read with tls-parser. Gives version, SNI, ALPN,
//! cipher, client-certificate evidence, and JA3/JA4 fingerprints of the ClientHello.

use std::borrow::Cow;

use md5::{Digest as _, Md5};
use sha2::Sha256;
use smallvec::SmallVec;
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello,
    parse_tls_handshake_server_hello, parse_tls_server_hello_extension, TlsCipherSuite,
};

use crate::{text_owned, App, Detail, Guess, Input, Text};

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Largest record: 2^14 plus expansion.
const MAX_RECORD: usize = 18_432;

const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_SERVER_DONE: u8 = 14;
const HS_CLIENT_KEY_EXCHANGE: u8 = 16;

/// The random of a HelloRetryRequest (RFC 8446, 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// One side's records, as far as they are plaintext.
#[derive(Debug, Default)]
struct Side<'a> {
    /// Handshake bytes of the plaintext records, joined (borrowed while they are one record's).
    handshake: Cow<'a, [u8]>,
    /// Whole valid records seen.
    records: usize,
    /// A ChangeCipherSpec was seen (what follows is encrypted).
    ccs: bool,
    /// Application data or an alert was seen.
    data: bool,
    /// The bytes end inside a record.
    partial: bool,
}

impl<'a> Side<'a> {
    /// Adds a record's handshake bytes; copies only when a second record continues the first.
    fn join(&mut self, body: &'a [u8]) {
        if self.handshake.is_empty() {
            self.handshake = Cow::Borrowed(body);
        } else {
            self.handshake.to_mut().extend_from_slice(body);
        }
    }
}

fn header_ok(d: &[u8]) -> bool {
    d.len() >= 3
        && matches!(
            d[0],
            CHANGE_CIPHER_SPEC | ALERT | HANDSHAKE | APPLICATION_DATA
        )
        && d[1] == 3
        && d[2] <= 4
}

/// Walks the records of one side; `None` if the bytes are not TLS records.
fn records(mut d: &[u8]) -> Option<Side<'_>> {
    let mut s = Side::default();
    if !header_ok(d) {
        return None;
    }
    while !d.is_empty() {
        if d.len() < 5 {
            s.partial = header_ok(d) || d.len() < 3;
            break;
        }
        if !header_ok(d) {
            break;
        }
        let len = usize::from(u16::from_be_bytes([d[3], d[4]]));
        if len == 0 || len > MAX_RECORD {
            return (s.records > 0).then_some(s);
        }
        if d.len() < 5 + len {
            if d[0] == HANDSHAKE && !s.ccs {
                s.join(&d[5..]);
            }
            s.partial = true;
            break;
        }
        let body = &d[5..5 + len];
        match d[0] {
            HANDSHAKE if !s.ccs || plain_hello(body) => s.join(body),
            CHANGE_CIPHER_SPEC => s.ccs = true,
            HANDSHAKE => {}
            _ => s.data = true,
        }
        s.records += 1;
        d = &d[5 + len..];
    }
    Some(s)
}

/// TLS 1.3 middlebox compatibility sends a dummy ChangeCipherSpec before a HelloRetryRequest's
/// second ClientHello or ServerHello: a record after CCS that holds exactly one hello message
/// is still plaintext (an encrypted Finished almost never fits that shape).
fn plain_hello(body: &[u8]) -> bool {
    body.len() >= 4
        && matches!(body[0], HS_CLIENT_HELLO | HS_SERVER_HELLO)
        && (usize::from(body[1]) << 16 | usize::from(body[2]) << 8 | usize::from(body[3])) + 4
            == body.len()
}

/// Handshake messages (type, body) that are whole in `hs`. Read again for each question
/// asked of them: a message header is four bytes, cheaper to read than a list to allocate.
#[derive(Debug, Clone, Default)]
struct Messages<'a>(&'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let hs = self.0;
        let [t, l0, l1, l2, ..] = *hs else {
            return None;
        };
        let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
        let body = hs.get(4..4 + len)?;
        self.0 = &hs[4 + len..];
        Some((t, body))
    }
}

/// An SSL 2.0-compatible ClientHello (RFC 5246 appendix E.2), which old clients still send
/// to offer TLS: a two-byte length with the high bit set, type 1, version 3.x (or 2.0), then
/// lengths that add up to the record.
fn sslv2_client_hello(d: &[u8]) -> bool {
    let [l0, l1, 1, major, minor, cs0, cs1, sid0, sid1, ch0, ch1, ..] = *d else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes([l0 & 0x7f, l1]));
    let cipher_specs = usize::from(u16::from_be_bytes([cs0, cs1]));
    let fields = 9
        + cipher_specs
        + usize::from(u16::from_be_bytes([sid0, sid1]))
        + usize::from(u16::from_be_bytes([ch0, ch1]));
    l0 & 0x80 != 0
        && (major == 3 && minor <= 4 || (major, minor) == (0, 2))
        && cipher_specs > 0
        && cipher_specs % 3 == 0
        && fields == len
}

pub(crate) fn recognise<'a>(input: &Input<'a>) -> Guess<'a> {
    let sides = [records(input.data[0]), records(input.data[1])];
    let v2_client = (0..2).find(|&i| sslv2_client_hello(input.data[i]));
    if sides.iter().all(Option::is_none) {
        if v2_client.is_some() {
            // The server's answer, in TLS records, says the rest.
            return Guess::yes(App::Tls, Detail::default(), false);
        }
        let short = input
            .data
            .iter()
            .all(|d| d.len() < 3 && (d.is_empty() || d[0] == HANDSHAKE));
        return if short { Guess::Short } else { Guess::No };
    }
    let msgs: [Messages<'_>; 2] = [
        Messages(sides[0].as_ref().map_or(&[], |s| &s.handshake)),
        Messages(sides[1].as_ref().map_or(&[], |s| &s.handshake)),
    ];
    // The client is the side whose first handshake message is a ClientHello.
    let client = (0..2)
        .find(|&i| {
            msgs[i]
                .clone()
                .next()
                .is_some_and(|m| m.0 == HS_CLIENT_HELLO)
        })
        .or(v2_client)
        .or_else(|| {
            (0..2).find(|&i| {
                msgs[1 - i]
                    .clone()
                    .next()
                    .is_some_and(|m| m.0 == HS_SERVER_HELLO)
            })
        });
    let Some(c) = client else {
        // No hello on either side: a session seen after its handshake. Records that are whole
        // and well formed are TLS; a lone partial header is not enough.
        let whole = sides.iter().flatten().map(|s| s.records).sum::<usize>();
        if whole >= 1
            && sides
                .iter()
                .flatten()
                .all(|s| s.handshake.is_empty() || s.ccs)
        {
            return Guess::yes(App::Tls, Detail::default(), true);
        }
        let partial = sides.iter().flatten().any(|s| s.partial && s.records == 0);
        return if partial && !input.last {
            Guess::Short
        } else {
            Guess::No
        };
    };
    let s = 1 - c;
    let mut d = Detail::default();
    let mut complete = false;

    let mut tls13 = false;
    let mut server_done = false;
    let mut server_hello = false;
    for (t, body) in msgs[s].clone() {
        match t {
            HS_SERVER_HELLO => {
                if let Ok((_, sh)) = parse_tls_handshake_server_hello(body) {
                    let hrr = sh.random == HRR_RANDOM;
                    let (chosen, alpn) = sh.ext.map(server_extensions).unwrap_or_default();
                    let version = chosen.unwrap_or(sh.version.0);
                    if let Some(p) = alpn {
                        d.alpn_chosen = Some(text_owned(p));
                    }
                    if hrr {
                        d.hello_retry = Some(true);
                        continue;
                    }
                    server_hello = true;
                    d.tls_version = Some(version_name(version).into());
                    d.cipher = Some(cipher_name(sh.cipher.0));
                    tls13 = version == 0x0304;
                }
            }
            HS_CERTIFICATE_REQUEST => d.cert_request = Some(true),
            HS_SERVER_DONE => server_done = true,
            _ => {}
        }
    }
    let server_side = sides[s].as_ref();
    if tls13 {
        d.tls13 = Some(true);
        complete = true;
    } else {
        // The client's second flight: Certificate (possibly empty) before ClientKeyExchange.
        let cert = msgs[c].clone().find(|m| m.0 == HS_CERTIFICATE).map(|m| m.1);
        let kex = msgs[c].clone().any(|m| m.0 == HS_CLIENT_KEY_EXCHANGE);
        if let Some(body) = cert {
            // certificate_list<0..2^24-1>: an empty list is three zero bytes.
            let sent = body.len() > 3;
            d.client_cert = Some(sent);
            d.mutual_auth = Some(sent);
            complete = true;
        } else if server_done && d.cert_request.is_none() {
            d.cert_request = Some(false);
            d.client_cert = Some(false);
            d.mutual_auth = Some(false);
            complete = true;
        } else if kex {
            d.client_cert = Some(false);
            d.mutual_auth = Some(false);
            complete = true;
        } else if server_hello && server_side.is_some_and(|x| x.ccs) && !server_done {
            d.resumed = Some(true);
            complete = true;
        }
    }
    // Both sides now encrypted, or application data flowing: nothing more will be readable.
    if sides.iter().flatten().any(|x| x.data) {
        complete = true;
    }
    // The ClientHello's detail (SNI, ALPN, JA3, JA4: the costly part) only for the answer that
    // stands: an undecided verdict is thrown away.
    if complete || input.last {
        if let Some((_, body)) = msgs[c].clone().find(|m| m.0 == HS_CLIENT_HELLO) {
            client_hello(body, &mut d);
        }
    }
    Guess::yes(App::Tls, d, complete)
}

fn version_name(v: u16) -> &'static str {
    match v {
        0x0304 => "1.3",
        0x0303 => "1.2",
        0x0302 => "1.1",
        0x0301 => "1.0",
        0x0300 => "ssl3",
        _ => "unknown",
    }
}

fn cipher_name(id: u16) -> Text<'static> {
    match TlsCipherSuite::from_id(id) {
        Some(c) => Text::Borrowed(c.name),
        None => Text::Owned(format!("0x{id:04x}")),
    }
}

/// GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa.
fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Numbers of a ClientHello (ciphers, extension types), on the stack for any usual hello.
type Numbers = SmallVec<[u16; 64]>;

/// Extension types of a ClientHello in their order, from the raw bytes (JA3 and JA4 need the
/// order and the GREASE values, which a parsed list loses when one extension is odd).
fn extension_types(mut ext: &[u8]) -> Numbers {
    let mut out = Numbers::new();
    while ext.len() >= 4 {
        let t = be16(ext);
        let len = usize::from(be16(&ext[2..]));
        out.push(t);
        if ext.len() < 4 + len {
            break;
        }
        ext = &ext[4 + len..];
    }
    out
}

/// What a ClientHello's extensions say that its detail reads, found in place: the server
/// name, the ALPN protocol list, the highest version offered (not GREASE), and the
/// signature algorithms, groups and point formats as their bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct HelloExtensions<'a> {
    sni: Option<&'a [u8]>,
    /// Protocol names, each after a one-byte length.
    alpn: &'a [u8],
    version: Option<u16>,
    /// Two bytes each (an odd last byte is not one).
    sigalgs: &'a [u8],
    /// Two bytes each.
    groups: &'a [u8],
    point_formats: &'a [u8],
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// `b`'s first two bytes as a length, and the bytes it covers (`None`: too short).
fn len16(b: &[u8]) -> Option<&[u8]> {
    let n = usize::from(be16(b.get(..2)?));
    b.get(2..2 + n)
}

/// The same for a one-byte length.
fn len8(b: &[u8]) -> Option<&[u8]> {
    let n = usize::from(*b.first()?);
    b.get(1..1 + n)
}

/// Protocol names of an ALPN list, up to the first that is cut short.
fn alpn_names(mut list: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let name = len8(list)?;
        list = &list[1 + name.len()..];
        Some(name)
    })
}

/// Pairs of bytes as numbers.
fn u16s(b: &[u8]) -> impl Iterator<Item = u16> + Clone + '_ {
    b.chunks_exact(2).map(be16)
}

/// Walks a hello's extensions as tls-parser's lists of them are parsed
/// (`parse_tls_client_hello_extensions`, `parse_tls_server_hello_extensions`), without
/// making the list (a dozen allocations a handshake): in order, up to the first extension
/// that does not parse (that one and the rest are left out), GREASE types skipped. `read`
/// parses the types its caller wants by tls-parser's rules (`Some(false)`: does not parse)
/// and answers `None` for the others, which `other` (tls-parser's parser of one extension of
/// that hello) parses only to learn whether it does. Property tests hold the readings made
/// this way to those made from tls-parser's lists.
fn walk_extensions<'a>(
    mut ext: &'a [u8],
    other: fn(&[u8]) -> bool,
    mut read: impl FnMut(u16, &'a [u8]) -> Option<bool>,
) {
    while ext.len() >= 4 {
        let t = be16(ext);
        let Some(data) = len16(&ext[2..]) else {
            break;
        };
        let whole = &ext[..4 + data.len()];
        ext = &ext[whole.len()..];
        if t & 0x0f0f == 0x0a0a {
            continue;
        }
        if !read(t, data).unwrap_or_else(|| other(whole)) {
            break;
        }
    }
}

/// A ClientHello's extensions, read in place; a later extension of a type replaces an
/// earlier one.
fn hello_extensions(ext: &[u8]) -> HelloExtensions<'_> {
    let mut h = HelloExtensions::default();
    let other = |e: &[u8]| parse_tls_client_hello_extension(e).is_ok();
    walk_extensions(ext, other, |t, data| {
        let parsed = match t {
            0x0000 => sni(data).map(|name| h.sni = name),
            0x0010 => len16(data).map(|list| h.alpn = list),
            0x002b => versions(data).map(|v| {
                if let Some(max) = v.filter(|&v| !grease(v)).max() {
                    h.version = Some(max);
                }
            }),
            0x000d => len16(data).map(|list| h.sigalgs = list),
            0x000a => len16(data)
                .filter(|list| list.len() % 2 == 0)
                .map(|list| h.groups = list),
            0x000b => len8(data).map(|list| h.point_formats = list),
            _ => return None,
        };
        Some(parsed.is_some())
    });
    h
}

/// A ServerHello's extensions, read in place: the version the server chose (the first of
/// the last supported_versions that names one) and the protocol it chose (the first name of
/// the last ALPN list that has one).
fn server_extensions(ext: &[u8]) -> (Option<u16>, Option<&[u8]>) {
    let (mut version, mut alpn) = (None, None);
    let other = |e: &[u8]| parse_tls_server_hello_extension(e).is_ok();
    walk_extensions(ext, other, |t, data| {
        let parsed = match t {
            0x002b => versions(data).map(|mut v| {
                if let Some(first) = v.next() {
                    version = Some(first);
                }
            }),
            0x0010 => len16(data).map(|list| {
                if let Some(first) = alpn_names(list).next() {
                    alpn = Some(first);
                }
            }),
            _ => return None,
        };
        Some(parsed.is_some())
    });
    (version, alpn)
}

/// The server_name extension: `None` when it does not parse, else its first name, if any
/// parses.
fn sni(data: &[u8]) -> Option<Option<&[u8]>> {
    if data.is_empty() {
        return Some(None);
    }
    let list = len16(data)?;
    Some(list.get(1..).and_then(len16))
}

/// The supported_versions extension's versions (`None`: it does not parse).
fn versions(data: &[u8]) -> Option<impl Iterator<Item = u16> + '_> {
    let list = match data.len() {
        2 => data,
        // A length byte first, which tls-parser does not read.
        n if n >= 1 && (n - 1) % 2 == 0 => &data[1..],
        _ => return None,
    };
    Some(u16s(list))
}

/// The ClientHello's detail: SNI, ALPN, JA3 and JA4. Runs once per TLS flow: the lists it
/// needs live on the stack or are read in place, and the strings it keeps are the only
/// allocations made here (tls-parser allocates the hello's own lists of ciphers and
/// compressions).
fn client_hello(body: &[u8], d: &mut Detail<'_>) {
    let Ok((_, ch)) = parse_tls_handshake_client_hello(body) else {
        return;
    };
    let ciphers: Numbers = ch
        .ciphers
        .iter()
        .map(|c| c.0)
        .filter(|&c| !grease(c))
        .collect();
    let types = ch.ext.map(extension_types).unwrap_or_default();
    let h = ch.ext.map(hello_extensions).unwrap_or_default();
    let sni = h.sni;
    let version = h.version.unwrap_or(ch.version.0);
    d.sni = sni.map(text_owned);
    let alpn_first = alpn_names(h.alpn).next();
    if alpn_first.is_some() {
        d.alpn = Some(alpn_names(h.alpn).take(16).map(text_owned).collect());
    }

    // JA3: version,ciphers,extensions,groups,point formats (decimal, GREASE left out), MD5.
    // Written into one buffer, which JA4's hash inputs reuse.
    let mut buf = String::with_capacity(512);
    push_dec(&mut buf, ch.version.0);
    buf.push(',');
    push_list(&mut buf, ciphers.iter().copied(), '-', push_dec);
    buf.push(',');
    push_list(
        &mut buf,
        types.iter().copied().filter(|&t| !grease(t)),
        '-',
        push_dec,
    );
    buf.push(',');
    push_list(
        &mut buf,
        u16s(h.groups).filter(|&g| !grease(g)),
        '-',
        push_dec,
    );
    buf.push(',');
    push_list(
        &mut buf,
        h.point_formats.iter().map(|&p| u16::from(p)),
        '-',
        push_dec,
    );
    let mut ja3 = String::with_capacity(32);
    push_hex(&mut ja3, &Md5::digest(buf.as_bytes()));
    d.ja3 = Some(ja3.into());

    // JA4 (FoxIO): t<version><d|i><ciphers><extensions><alpn>_<ciphers hash>_<extensions hash>.
    let ja4_version = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0200 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let exts = types.iter().copied().filter(|&t| !grease(t));
    let alpn_mark = match alpn_first {
        Some(p) if !p.is_empty() => {
            let (f, l) = (p[0], p[p.len() - 1]);
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                [f as char, l as char]
            } else {
                // The first and last characters of the protocol's hex.
                [
                    HEX[usize::from(f >> 4)] as char,
                    HEX[usize::from(l & 0xf)] as char,
                ]
            }
        }
        _ => ['0', '0'],
    };
    // Sorted as four-digit hex strings, which is numeric order.
    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let mut sorted_exts: Numbers = exts
        .clone()
        .filter(|&t| t != 0x0000 && t != 0x0010)
        .collect();
    sorted_exts.sort_unstable();
    let mut ja4 = String::with_capacity(36);
    ja4.push('t');
    ja4.push_str(ja4_version);
    ja4.push(if sni.is_some() { 'd' } else { 'i' });
    push_two_digits(&mut ja4, ciphers.len().min(99));
    push_two_digits(&mut ja4, exts.count().min(99));
    ja4.extend(alpn_mark);
    ja4.push('_');
    if sorted_ciphers.is_empty() {
        ja4.push_str("000000000000");
    } else {
        buf.clear();
        push_list(&mut buf, sorted_ciphers.iter().copied(), ',', push_hex4);
        push_hash12(&mut ja4, &buf);
    }
    ja4.push('_');
    if sorted_exts.is_empty() {
        ja4.push_str("000000000000");
    } else {
        buf.clear();
        push_list(&mut buf, sorted_exts.iter().copied(), ',', push_hex4);
        let mut sigs = u16s(h.sigalgs).filter(|&s| !grease(s)).peekable();
        if sigs.peek().is_some() {
            buf.push('_');
            push_list(&mut buf, sigs, ',', push_hex4);
        }
        push_hash12(&mut ja4, &buf);
    }
    d.ja4 = Some(ja4.into());
}

/// `items` written by `push`, separated by `sep`.
fn push_list(
    out: &mut String,
    items: impl Iterator<Item = u16>,
    sep: char,
    push: fn(&mut String, u16),
) {
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(sep);
        }
        push(out, v);
    }
}

fn push_dec(out: &mut String, v: u16) {
    let mut digits = [0u8; 5];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&c| c as char));
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex4(out: &mut String, v: u16) {
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((v >> shift) & 0xf)] as char);
    }
}

fn push_two_digits(out: &mut String, n: usize) {
    out.push((b'0' + (n / 10) as u8) as char);
    out.push((b'0' + (n % 10) as u8) as char);
}

/// The first 12 hex digits of the SHA-256 of `s`.
fn push_hash12(out: &mut String, s: &str) {
    push_hex(out, &Sha256::digest(s.as_bytes())[..6]);
}

fn push_hex(out: &mut String, b: &[u8]) {
    for &x in b {
        out.push(HEX[usize::from(x >> 4)] as char);
        out.push(HEX[usize::from(x & 0xf)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tls_parser::TlsExtension;

    fn hash12(s: &str) -> String {
        let mut out = String::new();
        push_hash12(&mut out, s);
        out
    }

    fn hex(b: &[u8]) -> String {
        let mut out = String::new();
        push_hex(&mut out, b);
        out
    }

    /// `hello_extensions`' reading, as owned values.
    type Reading = (
        Option<Vec<u8>>,
        Vec<Vec<u8>>,
        Option<u16>,
        Vec<u16>,
        Vec<u16>,
        Vec<u8>,
    );

    fn read_in_place(ext: &[u8]) -> Reading {
        let h = hello_extensions(ext);
        (
            h.sni.map(<[u8]>::to_vec),
            alpn_names(h.alpn).map(<[u8]>::to_vec).collect(),
            h.version,
            u16s(h.sigalgs).collect(),
            u16s(h.groups).collect(),
            h.point_formats.to_vec(),
        )
    }

    /// The same, through tls-parser's list of extensions (what `client_hello` did before).
    fn read_by_tls_parser(ext: &[u8]) -> Reading {
        let mut r = Reading::default();
        let Ok((_, exts)) = tls_parser::parse_tls_client_hello_extensions(ext) else {
            return r;
        };
        for e in exts {
            match e {
                TlsExtension::SNI(names) => r.0 = names.first().map(|n| n.1.to_vec()),
                TlsExtension::ALPN(p) => r.1 = p.iter().map(|x| x.to_vec()).collect(),
                TlsExtension::SupportedVersions(v) => {
                    if let Some(max) = v.iter().map(|x| x.0).filter(|&v| !grease(v)).max() {
                        r.2 = Some(max);
                    }
                }
                TlsExtension::SignatureAlgorithms(v) => r.3 = v,
                TlsExtension::EllipticCurves(g) => r.4 = g.iter().map(|g| g.0).collect(),
                TlsExtension::EcPointFormats(p) => r.5 = p.to_vec(),
                _ => {}
            }
        }
        r
    }

    fn server_by_tls_parser(ext: &[u8]) -> (Option<u16>, Option<Vec<u8>>) {
        let (mut version, mut alpn) = (None, None);
        if let Ok((_, exts)) = tls_parser::parse_tls_server_hello_extensions(ext) {
            for e in exts {
                match e {
                    TlsExtension::SupportedVersions(v) if !v.is_empty() => version = Some(v[0].0),
                    TlsExtension::ALPN(p) if !p.is_empty() => alpn = Some(p[0].to_vec()),
                    _ => {}
                }
            }
        }
        (version, alpn)
    }

    fn server_in_place(ext: &[u8]) -> (Option<u16>, Option<Vec<u8>>) {
        let (version, alpn) = server_extensions(ext);
        (version, alpn.map(<[u8]>::to_vec))
    }

    /// An extension's bytes: well formed for its type more often than not, sometimes cut
    /// or padded, sometimes noise.
    fn extension() -> impl Strategy<Value = Vec<u8>> {
        let types = prop::sample::select(vec![
            0x0000u16, 0x0010, 0x002b, 0x000d, 0x000a, 0x000b, 0x0033, 0x002d, 0x0005, 0x0017,
            0x0015, 0xff01, 0x0a0a, 0x1a1a, 0x4469, 0x0001, 0x000f,
        ]);
        let item = prop::collection::vec(any::<u8>(), 0..6);
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..10),
            // A list after a two-byte length, of names after one-byte lengths (SNI: after a
            // name type and a two-byte length) or of bare bytes.
            (prop::collection::vec(item.clone(), 0..4), 0u8..3).prop_map(|(items, shape)| {
                let mut list = Vec::new();
                for it in items {
                    match shape {
                        0 => {
                            list.push(it.len() as u8);
                            list.extend(it);
                        }
                        1 => {
                            list.push(0);
                            list.extend((it.len() as u16).to_be_bytes());
                            list.extend(it);
                        }
                        _ => list.extend(it),
                    }
                }
                let mut b = (list.len() as u16).to_be_bytes().to_vec();
                b.extend(list);
                b
            }),
            // A list after a one-byte length (point formats, supported versions).
            item.prop_map(|it| {
                let mut b = vec![it.len() as u8];
                b.extend(it);
                b
            }),
        ];
        (types, body, 0u8..8, any::<u8>()).prop_map(|(t, mut body, damage, extra)| {
            match damage {
                0 => {
                    body.pop();
                }
                1 => body.push(extra),
                _ => {}
            }
            let mut e = t.to_be_bytes().to_vec();
            let len = if damage == 2 {
                body.len() + 1
            } else {
                body.len()
            };
            e.extend((len as u16).to_be_bytes());
            e.extend(body);
            e
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The extensions read in place give what tls-parser's lists gave (a ClientHello's
        /// and a ServerHello's), on lists of well-formed, damaged and unknown extensions and
        /// on noise.
        #[test]
        fn extensions_read_in_place_as_tls_parser_reads_them(
            exts in prop::collection::vec(extension(), 0..8),
            tail in prop::collection::vec(any::<u8>(), 0..4),
            noise in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut ext: Vec<u8> = exts.concat();
            ext.extend(tail);
            proptest::prop_assert_eq!(read_in_place(&ext), read_by_tls_parser(&ext));
            proptest::prop_assert_eq!(read_in_place(&noise), read_by_tls_parser(&noise));
            proptest::prop_assert_eq!(server_in_place(&ext), server_by_tls_parser(&ext));
            proptest::prop_assert_eq!(server_in_place(&noise), server_by_tls_parser(&noise));
        }
    }

    #[test]
    fn grease_values_are_recognised() {
        assert!(grease(0x0a0a));
        assert!(grease(0xfafa));
        assert!(!grease(0x0a1a));
        assert!(!grease(0x1301));
    }

    #[test]
    fn ja4_and_ja3_hashes_match_a_published_chrome_fingerprint() {
        // A Chrome 143 ClientHello as a public fingerprinting service printed it:
        // ja4 t13d1516h2_8daaf6152771_d8a2da3f94cd, ja3 98487aa16281980e7d1120d399efb6a4.
        let ciphers = "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9";
        assert_eq!(hash12(ciphers), "8daaf6152771");
        let exts = "0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_\
                    0403,0804,0401,0503,0805,0501,0806,0601";
        assert_eq!(hash12(exts), "d8a2da3f94cd");
        let ja3 = "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-\
                   47-53,45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0";
        assert_eq!(
            hex(&Md5::digest(ja3.as_bytes())),
            "98487aa16281980e7d1120d399efb6a4"
        );
    }
}

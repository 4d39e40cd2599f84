//! Line-oriented protocols recognised by their first line: SIP, HTTP (and BOSH), XMPP streams,
//! SSH banners, Redis RESP commands.

use crate::{find, first_line, text, text_owned, App, Detail, Guess, Input};

/// Longest first line looked at.
const MAX_LINE: usize = 2048;

fn skip_crlf(mut d: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = d {
        d = rest;
    }
    d
}

fn token(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_')
}

/// `METHOD SP target SP <proto>` or `<proto> SP code ...`: what kind of line it is.
enum StartLine<'a> {
    Request { method: &'a [u8], target: &'a [u8] },
    Response { code: u16 },
}

fn start_line<'a>(line: &'a [u8], proto: &[u8]) -> Option<StartLine<'a>> {
    if let Some(rest) = line.strip_prefix(proto) {
        // "SIP/2.0 200 OK", "HTTP/1.1 404 Not Found"
        let rest = if proto.ends_with(b"/") {
            let v = rest.iter().position(|&c| c == b' ')?;
            if !rest[..v].iter().all(|c| c.is_ascii_digit() || *c == b'.') {
                return None;
            }
            &rest[v..]
        } else {
            rest
        };
        let rest = rest.strip_prefix(b" ")?;
        if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
            let code = (u16::from(rest[0] - b'0')) * 100
                + u16::from(rest[1] - b'0') * 10
                + u16::from(rest[2] - b'0');
            return Some(StartLine::Response { code });
        }
        return None;
    }
    let mut parts = line.split(|&c| c == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some() || !token(method) || target.is_empty() {
        return None;
    }
    let v = version.strip_prefix(proto)?;
    if proto.ends_with(b"/") && !(v.first().is_some_and(u8::is_ascii_digit)) {
        return None;
    }
    Some(StartLine::Request { method, target })
}

/// A cheap look at the first bytes before any line is searched for: a method token and a
/// space within the first 24 bytes, or the protocol's own name (responses).
fn plausible(d: &[u8], proto: &[u8]) -> bool {
    if d.starts_with(proto) {
        return true;
    }
    let head = &d[..d.len().min(24)];
    // memchr's vector compare, not a byte loop: on a payload of letters the loop ran all 24
    // bytes, in SIP's look and HTTP's, for every unknown TCP flow.
    match memchr::memchr(b' ', head) {
        Some(sp) => sp > 0 && token(&head[..sp]),
        None => false,
    }
}

/// Bytes that could still become the start of a line beginning with one of `openings`.
fn could_be(d: &[u8], openings: &[&[u8]]) -> bool {
    let d = &d[..d.len().min(16)];
    openings
        .iter()
        .any(|o| o.starts_with(d) || d.starts_with(o))
        || d.iter().all(|c| c.is_ascii_uppercase())
}

pub(crate) fn sip<'a>(input: &Input<'a>) -> Guess<'a> {
    // The detail's fields, made into a `Detail` only for an answer (most calls turn the
    // bytes away, and a `Detail` is 560 bytes to fill and drop).
    let (mut method, mut status) = (None, None);
    let mut seen = false;
    let mut short = false;
    let mut keepalive = false;
    for side in input.sides() {
        let raw = input.data[side];
        let data = skip_crlf(raw);
        if data.is_empty() {
            // RFC 5626 keepalives: CRLF CRLF (ping) and CRLF (pong).
            keepalive |= raw.len() >= 2;
            continue;
        }
        if !plausible(data, b"SIP/2.0") {
            short |= data.len() < 24 && could_be(data, &[b"SIP/2.0"]);
            continue;
        }
        match first_line(data, MAX_LINE) {
            Some(line) => match start_line(line, b"SIP/2.0") {
                Some(StartLine::Request { method: m, .. }) => {
                    seen = true;
                    method.get_or_insert(m);
                }
                Some(StartLine::Response { code }) => {
                    seen = true;
                    status.get_or_insert(code);
                }
                None => {}
            },
            // A method and a space, or the protocol's name: the line's end is still to come.
            None => short |= data.len() < MAX_LINE,
        }
    }
    if seen || (keepalive && !short && input.data.iter().all(|x| skip_crlf(x).is_empty())) {
        let d = Detail {
            sip_method: method.map(text),
            sip_status: status,
            ..Detail::default()
        };
        return Guess::yes(App::Sip, d, seen || input.last);
    }
    if short {
        Guess::Short
    } else {
        Guess::No
    }
}

pub(crate) fn http<'a>(input: &Input<'a>) -> Guess<'a> {
    // Made once a start line is seen: most calls turn the bytes away, and a `Detail` is 560
    // bytes to fill and drop.
    let mut d: Option<Detail<'a>> = None;
    let mut seen = false;
    let mut short = false;
    let mut complete = true;
    for side in input.sides() {
        let data = input.data[side];
        if data.is_empty() {
            continue;
        }
        if !plausible(data, b"HTTP/") {
            short |= data.len() < 24 && could_be(data, &[b"HTTP/"]);
            continue;
        }
        let Some(line) = first_line(data, MAX_LINE) else {
            // A method and a space, or the protocol's name: the line's end is still to come.
            short |= data.len() < MAX_LINE;
            continue;
        };
        match start_line(line, b"HTTP/") {
            Some(StartLine::Request { method, target }) => {
                seen = true;
                let d = d.get_or_insert_with(Detail::default);
                d.http_method = Some(text(method));
                d.http_path = Some(text(target));
                let headers = &data[line.len()..];
                match find(headers, b"\r\n\r\n") {
                    Some(end) => {
                        let head = &headers[..end];
                        d.http_host = header(head, b"host").map(text);
                        let body = &headers[end + 4..];
                        // (Compared in place: a lowercased copy was an allocation a request.)
                        let starts = |p: &[u8]| {
                            target
                                .get(..p.len())
                                .is_some_and(|t| t.eq_ignore_ascii_case(p))
                        };
                        if starts(b"/http-bind")
                            || starts(b"/httpbinding")
                            || find(body, b"http://jabber.org/protocol/httpbind").is_some()
                        {
                            d.bosh = Some(true);
                        }
                    }
                    None => complete = false,
                }
            }
            Some(StartLine::Response { code }) => {
                seen = true;
                d.get_or_insert_with(Detail::default).http_status = Some(code);
            }
            None => {}
        }
    }
    if seen {
        // A request's headers, then the answer's status: then nothing new will come.
        let d = d.unwrap_or_default();
        let complete = complete && d.http_status.is_some();
        return Guess::yes(App::Http, d, complete);
    }
    if short {
        Guess::Short
    } else {
        Guess::No
    }
}

/// A header's value in a header block (case-insensitive name).
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        if line[..colon].trim_ascii().eq_ignore_ascii_case(name) {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// `<?xml ...?>` and white space before the first element.
fn skip_prolog(mut d: &[u8]) -> &[u8] {
    loop {
        d = d.trim_ascii_start();
        if d.starts_with(b"<?") {
            match find(d, b"?>") {
                Some(end) => d = &d[end + 2..],
                None => return d,
            }
        } else {
            return d;
        }
    }
}

/// The value of attribute `name` in an XML start tag.
fn attribute<'a>(tag: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    while let Some(p) = find(&tag[i..], name) {
        let at = i + p;
        let before_ok = at > 0 && tag[at - 1].is_ascii_whitespace();
        let rest = tag[at + name.len()..].trim_ascii_start();
        if before_ok {
            if let Some(rest) = rest.strip_prefix(b"=") {
                let rest = rest.trim_ascii_start();
                if let Some(&q) = rest.first().filter(|&&q| q == b'\'' || q == b'"') {
                    let end = rest[1..].iter().position(|&c| c == q)?;
                    return Some(&rest[1..1 + end]);
                }
            }
        }
        i = at + name.len();
    }
    None
}

/// Openings of XMPP elements seen after the stream header (RFC 6120, XEP-0198, XEP-0220).
const STANZAS: &[&[u8]] = &[
    b"</stream:stream>",
    b"<stream:features",
    b"<iq ",
    b"<iq>",
    b"<message ",
    b"<message>",
    b"<presence",
    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'",
    b"<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"",
    b"<proceed xmlns=",
    b"<auth xmlns=",
    b"<success xmlns=",
    b"<challenge xmlns=",
    b"<response xmlns=",
    b"<db:result",
    b"<db:verify",
];

pub(crate) fn xmpp<'a>(input: &Input<'a>) -> Guess<'a> {
    let mut namespace = None;
    let mut stream = [false; 2];
    let mut short = false;
    for (side, seen) in stream.iter_mut().enumerate() {
        // A stream header, an XML declaration or (below) a stanza: '<' first, after white
        // space. Other bytes are turned away before any search.
        if input.data[side].trim_ascii_start().first() != Some(&b'<') {
            continue;
        }
        let data = skip_prolog(input.data[side]);
        if data.is_empty() {
            // The XML declaration alone, in a segment of its own: the stream header follows.
            short |= input.data[side].starts_with(b"<?");
            continue;
        }
        if data.starts_with(b"<stream:stream") || data.starts_with(b"<stream ") {
            *seen = true;
            let tag_end = data.iter().position(|&c| c == b'>').unwrap_or(data.len());
            let tag = &data[..tag_end];
            if let Some(ns) = attribute(tag, b"xmlns") {
                if namespace.is_none() || side == input.client {
                    namespace = Some(ns);
                }
            }
        } else if b"<stream:stream".starts_with(&data[..data.len().min(14)])
            || input.data[side].starts_with(b"<?")
        {
            short = true;
        }
    }
    if !stream.iter().any(|&s| s) {
        // A capture that starts inside a stream: stanzas and stream elements say XMPP too.
        let mid = (0..2).any(|side| {
            let d = input.data[side].trim_ascii_start();
            // Every opening begins with '<': most bytes are turned away by that alone.
            d.first() == Some(&b'<') && STANZAS.iter().any(|s| d.starts_with(s))
        });
        if mid {
            return Guess::yes(App::Xmpp, Detail::default(), true);
        }
        return if short { Guess::Short } else { Guess::No };
    }
    // STARTTLS: the receiving entity offers it in its features; the initiator asks and the
    // receiving entity says proceed.
    let mut features_done = false;
    let mut offered = false;
    let mut asked = false;
    let mut proceed = false;
    for side in 0..2 {
        let data = input.data[side];
        offered |= find(data, b"<starttls").is_some() && find(data, b"features").is_some();
        features_done |= find(data, b"</stream:features>").is_some();
        proceed |= find(data, b"<proceed").is_some();
        asked |= memchr::memchr_iter(b'<', data)
            .any(|i| data[i..].starts_with(b"<starttls") && !in_features(data, i));
    }
    let mut d = Detail {
        xmpp_ns: namespace.map(text),
        ..Detail::default()
    };
    let complete = if proceed {
        d.starttls = Some("taken".into());
        true
    } else if offered {
        d.starttls = Some(if asked { "taken" } else { "offered" }.into());
        asked
    } else {
        features_done
    };
    Guess::yes(App::Xmpp, d, complete)
}

/// Whether position `i` lies inside a `<stream:features>` element.
fn in_features(data: &[u8], i: usize) -> bool {
    match find(&data[..i], b"<stream:features") {
        Some(open) => find(&data[open..i], b"</stream:features>").is_none(),
        None => false,
    }
}

pub(crate) fn ssh<'a>(input: &Input<'a>) -> Guess<'a> {
    let mut banners: [Option<&[u8]>; 2] = [None, None];
    let mut seen = [false; 2];
    let mut short = false;
    for (side, seen) in seen.iter_mut().enumerate() {
        let data = input.data[side];
        if data.is_empty() {
            continue;
        }
        // RFC 4253 4.2: the server may send other lines before its version line; the client
        // starts with it.
        let lines = if side == input.client { 1 } else { 8 };
        let mut rest = data;
        let mut found = None;
        for line in 0..lines {
            let window = &rest[..rest.len().min(255)];
            if window.starts_with(b"SSH-") {
                found = memchr::memchr(b'\n', window).map(|p| &window[..p]);
                break;
            }
            // Lines of text only: binary data ends the search at once. The line's end is
            // searched for only when another line may follow it.
            if line + 1 == lines || !window.first().is_some_and(u8::is_ascii_graphic) {
                break;
            }
            match memchr::memchr(b'\n', window) {
                Some(p) => rest = &rest[p + 1..],
                None => break,
            }
        }
        match found {
            Some(line) => {
                let v = &line[4..];
                if v.starts_with(b"2.0-") || v.starts_with(b"1.99-") || v.starts_with(b"1.") {
                    *seen = true;
                    banners[side] = Some(line.strip_suffix(b"\r").unwrap_or(line));
                }
            }
            None => short |= b"SSH-".starts_with(&data[..data.len().min(4)]) && data.len() < 255,
        }
    }
    if seen.iter().any(|&s| s) {
        let c = input.client;
        let d = Detail {
            ssh_client: banners[c].map(text),
            ssh_server: banners[1 - c].map(text),
            ..Detail::default()
        };
        return Guess::yes(App::Ssh, d, seen[0] && seen[1]);
    }
    if short {
        Guess::Short
    } else {
        Guess::No
    }
}

pub(crate) fn redis<'a>(input: &Input<'a>) -> Guess<'a> {
    let data = input.data[input.client];
    let other = input.data[1 - input.client];
    for d in [data, other] {
        // A RESP array of bulk strings: *<n>\r\n$<len>\r\n<command>\r\n
        if d.first() != Some(&b'*') {
            continue;
        }
        let Some(line) = first_line(d, 32) else {
            continue;
        };
        let Some(n) = line.strip_prefix(b"*") else {
            continue;
        };
        if n.is_empty() || !n.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let rest = &d[line.len() + 2..];
        let Some(bulk) = first_line(rest, 32) else {
            continue;
        };
        let Some(len) = bulk.strip_prefix(b"$") else {
            continue;
        };
        let Some(len) = std::str::from_utf8(len)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        let cmd = &rest[bulk.len() + 2..];
        if len == 0 || len > 64 || cmd.len() < len + 2 || &cmd[len..len + 2] != b"\r\n" {
            continue;
        }
        let name = &cmd[..len];
        if !name
            .iter()
            .all(|c| c.is_ascii_alphabetic() || *c == b'.' || *c == b'_')
        {
            continue;
        }
        let d = Detail {
            // Borrowed when the client wrote it in capitals already.
            redis_command: Some(if name.iter().any(u8::is_ascii_lowercase) {
                text_owned(&name.to_ascii_uppercase())
            } else {
                text(name)
            }),
            ..Detail::default()
        };
        return Guess::yes(App::Redis, d, true);
    }
    let starts = |d: &[u8]| d.first() == Some(&b'*') && first_line(d, 32).is_none() && d.len() < 32;
    if starts(data) || starts(other) {
        Guess::Short
    } else {
        Guess::No
    }
}

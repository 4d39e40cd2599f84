//! Real protocol messages for fixtures: TLS handshakes (1.2 with and without a client
//! certificate, 1.3), SIP, XMPP, HTTP/BOSH, LDAP, SNMP v1/v2c/v3, DNS/mDNS, NTP, IKEv2, SSH,
//! PostgreSQL, Oracle TNS, MS SQL TDS, Java RMI and Redis, byte for byte as the protocols
//! define them (certificates and key shares are fixed filler of the right size).

/// A BER TLV with a definite length.
fn ber(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 128 {
        v.push(n as u8);
    } else if n < 256 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

fn int(n: u8) -> Vec<u8> {
    ber(0x02, &[n])
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn u16be(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

fn u24be(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

// ---------------------------------------------------------------- TLS

/// A TLS record.
pub fn tls_record(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, 3, 3];
    v.extend_from_slice(&u16be(body.len()));
    v.extend_from_slice(body);
    v
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&u24be(body.len()));
    v.extend_from_slice(body);
    v
}

fn ext(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend_from_slice(&u16be(body.len()));
    v.extend_from_slice(body);
    v
}

/// A ClientHello record: GREASE, SNI, groups, point formats, signature algorithms, ALPN and,
/// for TLS 1.3, supported_versions and a key share.
pub fn client_hello(sni: &str, alpn: &[&str], tls13: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[0x11; 32]); // random
    b.push(0); // session id
    let ciphers: &[u16] = &[0x1a1a, 0x1301, 0x1302, 0xc02b, 0xc02f, 0xc030, 0x009c];
    b.extend_from_slice(&u16be(ciphers.len() * 2));
    for c in ciphers {
        b.extend_from_slice(&c.to_be_bytes());
    }
    b.extend_from_slice(&[1, 0]); // compression: null
    let mut e = ext(0x2a2a, &[]);
    let mut name = vec![0u8];
    name.extend_from_slice(&u16be(sni.len()));
    name.extend_from_slice(sni.as_bytes());
    let mut list = u16be(name.len()).to_vec();
    list.extend_from_slice(&name);
    e.extend(ext(0x0000, &list));
    e.extend(ext(0x000a, &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]));
    e.extend(ext(0x000b, &[1, 0]));
    e.extend(ext(
        0x000d,
        &[0, 8, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03],
    ));
    if !alpn.is_empty() {
        let mut protos = Vec::new();
        for p in alpn {
            protos.push(p.len() as u8);
            protos.extend_from_slice(p.as_bytes());
        }
        let mut body = u16be(protos.len()).to_vec();
        body.extend(protos);
        e.extend(ext(0x0010, &body));
    }
    if tls13 {
        e.extend(ext(0x002b, &[4, 0x03, 0x04, 0x03, 0x03]));
        let mut share = vec![0, 36, 0x00, 0x1d, 0, 32];
        share.extend_from_slice(&[0x22; 32]);
        e.extend(ext(0x0033, &share));
    }
    b.extend_from_slice(&u16be(e.len()));
    b.extend(e);
    tls_record(22, &handshake(1, &b))
}

fn server_hello_body(cipher: u16, tls13: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[0x33; 32]);
    b.push(0);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let mut e = Vec::new();
    if tls13 {
        e.extend(ext(0x002b, &[0x03, 0x04]));
        let mut share = vec![0x00, 0x1d, 0, 32];
        share.extend_from_slice(&[0x44; 32]);
        e.extend(ext(0x0033, &share));
    } else {
        e.extend(ext(0xff01, &[0]));
    }
    b.extend_from_slice(&u16be(e.len()));
    b.extend(e);
    b
}

fn certificate(certs: &[usize]) -> Vec<u8> {
    let mut list = Vec::new();
    for &n in certs {
        list.extend_from_slice(&u24be(n));
        let mut der = vec![0x30, 0x82];
        der.extend_from_slice(&u16be(n - 4));
        der.resize(n, 0x5a);
        list.extend(der);
    }
    let mut b = u24be(list.len()).to_vec();
    b.extend(list);
    handshake(11, &b)
}

/// The server's first flight of a TLS 1.2 handshake: ServerHello, Certificate,
/// ServerKeyExchange, CertificateRequest when `ask_cert`, ServerHelloDone; one record.
pub fn server_flight_12(ask_cert: bool) -> Vec<u8> {
    let mut hs = handshake(2, &server_hello_body(0xc02f, false));
    hs.extend(certificate(&[900, 700]));
    let mut ske = vec![3, 0x00, 0x1d, 32];
    ske.extend_from_slice(&[0x55; 32]);
    ske.extend_from_slice(&[0x04, 0x01, 0, 64]);
    ske.extend_from_slice(&[0x66; 64]);
    hs.extend(handshake(12, &ske));
    if ask_cert {
        // certificate_types (rsa_sign, ecdsa_sign), signature algorithms, no CA names.
        hs.extend(handshake(
            13,
            &[2, 1, 64, 0, 4, 0x04, 0x01, 0x04, 0x03, 0, 0],
        ));
    }
    hs.extend(handshake(14, &[]));
    tls_record(22, &hs)
}

/// The client's second flight of TLS 1.2: Certificate (with one certificate or empty when
/// asked), ClientKeyExchange, CertificateVerify when a certificate was sent, then
/// ChangeCipherSpec and an encrypted Finished.
pub fn client_flight_12(asked: bool, send_cert: bool) -> Vec<u8> {
    let mut hs = Vec::new();
    if asked {
        hs.extend(certificate(if send_cert { &[800] } else { &[] }));
    }
    let mut kex = vec![32];
    kex.extend_from_slice(&[0x77; 32]);
    hs.extend(handshake(16, &kex));
    if asked && send_cert {
        let mut cv = vec![0x04, 0x01, 0, 64];
        cv.extend_from_slice(&[0x88; 64]);
        hs.extend(handshake(15, &cv));
    }
    let mut v = tls_record(22, &hs);
    v.extend(tls_record(20, &[1]));
    v.extend(tls_record(22, &[0x99; 40]));
    v
}

/// The server's ChangeCipherSpec and encrypted Finished (TLS 1.2).
pub fn server_finish_12() -> Vec<u8> {
    let mut v = tls_record(20, &[1]);
    v.extend(tls_record(22, &[0xaa; 40]));
    v
}

/// A TLS 1.3 ServerHello, the compatibility ChangeCipherSpec and encrypted records.
pub fn server_flight_13() -> Vec<u8> {
    let mut v = tls_record(22, &handshake(2, &server_hello_body(0x1301, true)));
    v.extend(tls_record(20, &[1]));
    v.extend(tls_record(23, &[0xbb; 1200]));
    v
}

// ---------------------------------------------------------------- text protocols

pub fn sip_request(method: &str, transport: &str) -> Vec<u8> {
    format!(
        "{method} sip:imp.example.com SIP/2.0\r\nVia: SIP/2.0/{transport} 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\nTo: <sip:imp.example.com>\r\nFrom: <sip:cucm.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub fn sip_response() -> Vec<u8> {
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\nCSeq: 1 OPTIONS\r\n\
      Content-Length: 0\r\n\r\n"
        .to_vec()
}

pub fn http_request(method: &str, host: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flowdoc-fixture\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn http_response() -> Vec<u8> {
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 0\r\n\r\n".to_vec()
}

/// BOSH session creation (XEP-0124/0206).
pub fn bosh_request() -> Vec<u8> {
    http_request(
        "POST",
        "imp.example.com:7335",
        "/httpbinding",
        "<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='example.com' \
         wait='60' xml:lang='en' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' \
         xmlns:xmpp='urn:xmpp:xbosh'/>",
    )
}

pub fn xmpp_stream(ns: &str, to: &str) -> Vec<u8> {
    format!(
        "<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xml:lang='en' \
         xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    .into_bytes()
}

pub fn xmpp_features_starttls(ns: &str) -> Vec<u8> {
    let mut v = format!(
        "<?xml version='1.0'?><stream:stream from='example.com' id='c2s_123' version='1.0' \
         xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    .into_bytes();
    v.extend_from_slice(
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
          </stream:features>",
    );
    v
}

pub const XMPP_STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
pub const XMPP_PROCEED: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

pub fn ssh_banner(software: &str) -> Vec<u8> {
    format!("SSH-2.0-{software}\r\n").into_bytes()
}

pub fn redis_command(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

// ---------------------------------------------------------------- BER protocols

/// LDAP simple bind (anonymous) and its success response.
pub fn ldap_bind() -> (Vec<u8>, Vec<u8>) {
    let req = ber(
        0x30,
        &cat(&[
            int(1),
            ber(
                0x60,
                &cat(&[
                    int(3),
                    ber(0x04, b"cn=imp,dc=example,dc=com"),
                    ber(0x80, b""),
                ]),
            ),
        ]),
    );
    let resp = ber(
        0x30,
        &cat(&[
            int(1),
            ber(
                0x61,
                &cat(&[ber(0x0a, &[0]), ber(0x04, b""), ber(0x04, b"")]),
            ),
        ]),
    );
    (req, resp)
}

fn varbind_null(oid: &[u8]) -> Vec<u8> {
    ber(0x30, &ber(0x30, &cat(&[ber(0x06, oid), vec![0x05, 0x00]])))
}

const SYS_DESCR: &[u8] = &[0x2b, 6, 1, 2, 1, 1, 1, 0];

fn pdu(tag: u8) -> Vec<u8> {
    ber(
        tag,
        &cat(&[int(7), int(0), int(0), varbind_null(SYS_DESCR)]),
    )
}

/// SNMPv1 or v2c message (`version` 0 or 1) with the given PDU tag.
pub fn snmp_v1v2(version: u8, pdu_tag: u8) -> Vec<u8> {
    ber(
        0x30,
        &cat(&[int(version), ber(0x04, b"public"), pdu(pdu_tag)]),
    )
}

/// SNMPv3 GetRequest, noAuthNoPriv, USM.
pub fn snmp_v3_get() -> Vec<u8> {
    let header = ber(
        0x30,
        &cat(&[
            int(9),
            ber(0x02, &[0x00, 0xff, 0xe3]),
            ber(0x04, &[0x04]),
            int(3),
        ]),
    );
    let usm = ber(
        0x30,
        &cat(&[
            ber(0x04, b""),
            int(0),
            int(0),
            ber(0x04, b""),
            ber(0x04, b""),
            ber(0x04, b""),
        ]),
    );
    let scoped = ber(0x30, &cat(&[ber(0x04, b""), ber(0x04, b""), pdu(0xa0)]));
    ber(0x30, &cat(&[int(3), header, ber(0x04, &usm), scoped]))
}

// ---------------------------------------------------------------- binary protocols

/// A DNS query (A, IN) for `name`.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        v.push(label.len() as u8);
        v.extend_from_slice(label.as_bytes());
    }
    v.extend_from_slice(&[0, 0, 1, 0, 1]);
    v
}

/// An NTPv4 client request (mode 3).
pub fn ntp_client() -> Vec<u8> {
    let mut v = vec![0x23, 0, 6, 0xec];
    v.resize(48, 0);
    v[40..48].copy_from_slice(&[0xe9, 0x8f, 0x2c, 0x80, 0, 0, 0, 0]);
    v
}

/// An NTPv4 server answer (mode 4, stratum 2).
pub fn ntp_server() -> Vec<u8> {
    let mut v = vec![0x24, 2, 6, 0xec];
    v.resize(48, 0);
    v[12..16].copy_from_slice(&[10, 0, 0, 1]);
    v
}

/// An IKEv2 IKE_SA_INIT request header with an empty SA payload.
pub fn ikev2_sa_init() -> Vec<u8> {
    let mut v = vec![0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&[33, 0x20, 34, 0x08, 0, 0, 0, 0]);
    v.extend_from_slice(&32u32.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 4]);
    v
}

/// PostgreSQL SSLRequest.
pub fn pg_ssl_request() -> Vec<u8> {
    vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]
}

/// Oracle TNS Connect with its connect descriptor.
pub fn tns_connect() -> Vec<u8> {
    let data = b"(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=imdb)(CID=(PROGRAM=imp)))\
                 (ADDRESS=(PROTOCOL=TCP)(HOST=10.23.0.2)(PORT=1521)))";
    let total = 58 + data.len();
    let mut v = u16be(total).to_vec();
    v.extend_from_slice(&[0, 0, 1, 0, 0, 0]);
    v.extend_from_slice(&[0x01, 0x3a, 0x01, 0x2c, 0x0c, 0x41, 0x20, 0x00, 0xff, 0xff]);
    v.extend_from_slice(&[0x7f, 0x08, 0, 0, 0x01, 0x00]);
    v.extend_from_slice(&u16be(data.len()));
    v.extend_from_slice(&u16be(58));
    v.resize(58, 0);
    v.extend_from_slice(data);
    v
}

/// MS SQL TDS PreLogin: VERSION and ENCRYPTION options.
pub fn tds_prelogin() -> Vec<u8> {
    let options = [0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xff];
    let data = [0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x02];
    let len = 8 + options.len() + data.len();
    let mut v = vec![0x12, 0x01];
    v.extend_from_slice(&u16be(len));
    v.extend_from_slice(&[0, 0, 1, 0]);
    v.extend_from_slice(&options);
    v.extend_from_slice(&data);
    v
}

/// Java RMI (JRMP) stream protocol header, and the server's ProtocolAck.
pub fn rmi() -> (Vec<u8>, Vec<u8>) {
    let mut ack = vec![0x4e, 0x00, 0x09];
    ack.extend_from_slice(b"10.21.0.2");
    ack.extend_from_slice(&[0, 0, 0xc3, 0x50]);
    (b"JRMI\x00\x02\x4b".to_vec(), ack)
}

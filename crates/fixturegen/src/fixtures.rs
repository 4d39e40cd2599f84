//! The scenarios checked in under `fixtures/`. Each function returns a file name and its bytes.

use flowdoc_catalogue::{App, Catalogue, Expect, Row, SourcePort, Transport};

use crate::messages as m;
use crate::packet::{self, Ip, ACK, FIN, PSH, SYN};
use crate::write::{self, BlockKind, Frame, Interface, PcapOptions};

/// 2024-05-01T00:00:00Z: all fixtures start here.
pub const EPOCH_NS: i64 = 1_714_521_600_000_000_000;
const MS: i64 = 1_000_000;

/// Builds the frames of one conversation; `wrap` turns an IP packet into a link-layer frame.
struct Conv<'w> {
    frames: Vec<Frame>,
    t: i64,
    wrap: &'w dyn Fn(Vec<u8>) -> Vec<u8>,
    interface: u32,
}

impl<'w> Conv<'w> {
    fn new(t: i64, wrap: &'w dyn Fn(Vec<u8>) -> Vec<u8>) -> Conv<'w> {
        Conv {
            frames: Vec::new(),
            t,
            wrap,
            interface: 0,
        }
    }
    fn push(&mut self, ip: Vec<u8>) {
        self.t += MS;
        let mut f = Frame::new(self.t, (self.wrap)(ip));
        f.interface = self.interface;
        self.frames.push(f);
    }
    /// A whole TCP connection: handshake, a request and an answer of filler, FIN both ways.
    fn tcp_session(&mut self, c: Ip, s: Ip, cp: u16, sp: u16) {
        self.tcp_dialogue(
            c,
            s,
            cp,
            sp,
            &[(true, vec![0x42; 100]), (false, vec![0x43; 60])],
        );
    }
    /// A TCP connection carrying `msgs` (true: from the client), each message in segments of
    /// at most 1400 bytes; handshake first, FIN both ways last.
    fn tcp_dialogue(&mut self, c: Ip, s: Ip, cp: u16, sp: u16, msgs: &[(bool, Vec<u8>)]) {
        let (mut cs, mut ss) = (1000u32, 5000u32);
        self.push(packet::tcp(c, s, cp, sp, SYN, cs, &[]));
        self.push(packet::tcp(s, c, sp, cp, SYN | ACK, ss, &[]));
        cs += 1;
        ss += 1;
        self.push(packet::tcp(c, s, cp, sp, ACK, cs, &[]));
        for (from_client, m) in msgs {
            for chunk in m.chunks(1400) {
                if *from_client {
                    self.push(packet::tcp(c, s, cp, sp, PSH | ACK, cs, chunk));
                    cs = cs.wrapping_add(chunk.len() as u32);
                } else {
                    self.push(packet::tcp(s, c, sp, cp, PSH | ACK, ss, chunk));
                    ss = ss.wrapping_add(chunk.len() as u32);
                }
            }
        }
        self.push(packet::tcp(c, s, cp, sp, FIN | ACK, cs, &[]));
        self.push(packet::tcp(s, c, sp, cp, FIN | ACK, ss, &[]));
        self.push(packet::tcp(c, s, cp, sp, ACK, cs + 1, &[]));
    }
    fn udp_dialogue(&mut self, c: Ip, s: Ip, cp: u16, sp: u16, msgs: &[(bool, Vec<u8>)]) {
        for (from_client, m) in msgs {
            if *from_client {
                self.push(packet::udp(c, s, cp, sp, m));
            } else {
                self.push(packet::udp(s, c, sp, cp, m));
            }
        }
    }
    fn udp_exchange(&mut self, c: Ip, s: Ip, cp: u16, sp: u16) {
        self.udp_dialogue(
            c,
            s,
            cp,
            sp,
            &[(true, vec![0x51; 60]), (false, vec![0x52; 80])],
        );
    }
    fn ping(&mut self, c: Ip, s: Ip, id: u16) {
        self.push(packet::echo(c, s, id, 1, false));
        self.push(packet::echo(s, c, id, 1, true));
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Ip {
    Ip::V4([a, b, c, d])
}

fn v6(last: u16) -> Ip {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[14..].copy_from_slice(&last.to_be_bytes());
    Ip::V6(a)
}

fn eth(ip: Vec<u8>) -> Vec<u8> {
    packet::ethernet(&ip, &[])
}

/// Every row of the guide, once per transport it lists, plus undocumented traffic and a
/// localhost-only port crossing the network. Rows the guide marks localhost-only are sent
/// between loopback addresses, as the guide intends.
/// The cluster's conversations: each catalogue row and transport with its client and server
/// addresses, ports, and a running number.
struct Seat<'a> {
    row: &'a Row,
    t: Transport,
    ci: Ip,
    si: Ip,
    cp: u16,
    sp: u16,
    n: u16,
}

fn seats(cat: &Catalogue) -> Vec<Seat<'_>> {
    let mut out = Vec::new();
    let mut n: u16 = 0;
    for row in cat.rows() {
        for &t in &row.transports {
            n += 1;
            let (ci, si) = if row.localhost_only {
                (v4(127, 0, 0, 1), v4(127, 0, 0, 1))
            } else {
                (
                    v4(10, row.table, (n >> 8) as u8, n as u8),
                    v4(10, 100 + row.table, (n >> 8) as u8, n as u8),
                )
            };
            let cp = match row.source_port {
                SourcePort::Fixed(p) => p,
                _ => 51_000 + n,
            };
            let sp = row.ports.first().copied().unwrap_or(40_000 + n);
            out.push(Seat {
                row,
                t,
                ci,
                si,
                cp,
                sp,
                n,
            });
        }
    }
    out
}

/// A network of XMPP clients and a desk with only a browser: the two hosts that break the
/// guide's roles in the cluster (one opens XCP S2S, the other LDAP).
const CLIENT_NET: [u8; 4] = [10, 250, 0, 7];
const BROWSER_DESK: [u8; 4] = [10, 251, 0, 9];

pub fn cluster(cat: &Catalogue) -> (String, Vec<u8>) {
    let wrap = eth;
    let mut c = Conv::new(EPOCH_NS, &wrap);
    for s in seats(cat) {
        let (row, t, ci, si, cp, sp, n) = (s.row, s.t, s.ci, s.si, s.cp, s.sp, s.n);
        let talk = row.payload.map(|e| dialogue(e, row, t));
        match (t, talk) {
            (Transport::Tcp, Some(m)) => c.tcp_dialogue(ci, si, cp, sp, &m),
            (Transport::Udp, Some(m)) => c.udp_dialogue(ci, si, cp, sp, &m),
            (Transport::Tcp, None) => c.tcp_session(ci, si, cp, sp),
            (Transport::Udp, None) => c.udp_exchange(ci, si, cp, sp),
            (Transport::Icmp, _) => c.ping(ci, si, n),
        }
    }
    // Against the inventory's roles: a client network opening XCP S2S to an IM and Presence
    // node, and a desk that is not IM and Presence binding to the directory.
    let server_of = |id: &str| {
        seats(cat)
            .into_iter()
            .find(|s| s.row.id == id)
            .map(|s| s.si)
    };
    if let (Some(imp), Some(ldap)) = (server_of("T22.2"), server_of("T5.1")) {
        let [a, b, cc, d] = CLIENT_NET;
        let s2s = dialogue(
            Expect::parse("xmpp").expect("xmpp"),
            cat_row(cat, "T22.2"),
            Transport::Tcp,
        );
        c.tcp_dialogue(v4(a, b, cc, d), imp, 52_010, 5269, &s2s);
        let [a, b, cc, d] = BROWSER_DESK;
        let (q, r) = m::ldap_bind();
        c.tcp_dialogue(v4(a, b, cc, d), ldap, 52_011, 389, &[(true, q), (false, r)]);
    }
    // Undocumented: a TCP service on 9999, UDP on 40000, DNS over TCP (the guide lists UDP),
    // ICMPv6 echo; and the IDS port 1500 (localhost only) between two hosts.
    c.tcp_session(v4(10, 200, 0, 1), v4(10, 200, 0, 2), 52_001, 9999);
    c.udp_exchange(v4(10, 200, 0, 3), v4(10, 200, 0, 4), 52_002, 40_000);
    c.tcp_session(v4(10, 200, 0, 5), v4(10, 200, 0, 6), 52_003, 53);
    c.ping(v6(1), v6(2), 77);
    c.tcp_session(v4(10, 201, 0, 1), v4(10, 201, 0, 2), 52_004, 1500);
    (
        "cluster.pcap".into(),
        write::pcap(&PcapOptions::ethernet(), &c.frames),
    )
}

/// A conversation: each message, true when the client sent it.
pub type Talk = Vec<(bool, Vec<u8>)>;

fn cat_row<'a>(cat: &'a Catalogue, id: &str) -> &'a Row {
    cat.rows()
        .iter()
        .find(|r| r.id == id)
        .expect("the embedded catalogue has the row")
}

/// The cluster's inventory: every address of `cluster.pcap` named after the role its row gives
/// it (IM and Presence nodes, CUCM, the directory, clients, ...), plus the client network and
/// the browser desk that break those roles.
pub fn cluster_inventory(cat: &Catalogue) -> (String, Vec<u8>) {
    let mut hosts: Vec<(String, String, Vec<&'static str>)> = Vec::new();
    let add =
        |ip: Ip, cell: &str, n: &str, hosts: &mut Vec<(String, String, Vec<&'static str>)>| {
            let Ip::V4(a) = ip else { return };
            if a[0] == 127 {
                return;
            }
            let addr = format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
            if hosts.iter().any(|h| h.1 == addr) {
                return;
            }
            let roles: Vec<&'static str> = flowdoc_inventory::cell_roles(cell)
                .unwrap_or_default()
                .iter()
                .map(|r| r.as_str())
                .collect();
            let kind = match roles.first().copied() {
                Some("imp-publisher" | "imp-subscriber") => "imp",
                Some(r) => r,
                None => "host",
            };
            hosts.push((format!("{kind}-{n}"), addr, roles));
        };
    for s in seats(cat) {
        add(s.ci, &s.row.from, &format!("{}-src", s.n), &mut hosts);
        add(s.si, &s.row.to, &s.n.to_string(), &mut hosts);
    }
    let mut t = String::from(
        "# The cluster fixture's inventory (written by flowdoc-fixturegen): each address of\n\
         # cluster.pcap with the role its catalogue row gives it.\n\
         name = \"cluster fixture\"\n",
    );
    for (name, addr, roles) in &hosts {
        let roles: Vec<String> = roles.iter().map(|r| format!("{r:?}")).collect();
        t.push_str(&format!(
            "\n[[host]]\nname = {name:?}\naddress = {addr:?}\nroles = [{}]\n",
            roles.join(", ")
        ));
    }
    let [a, b, _, _] = CLIENT_NET;
    t.push_str(&format!(
        "\n[[network]]\nname = \"xmpp-clients\"\ncidr = \"{a}.{b}.0.0/16\"\nroles = [\"xmpp-client\", \"browser\"]\n"
    ));
    let [a, b, cc, d] = BROWSER_DESK;
    t.push_str(&format!(
        "\n[[host]]\nname = \"browser-desk\"\naddress = \"{a}.{b}.{cc}.{d}\"\nroles = [\"browser\"]\n"
    ));
    ("cluster-inventory.toml".into(), t.into_bytes())
}

/// What a row's protocol says on the wire: the messages of one conversation, in order
/// (true: from the client). TLS rows get a TLS 1.2 handshake, with a client certificate
/// where the guide documents mutual authentication, or TLS 1.3.
pub(crate) fn dialogue(e: Expect, row: &Row, t: Transport) -> Talk {
    let udp = t == Transport::Udp;
    if e.tls {
        let mutual = row.label.contains("mutual");
        if e.app == Some(App::Sip) {
            return tls12(mutual, true, "imp.example.com");
        }
        return tls13("imp.example.com");
    }
    let Some(app) = e.app else {
        return Vec::new();
    };
    match app {
        App::Sip => vec![
            (
                true,
                m::sip_request("OPTIONS", if udp { "UDP" } else { "TCP" }),
            ),
            (false, m::sip_response()),
        ],
        App::Http if row.label.contains("BOSH") => {
            vec![(true, m::bosh_request()), (false, m::http_response())]
        }
        App::Http => vec![
            (true, m::http_request("GET", "imp.example.com", "/", "")),
            (false, m::http_response()),
        ],
        App::Ldap => {
            let (q, a) = m::ldap_bind();
            vec![(true, q), (false, a)]
        }
        App::Snmp if row.label.contains("trap") => vec![(true, m::snmp_v1v2(1, 0xa7))],
        App::Snmp => vec![
            (true, m::snmp_v1v2(1, 0xa0)),
            (false, m::snmp_v1v2(1, 0xa2)),
        ],
        App::Isakmp => vec![(true, m::ikev2_sa_init())],
        App::Dns => vec![(true, m::dns_query(0x1234, "imp.example.com"))],
        App::Mdns => vec![(true, m::dns_query(0, "_presence._tcp.local"))],
        App::Ntp => vec![(true, m::ntp_client()), (false, m::ntp_server())],
        App::Ssh => vec![
            (false, m::ssh_banner("OpenSSH_8.0")),
            (true, m::ssh_banner("OpenSSH_9.6")),
        ],
        App::Rmi => {
            let (q, a) = m::rmi();
            vec![(true, q), (false, a)]
        }
        App::Xmpp if row.label.contains("S2S") => vec![
            (true, m::xmpp_stream("jabber:server", "example.org")),
            (false, m::xmpp_features_starttls("jabber:server")),
            (true, m::XMPP_STARTTLS.to_vec()),
            (false, m::XMPP_PROCEED.to_vec()),
            (true, m::client_hello("example.org", &["xmpp-server"], true)),
        ],
        App::Xmpp => vec![
            (true, m::xmpp_stream("jabber:client", "example.com")),
            (false, m::xmpp_features_starttls("jabber:client")),
            (true, m::XMPP_STARTTLS.to_vec()),
            (false, m::XMPP_PROCEED.to_vec()),
            (true, m::client_hello("example.com", &["xmpp-client"], true)),
        ],
        App::Pgsql => vec![
            (true, m::pg_ssl_request()),
            (false, b"S".to_vec()),
            (
                true,
                m::client_hello("db.example.com", &["postgresql"], true),
            ),
        ],
        App::Tns => vec![(true, m::tns_connect())],
        App::Tds => vec![(true, m::tds_prelogin())],
        App::Redis => vec![
            (true, m::redis_command(&["PING"])),
            (false, b"+PONG\r\n".to_vec()),
        ],
        App::Tls | App::Icmp => Vec::new(),
    }
}

/// A TLS 1.2 handshake; the server asks for a certificate when `ask`, and the client sends one
/// when `send`.
fn tls12(ask: bool, send: bool, sni: &str) -> Talk {
    vec![
        (true, m::client_hello(sni, &[], false)),
        (false, m::server_flight_12(ask)),
        (true, m::client_flight_12(ask, send)),
        (false, m::server_finish_12()),
    ]
}

fn tls13(sni: &str) -> Talk {
    vec![
        (true, m::client_hello(sni, &["h2", "http/1.1"], true)),
        (false, m::server_flight_13()),
        (true, m::tls_record(23, &[0xcc; 300])),
    ]
}

/// Payload checks at work: TLS with and without client certificates (one ClientHello split,
/// reordered and retransmitted), plaintext where TLS is documented, bytes that are not SIP on
/// 5060, a SIP keepalive, SNMP v1 and v3, Redis, and an undocumented HTTP service on 9999.
pub fn payloads() -> (String, Vec<u8>) {
    let wrap = eth;
    let mut c = Conv::new(EPOCH_NS, &wrap);
    let cli = |n: u8| v4(10, 50, 0, n);
    let imp = |n: u8| v4(10, 60, 0, n);
    // 5061 server authentication; the ClientHello arrives in three segments, the third before
    // the second, the first twice.
    {
        let (cp, sp) = (53_001, 5061);
        let (ci, si) = (cli(1), imp(1));
        let hello = m::client_hello("imp.example.com", &[], false);
        let parts = [&hello[..40], &hello[40..100], &hello[100..]];
        c.push(packet::tcp(ci, si, cp, sp, SYN, 1000, &[]));
        c.push(packet::tcp(si, ci, sp, cp, SYN | ACK, 5000, &[]));
        c.push(packet::tcp(ci, si, cp, sp, ACK, 1001, &[]));
        c.push(packet::tcp(ci, si, cp, sp, PSH | ACK, 1001, parts[0]));
        c.push(packet::tcp(ci, si, cp, sp, PSH | ACK, 1101, parts[2]));
        c.push(packet::tcp(ci, si, cp, sp, PSH | ACK, 1001, parts[0]));
        c.push(packet::tcp(ci, si, cp, sp, PSH | ACK, 1041, parts[1]));
        let mut ss = 5001u32;
        for msg in [m::server_flight_12(false), m::server_finish_12()] {
            for chunk in msg.chunks(1400) {
                c.push(packet::tcp(si, ci, sp, cp, PSH | ACK, ss, chunk));
                ss += chunk.len() as u32;
            }
        }
        let cs = 1001 + hello.len() as u32;
        c.push(packet::tcp(
            ci,
            si,
            cp,
            sp,
            PSH | ACK,
            cs,
            &m::client_flight_12(false, false),
        ));
    }
    // 5062 mutual authentication: a client certificate; then one asked but not given.
    c.tcp_dialogue(
        cli(2),
        imp(2),
        53_002,
        5062,
        &tls12(true, true, "imp2.example.com"),
    );
    c.tcp_dialogue(
        cli(3),
        imp(3),
        53_003,
        5062,
        &tls12(true, false, "imp3.example.com"),
    );
    // Plaintext where the guide documents TLS: HTTP and SIP on 5061.
    let get = m::http_request("GET", "imp.example.com:5061", "/", "");
    c.tcp_dialogue(
        cli(4),
        imp(4),
        53_004,
        5061,
        &[(true, get), (false, m::http_response())],
    );
    let invite = m::sip_request("INVITE", "TCP");
    c.tcp_dialogue(
        cli(5),
        imp(5),
        53_005,
        5061,
        &[(true, invite), (false, m::sip_response())],
    );
    // Not SIP on 5060 (a WireGuard-sized handshake of opaque bytes), and a SIP keepalive.
    let mut wg = vec![1, 0, 0, 0];
    wg.extend((0..144u32).map(|i| (i.wrapping_mul(97) ^ 0x5c) as u8));
    c.udp_dialogue(cli(6), imp(6), 53_006, 5060, &[(true, wg)]);
    c.tcp_dialogue(
        cli(7),
        imp(7),
        53_007,
        5060,
        &[(true, b"\r\n\r\n".to_vec()), (false, b"\r\n".to_vec())],
    );
    // SNMPv1 get and SNMPv3 get to the agent.
    c.udp_dialogue(
        cli(8),
        imp(8),
        53_008,
        161,
        &[(true, m::snmp_v1v2(0, 0xa0))],
    );
    c.udp_dialogue(cli(9), imp(9), 53_009, 161, &[(true, m::snmp_v3_get())]);
    // Redis on 6379 (the guide's MFT row names no protocol), an undocumented HTTP service.
    c.tcp_dialogue(
        cli(10),
        imp(10),
        53_010,
        6379,
        &[
            (true, m::redis_command(&["SET", "k", "v"])),
            (false, b"+OK\r\n".to_vec()),
        ],
    );
    let get = m::http_request("GET", "tools.example.com:9999", "/status", "");
    c.tcp_dialogue(
        cli(11),
        imp(11),
        53_011,
        9999,
        &[(true, get), (false, m::http_response())],
    );
    (
        "payloads.pcap".into(),
        write::pcap(&PcapOptions::ethernet(), &c.frames),
    )
}

/// One XMPP client session per link type, VLAN and QinQ frames, SPB and OPB blocks, an ARP
/// frame and an unknown block, in one multi-interface pcapng (interface 1 has ns timestamps).
pub fn links() -> (String, Vec<u8>) {
    let ifs = [
        Interface {
            link_type: 1,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 113,
            tsresol_exp: 9,
        },
        Interface {
            link_type: 276,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 101,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 0,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 9,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 228,
            tsresol_exp: 6,
        },
        Interface {
            link_type: 229,
            tsresol_exp: 6,
        },
    ];
    let wraps: [&dyn Fn(Vec<u8>) -> Vec<u8>; 8] = [
        &|ip| packet::ethernet(&ip, &[]),
        &|ip| packet::sll(&ip),
        &|ip| packet::sll2(&ip),
        &|ip| ip,
        &|ip| packet::null(&ip),
        &|ip| packet::ppp(&ip),
        &|ip| ip,
        &|ip| ip,
    ];
    let mut frames: Vec<(BlockKind, Frame)> = Vec::new();
    for (i, w) in wraps.iter().enumerate() {
        let mut c = Conv::new(EPOCH_NS + i as i64 * 100 * MS, *w);
        c.interface = i as u32;
        let k = i as u8 + 1;
        if i == 7 {
            c.tcp_session(
                v6(0x10 + u16::from(k)),
                v6(0x20 + u16::from(k)),
                53_000 + u16::from(k),
                5222,
            );
        } else {
            c.tcp_session(
                v4(172, 16, k, 1),
                v4(172, 16, k, 2),
                53_000 + u16::from(k),
                5222,
            );
        }
        frames.extend(c.frames.into_iter().map(|f| (BlockKind::Enhanced, f)));
    }
    let vlan = |ip: Vec<u8>| packet::ethernet(&ip, &[100]);
    let mut c = Conv::new(EPOCH_NS + 900 * MS, &vlan);
    c.udp_exchange(v4(172, 17, 0, 1), v4(172, 17, 0, 2), 53_100, 5060);
    frames.extend(c.frames.into_iter().map(|f| (BlockKind::Enhanced, f)));
    let qinq = |ip: Vec<u8>| packet::ethernet(&ip, &[200, 300]);
    let mut c = Conv::new(EPOCH_NS + 950 * MS, &qinq);
    c.udp_exchange(v4(172, 18, 0, 1), v4(172, 18, 0, 2), 53_101, 5060);
    frames.extend(c.frames.into_iter().map(|f| (BlockKind::Enhanced, f)));
    let e = eth;
    let mut c = Conv::new(EPOCH_NS + 980 * MS, &e);
    c.udp_exchange(v4(172, 19, 0, 1), v4(172, 19, 0, 2), 53_102, 123);
    let mut it = c.frames.into_iter();
    if let (Some(a), Some(b)) = (it.next(), it.next()) {
        frames.push((BlockKind::Simple, a));
        frames.push((BlockKind::Obsolete, b));
    }
    let arp = packet::ethernet_raw(
        0x0806,
        &[
            0, 1, 8, 0, 6, 4, 0, 1, 0, 0x1b, 0x54, 0, 0, 1, 172, 19, 0, 1, 0, 0, 0, 0, 0, 0, 172,
            19, 0, 2,
        ],
    );
    frames.push((BlockKind::Enhanced, Frame::new(EPOCH_NS + 990 * MS, arp)));
    ("links.pcapng".into(), write::pcapng(&ifs, &frames))
}

/// XMPP S2S in IP-in-IP, XMPP client over IPv6 in 6in4, SIP in GRE.
pub fn tunnels() -> (String, Vec<u8>) {
    let (o1, o2) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let ipip = move |ip: Vec<u8>| eth(packet::ip_carrying(Ip::V4(o1), Ip::V4(o2), 4, &ip));
    let sixin4 = move |ip: Vec<u8>| eth(packet::ip_carrying(Ip::V4(o1), Ip::V4(o2), 41, &ip));
    let gre = move |ip: Vec<u8>| {
        eth(packet::ip_carrying(
            Ip::V4(o1),
            Ip::V4(o2),
            47,
            &packet::gre(0x0800, &ip),
        ))
    };
    let mut frames = Vec::new();
    let mut c = Conv::new(EPOCH_NS, &ipip);
    c.tcp_session(v4(10, 50, 0, 1), v4(10, 60, 0, 1), 54_001, 5269);
    frames.extend(c.frames);
    let mut c = Conv::new(EPOCH_NS + 100 * MS, &sixin4);
    c.tcp_session(v6(0x501), v6(0x601), 54_002, 5222);
    frames.extend(c.frames);
    let mut c = Conv::new(EPOCH_NS + 200 * MS, &gre);
    c.udp_exchange(v4(10, 50, 0, 2), v4(10, 60, 0, 2), 54_003, 5060);
    frames.extend(c.frames);
    (
        "tunnels.pcap".into(),
        write::pcap(&PcapOptions::ethernet(), &frames),
    )
}

/// A large SNMP request split into three IPv4 fragments, delivered last fragment first,
/// and its unfragmented answer.
pub fn fragments() -> (String, Vec<u8>) {
    let (c, s) = (v4(10, 12, 0, 1), v4(10, 112, 0, 1));
    let big = packet::udp(c, s, 55_001, 161, &[0x30; 2900]);
    let mut frags: Vec<Vec<u8>> = packet::fragment_v4(&big, 1480, 0x4242);
    frags.rotate_right(1);
    let mut frames: Vec<Frame> = frags
        .into_iter()
        .enumerate()
        .map(|(i, ip)| Frame::new(EPOCH_NS + i as i64 * MS, eth(ip)))
        .collect();
    frames.push(Frame::new(
        EPOCH_NS + 5 * MS,
        eth(packet::udp(s, c, 161, 55_001, &[0x30; 100])),
    ));
    (
        "fragments.pcap".into(),
        write::pcap(&PcapOptions::ethernet(), &frames),
    )
}

/// Flows whose start was not captured, a lost SYN, and a port reused after FIN: each decides
/// its initiator by a different rule.
fn midstream_frames() -> Vec<Frame> {
    let e = eth;
    let mut c = Conv::new(EPOCH_NS, &e);
    let (a, b) = (v4(10, 70, 0, 1), v4(10, 70, 0, 2));
    // The server on 5061 speaks first: the catalogue names the client.
    c.push(packet::tcp(b, a, 5061, 56_001, PSH | ACK, 1, &[0x17; 50]));
    c.push(packet::tcp(a, b, 56_001, 5061, ACK, 1, &[]));
    // Undocumented 443 against an ephemeral port: the well-known port names the server.
    c.push(packet::tcp(b, a, 443, 56_002, PSH | ACK, 1, &[0x17; 50]));
    // Two ephemeral, undocumented ports: the first sender is taken as the initiator.
    c.push(packet::tcp(a, b, 56_003, 40_001, ACK, 1, &[1; 10]));
    c.push(packet::tcp(b, a, 40_001, 56_003, ACK, 1, &[]));
    // The SYN was lost; the SYN-ACK names its receiver as the initiator.
    c.push(packet::tcp(b, a, 5222, 56_004, SYN | ACK, 1, &[]));
    c.push(packet::tcp(a, b, 56_004, 5222, ACK, 1, &[]));
    // An NTP answer seen before its question.
    c.push(packet::udp(b, a, 123, 56_005, &[0x24; 48]));
    c.push(packet::udp(a, b, 56_005, 123, &[0x23; 48]));
    // The same 5-tuple twice: FIN both ways, then a new SYN.
    c.tcp_session(a, b, 56_006, 5269);
    c.tcp_session(a, b, 56_006, 5269);
    c.frames
}

pub fn midstream() -> (String, Vec<u8>) {
    (
        "midstream.pcap".into(),
        write::pcap(&PcapOptions::ethernet(), &midstream_frames()),
    )
}

/// The midstream scenario again as a gzip-compressed, big-endian, nanosecond pcap.
pub fn midstream_gz() -> (String, Vec<u8>) {
    let o = PcapOptions {
        nanos: true,
        big_endian: true,
        ..PcapOptions::ethernet()
    };
    (
        "midstream-ns-be.pcap.gz".into(),
        write::gzip(&write::pcap(&o, &midstream_frames())),
    )
}

/// Every fixture, in a fixed order.
pub fn all(cat: &Catalogue) -> Vec<(String, Vec<u8>)> {
    let mut v = vec![
        cluster(cat),
        cluster_inventory(cat),
        payloads(),
        links(),
        tunnels(),
        fragments(),
        midstream(),
        midstream_gz(),
    ];
    v.extend(broken());
    v
}

/// One good XMPP session (8 packets) framed as Ethernet.
fn good_session() -> Vec<Frame> {
    let e = eth;
    let mut c = Conv::new(EPOCH_NS, &e);
    c.tcp_session(v4(10, 90, 0, 1), v4(10, 90, 0, 2), 57_001, 5222);
    c.frames
}

/// A good session with one bad frame inserted as record 3.
fn with_bad_frame(bad: Vec<u8>) -> Vec<u8> {
    let mut frames = good_session();
    frames.insert(2, Frame::new(EPOCH_NS + MS / 2, bad));
    write::pcap(&PcapOptions::ethernet(), &frames)
}

/// Byte offset of record `n` (1-based) in a classic pcap.
fn record_offset(pcap: &[u8], n: usize) -> usize {
    let mut at = 24;
    for _ in 1..n {
        let caplen = u32::from_le_bytes([pcap[at + 8], pcap[at + 9], pcap[at + 10], pcap[at + 11]]);
        at += 16 + caplen as usize;
    }
    at
}

/// Files broken in the ways TAC captures are broken; `tests/broken.rs` in the CLI says what
/// flowdoc must do with each.
pub fn broken() -> Vec<(String, Vec<u8>)> {
    let good = write::pcap(&PcapOptions::ethernet(), &good_session());
    let mut out = Vec::new();

    out.push((
        "broken/truncated-last-record.pcap".into(),
        good[..good.len() - 10].to_vec(),
    ));

    let mut big = good.clone();
    let at = record_offset(&big, 5) + 8;
    big[at..at + 4].copy_from_slice(&300_000u32.to_le_bytes());
    out.push(("broken/caplen-too-large.pcap".into(), big));

    out.push((
        "broken/zero-length-record.pcap".into(),
        with_bad_frame(Vec::new()),
    ));

    let mut magic = good.clone();
    magic[..4].copy_from_slice(b"XXXX");
    out.push(("broken/bad-magic.pcap".into(), magic));

    let ifs = [Interface {
        link_type: 1,
        tsresol_exp: 6,
    }];
    let ng: Vec<(BlockKind, Frame)> = good_session()
        .into_iter()
        .map(|f| (BlockKind::Enhanced, f))
        .collect();
    let ok_ng = write::pcapng(&ifs, &ng);
    out.push(("broken/unknown-block.pcapng".into(), ok_ng.clone()));
    // Blocks: SHB, IDB, unknown, then packets; spoil the trailing length of the 5th packet block.
    let mut bad_ng = ok_ng;
    let block_len = |b: &[u8], at: usize| {
        u32::from_le_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]) as usize
    };
    let mut at = 0;
    for _ in 0..7 {
        at += block_len(&bad_ng, at);
    }
    let len = block_len(&bad_ng, at);
    bad_ng[at + len - 4..at + len].copy_from_slice(&(len as u32 + 4).to_le_bytes());
    out.push(("broken/trailing-length.pcapng".into(), bad_ng));

    let lt = PcapOptions {
        link_type: 147,
        ..PcapOptions::ethernet()
    };
    out.push((
        "broken/unknown-linktype.pcap".into(),
        write::pcap(&lt, &good_session()),
    ));

    let (a, b) = (v4(10, 91, 0, 1), v4(10, 91, 0, 2));
    let mut ihl = packet::tcp(a, b, 57_002, 5222, SYN, 1, &[]);
    ihl[0] = 0x43;
    out.push(("broken/bad-ihl.pcap".into(), with_bad_frame(eth(ihl))));

    let mut off = packet::tcp(a, b, 57_003, 5222, SYN, 1, &[]);
    off[20 + 12] = 0xf0;
    out.push((
        "broken/tcp-data-offset.pcap".into(),
        with_bad_frame(eth(off)),
    ));

    let vlans: Vec<u16> = (1..=20).collect();
    let mut tagged = packet::ethernet(&packet::tcp(a, b, 57_004, 5222, SYN, 1, &[]), &[]);
    let mut tags = Vec::new();
    for v in vlans {
        tags.extend_from_slice(&[0x81, 0x00]);
        tags.extend_from_slice(&v.to_be_bytes());
    }
    tagged.splice(12..12, tags);
    out.push(("broken/vlan-20.pcap".into(), with_bad_frame(tagged)));

    let n = 200usize;
    let mut v6 = vec![0x60, 0, 0, 0];
    v6.extend_from_slice(&((n * 8) as u16).to_be_bytes());
    v6.extend_from_slice(&[60, 64]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    for _ in 0..n {
        v6.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    }
    out.push((
        "broken/ipv6-extension-chain.pcap".into(),
        with_bad_frame(eth(v6)),
    ));

    let e = eth;
    let mut many = Conv::new(EPOCH_NS, &e);
    for i in 0..50u16 {
        many.tcp_session(v4(10, 92, 0, 1), v4(10, 92, 0, 2), 57_100 + i, 5222);
    }
    let gz = write::gzip(&write::pcap(&PcapOptions::ethernet(), &many.frames));
    out.push(("broken/cut.pcap.gz".into(), gz[..gz.len() / 2].to_vec()));
    out
}

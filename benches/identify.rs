//! Payload identification alone: each protocol's opening, as the flow table hands it over on
//! the first payload packet (client bytes only, from the stream's start), and a TLS handshake
//! decided on the server's answer. Shows which recogniser costs what.
//!
//! Run: `cargo bench -p flowdoc-benches --bench identify`.

use criterion::{criterion_group, criterion_main, Criterion};
use flowdoc_fixturegen::messages as m;
use flowdoc_identify::{identify, Input, Transport};

fn input<'a>(t: Transport, port: u16, c: &'a [u8], s: &'a [u8]) -> Input<'a> {
    Input {
        transport: t,
        ports: [40_000, port],
        data: [c, s],
        client: 0,
        segments: 1 + u32::from(!s.is_empty()),
        last: false,
        from_start: t == Transport::Tcp,
    }
}

/// A case: name, transport, server port, the client's bytes, the server's bytes.
type Case = (&'static str, Transport, u16, Vec<u8>, Vec<u8>);

fn openings(c: &mut Criterion) {
    use Transport::{Tcp, Udp};
    let hello = m::client_hello("imp.example.com", &["h2", "http/1.1"], true);
    let server = m::server_flight_13();
    let (ldap, _) = m::ldap_bind();
    let (rmi, _) = m::rmi();
    let filler = [0x5au8; 1300];
    let cases: Vec<Case> = vec![
        ("tls-client-hello", Tcp, 5061, hello.clone(), vec![]),
        ("tls-handshake", Tcp, 5061, hello, server),
        (
            "sip-tcp",
            Tcp,
            5060,
            m::sip_request("OPTIONS", "TCP"),
            vec![],
        ),
        (
            "sip-udp",
            Udp,
            5060,
            m::sip_request("OPTIONS", "UDP"),
            vec![],
        ),
        (
            "http",
            Tcp,
            8082,
            m::http_request("GET", "imp", "/", ""),
            vec![],
        ),
        (
            "xmpp",
            Tcp,
            5222,
            m::xmpp_stream("jabber:client", "example.com"),
            vec![],
        ),
        ("ldap", Tcp, 389, ldap, vec![]),
        ("snmp", Udp, 161, m::snmp_v1v2(1, 0xa0), vec![]),
        ("dns", Udp, 53, m::dns_query(7, "imp.example.com"), vec![]),
        ("ntp", Udp, 123, m::ntp_client(), vec![]),
        ("ssh", Tcp, 22, m::ssh_banner("OpenSSH_9.6"), vec![]),
        ("tns", Tcp, 1521, m::tns_connect(), vec![]),
        ("rmi", Tcp, 1099, rmi, vec![]),
        ("unknown-tcp", Tcp, 9999, filler.to_vec(), vec![]),
        ("unknown-udp", Udp, 9999, filler.to_vec(), vec![]),
    ];
    let mut g = c.benchmark_group("identify");
    for (name, t, port, client, server) in &cases {
        let i = input(*t, *port, client, server);
        g.bench_function(*name, |b| b.iter(|| identify(std::hint::black_box(&i))));
    }
    g.finish();
}

criterion_group!(benches, openings);
criterion_main!(benches);

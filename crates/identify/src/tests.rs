use super::*;

fn tcp<'a>(c: &'a [u8], s: &'a [u8]) -> Input<'a> {
    Input {
        transport: Transport::Tcp,
        ports: [40000, 5060],
        data: [c, s],
        client: 0,
        segments: 2,
        last: false,
        from_start: false,
    }
}

fn done(i: &Input<'_>) -> Identified {
    match identify(i) {
        Verdict::Done(id) => id,
        Verdict::More => panic!("undecided"),
    }
}

#[test]
fn sip_request_and_response() {
    let id = done(&tcp(
        b"INVITE sip:bob@example.com SIP/2.0\r\n",
        b"SIP/2.0 100 Trying\r\n",
    ));
    assert_eq!(id.app, Some(App::Sip));
    assert_eq!(id.detail().sip_method.as_deref(), Some("INVITE"));
    assert_eq!(id.detail().sip_status, Some(100));
}

#[test]
fn http_is_not_sip_and_bosh_is_flagged() {
    let req = b"POST /httpbinding HTTP/1.1\r\nHost: imp.example.com:7335\r\n\r\n<body/>";
    let id = done(&tcp(req, b"HTTP/1.1 200 OK\r\n\r\n"));
    assert_eq!(id.app, Some(App::Http));
    assert_eq!(
        id.detail().http_host.as_deref(),
        Some("imp.example.com:7335")
    );
    assert_eq!(id.detail().http_path.as_deref(), Some("/httpbinding"));
    assert_eq!(id.detail().bosh, Some(true));
    // The path's prefix in any case; a path that only begins alike is not BOSH.
    for (path, bosh) in [
        ("/HTTP-Bind/x", Some(true)),
        ("/http-bin", None),
        ("/h", None),
    ] {
        let req = format!("POST {path} HTTP/1.1\r\nHost: imp\r\n\r\n");
        let id = done(&tcp(req.as_bytes(), b"HTTP/1.1 200 OK\r\n\r\n"));
        assert_eq!(id.detail().bosh, bosh, "{path}");
    }
}

#[test]
fn a_few_bytes_ask_for_more_and_garbage_is_unknown() {
    assert_eq!(identify(&tcp(b"INV", b"")), Verdict::More);
    let mut i = tcp(&[0x99, 0x12, 0x00, 0x42, 0x17, 0x99, 0x33, 0x80], b"");
    i.segments = 3;
    assert_eq!(identify(&i), Verdict::Done(Identified::default()));
    i.last = true;
    i.data[0] = b"INV";
    assert_eq!(identify(&i), Verdict::Done(Identified::default()));
}

/// Bytes known to start the stream: "not recognised" is final at once, so every recogniser
/// must ask for more when its opening is merely cut short.
#[test]
fn openings_cut_short_at_the_start_of_a_stream_ask_for_more() {
    let start = |c: &'static [u8]| Input {
        from_start: true,
        segments: 1,
        ..tcp(c, b"")
    };
    assert_eq!(
        identify(&start(&[0x99, 0x12, 0x00, 0x42, 0x17])),
        Verdict::Done(Identified::default())
    );
    // An XML declaration in a segment of its own (jabber.pcap).
    assert_eq!(identify(&start(b"<?xml version='1.0' ?>")), Verdict::More);
    // A request line cut by the snap length or the segment (communityid-tcp-snaplen96.pcap).
    assert_eq!(
        identify(&start(b"GET /images/sf.net_box.gif HTT")),
        Verdict::More
    );
    assert_eq!(
        identify(&start(b"REGISTER sip:imp.example.com")),
        Verdict::More
    );
}

/// An SSL 2.0-compatible ClientHello offering TLS 1.0 (google_ssl.pcap's client): TLS, and
/// the server's records will say which version was chosen.
#[test]
fn sslv2_compatible_client_hello_is_tls() {
    let mut hello = vec![
        0x80, 0x00, 0x01, 0x03, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x10,
    ];
    hello.extend_from_slice(&[0x00, 0x00, 0x39, 0x00, 0x00, 0x2f]);
    hello.extend_from_slice(&[0xab; 16]);
    hello[1] = (hello.len() - 2) as u8;
    let mut i = tcp(&hello, b"");
    assert_eq!(identify(&i), Verdict::More);
    i.last = true;
    assert_eq!(done(&i).app, Some(App::Tls));
    // The same bytes with lengths that do not add up are not.
    let mut bad = hello.clone();
    bad[1] += 1;
    i.data[0] = &bad;
    assert_eq!(done(&i).app, None);
}

#[test]
fn xmpp_namespace_and_starttls() {
    let c = b"<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:server' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    let s = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
              id='1' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\
              <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    let id = done(&tcp(c, s));
    assert_eq!(id.app, Some(App::Xmpp));
    assert_eq!(id.detail().xmpp_ns.as_deref(), Some("jabber:server"));
    assert_eq!(id.detail().starttls.as_deref(), Some("taken"));
}

#[test]
fn ssh_banners_by_side() {
    let id = done(&tcp(b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_8.0\r\n"));
    assert_eq!(id.app, Some(App::Ssh));
    assert_eq!(
        id.detail().ssh_client.as_deref(),
        Some("SSH-2.0-OpenSSH_9.6")
    );
    assert_eq!(
        id.detail().ssh_server.as_deref(),
        Some("SSH-2.0-OpenSSH_8.0")
    );
}

#[test]
fn ssh_server_lines_before_its_banner() {
    // RFC 4253 4.2: the server may send other lines first; the client starts with its own.
    let id = done(&Input {
        last: true,
        ..tcp(
            b"hello\r\nSSH-2.0-OpenSSH_9.6\r\n",
            b"Welcome to imp1\r\nAuthorised use only\r\nSSH-2.0-OpenSSH_8.0\r\n",
        )
    });
    assert_eq!(id.app, Some(App::Ssh));
    assert_eq!(id.detail().ssh_client, None);
    assert_eq!(
        id.detail().ssh_server.as_deref(),
        Some("SSH-2.0-OpenSSH_8.0")
    );
}

#[test]
fn postgres_ssl_request_taken() {
    let id = done(&tcp(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], b"S"));
    assert_eq!(id.app, Some(App::Pgsql));
    assert_eq!(id.detail().starttls.as_deref(), Some("taken"));
}

#[test]
fn redis_command() {
    let id = done(&tcp(
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
        b"+OK\r\n",
    ));
    assert_eq!(id.app, Some(App::Redis));
    assert_eq!(id.detail().redis_command.as_deref(), Some("SET"));
    // Written in capitals whatever the client sent.
    let id = done(&tcp(b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n", b"$-1\r\n"));
    assert_eq!(id.detail().redis_command.as_deref(), Some("GET"));
}

#[test]
fn rmi_magic() {
    let id = done(&tcp(b"JRMI\x00\x02\x4b", b""));
    assert_eq!(id.app, Some(App::Rmi));
}

#[test]
fn app_names_round_trip() {
    for a in App::ALL {
        assert_eq!(App::from_name(a.as_str()), Some(a));
    }
}

#[test]
fn wire_text_is_lossy_and_cut_at_max_text_characters() {
    // What `text` has always meant: lossy UTF-8 of the first MAX_TEXT * 4 bytes, cut at
    // MAX_TEXT characters. Its fast path (valid and short) must agree.
    let slow = |b: &[u8]| -> String {
        String::from_utf8_lossy(&b[..b.len().min(MAX_TEXT * 4)])
            .chars()
            .take(MAX_TEXT)
            .collect()
    };
    let e_acute = "\u{e9}";
    let cases: Vec<Vec<u8>> = vec![
        b"INVITE".to_vec(),
        Vec::new(),
        vec![b'a'; MAX_TEXT],
        vec![b'a'; MAX_TEXT + 1],
        vec![b'a'; MAX_TEXT * 5],
        e_acute.repeat(MAX_TEXT / 2).into_bytes(),
        e_acute.repeat(MAX_TEXT + 7).into_bytes(),
        b"ok\xff\xfe then more".to_vec(),
        [e_acute.repeat(99).as_bytes(), &[0xc3]].concat(),
    ];
    for c in &cases {
        assert_eq!(text(c), slow(c), "{c:?}");
    }
    assert_eq!(text(b"INVITE"), "INVITE");
    assert_eq!(text(&vec![b'a'; MAX_TEXT + 1]).len(), MAX_TEXT);
    assert_eq!(
        text(e_acute.repeat(MAX_TEXT + 7).as_bytes())
            .chars()
            .count(),
        MAX_TEXT
    );
    assert_eq!(
        text(b"ok\xff\xfe then more"),
        "ok\u{fffd}\u{fffd} then more"
    );
}

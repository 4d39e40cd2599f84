//! Properties over generated input: splitting a capture in two files changes nothing, and no
//! byte sequence makes the reader, the dissector or the catalogue loader panic.

use std::io::Cursor;

use flowdoc_capture::{CaptureReader, ReadMode};
use flowdoc_catalogue::Catalogue;
use flowdoc_fixturegen::packet::{self, Ip, ACK, FIN, PSH, SYN};
use flowdoc_fixturegen::write::{pcap, Frame, PcapOptions};
use flowdoc_flow::FlowConfig;
use flowdoc_pipeline::{analyze_files, Options};
use flowdoc_report::FlowRecord;
use proptest::prelude::*;

/// Random sessions: (client host, server port index, packets, flags pattern).
fn frames(sessions: &[(u8, u8, u8)]) -> Vec<Frame> {
    const PORTS: [u16; 6] = [5060, 5222, 5269, 8443, 9999, 6603];
    let mut out = Vec::new();
    let mut t = 1_714_521_600_000_000_000i64;
    for (i, &(host, port, n)) in sessions.iter().enumerate() {
        let c = Ip::V4([10, 1, 0, host]);
        let s = Ip::V4([10, 2, 0, 1]);
        let cp = 40_000 + i as u16;
        let sp = PORTS[usize::from(port) % PORTS.len()];
        for k in 0..u32::from(n % 12) + 1 {
            t += 1_000_000;
            let (from_client, flags) = match k {
                0 => (true, SYN),
                1 => (false, SYN | ACK),
                _ if k % 5 == 4 => (true, FIN | ACK),
                _ => (k % 2 == 0, PSH | ACK),
            };
            let ip = if from_client {
                packet::tcp(c, s, cp, sp, flags, k, &[0; 20])
            } else {
                packet::tcp(s, c, sp, cp, flags, k, &[0; 20])
            };
            out.push(Frame::new(t, packet::ethernet(&ip, &[])));
        }
    }
    out
}

fn analyse(paths: &[std::path::PathBuf], threads: usize) -> Vec<FlowRecord> {
    let cat = Catalogue::embedded();
    let mut out = Vec::new();
    let opts = Options {
        read_mode: ReadMode::Buffered,
        flow: FlowConfig::default(),
        ..Options::default()
    };
    analyze_files(
        &cat,
        paths,
        opts,
        threads,
        &mut |lf| out.push(FlowRecord::new(&cat, lf)),
        &mut |_, _, _| {},
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn splitting_a_capture_in_two_files_gives_the_same_flows(
        sessions in proptest::collection::vec((1u8..20, any::<u8>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let all = frames(&sessions);
        let at = cut.index(all.len() + 1);
        let dir = std::env::temp_dir().join(format!("flowdoc-prop-{}-{}", std::process::id(), at));
        std::fs::create_dir_all(&dir).expect("tmp");
        let o = PcapOptions::ethernet();
        let (whole, a, b) = (dir.join("whole.pcap"), dir.join("a.pcap"), dir.join("b.pcap"));
        std::fs::write(&whole, pcap(&o, &all)).expect("write");
        std::fs::write(&a, pcap(&o, &all[..at])).expect("write");
        std::fs::write(&b, pcap(&o, &all[at..])).expect("write");
        let one = analyse(std::slice::from_ref(&whole), 1);
        let two = analyse(&[a.clone(), b.clone()], 1);
        prop_assert_eq!(&one, &two);
        // Over threads: the same flows in the same order.
        let threaded = analyse(&[a, b], 3);
        prop_assert_eq!(one, threaded);
    }

    #[test]
    fn any_bytes_as_a_capture_never_panic(head in prop::sample::select(vec![
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0],
            vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a],
            vec![],
        ]),
        body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut bytes = head;
        bytes.extend_from_slice(&body);
        if let Ok(mut r) = CaptureReader::from_reader("prop", Box::new(Cursor::new(bytes))) {
            let mut n = 0;
            while let Ok(Some(rec)) = r.next_record() {
                let _ = flowdoc_dissect::dissect(rec.link_type, rec.data);
                n += 1;
                prop_assert!(n < 10_000);
            }
        }
    }

    #[test]
    fn any_bytes_as_a_packet_never_panic(lt in prop::sample::select(vec![0u16, 1, 9, 12, 14, 50, 51, 101, 108, 113, 228, 229, 239, 276, 147]),
                                         data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = flowdoc_dissect::dissect(lt, &data);
    }

    #[test]
    fn any_text_as_a_catalogue_never_panics(text in "\\PC{0,400}") {
        let _ = Catalogue::from_toml_str(&text, "prop.toml");
        let mut cat = Catalogue::embedded();
        let _ = cat.apply_overlay(&text, "prop.toml");
    }
}

//! Any bytes as the first bytes of a flow's two sides, over TCP and UDP, on the ports where
//! recognisers look at the port too, undecided and final. A decided flow's packed detail
//! (strings from the wire) unpacks and packs again to the same bytes.
#![no_main]
use flowdoc_identify::{identify, Input, Transport, Verdict};
use libfuzzer_sys::fuzz_target;

const PORTS: [u16; 12] = [53, 123, 161, 389, 500, 4500, 5060, 5222, 5353, 1433, 1521, 40000];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let body = &data[4..];
    let split = usize::from(data[0]) * body.len() / 256;
    let (a, b) = body.split_at(split);
    let transport = if data[1] & 1 == 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    let ports = [PORTS[usize::from(data[2]) % PORTS.len()], 50_000];
    for last in [false, true] {
        let v = identify(&Input {
            transport,
            ports,
            data: [a, b],
            client: usize::from(data[3] & 1),
            segments: u32::from(data[3] >> 1),
            last,
            from_start: data[1] & 2 != 0,
        });
        if let Verdict::Done(id) = v {
            if let Some(p) = &id.detail {
                assert_eq!(p.unpack().pack().as_ref(), Some(p));
            }
        }
    }
});

//! Any bytes as one packet of each link type flowdoc reads.
#![no_main]
use flowdoc_dissect::link;
use libfuzzer_sys::fuzz_target;

const LINK_TYPES: [u16; 14] = [
    link::NULL,
    link::ETHERNET,
    link::PPP,
    link::RAW_OPENBSD,
    link::RAW_BSDOS,
    link::PPP_HDLC,
    link::PPP_ETHER,
    link::RAW,
    link::LOOP,
    link::LINUX_SLL,
    link::IPV4,
    link::IPV6,
    link::NFLOG,
    link::LINUX_SLL2,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, packet)) = data.split_first() else { return };
    let lt = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let _ = flowdoc_dissect::dissect(lt, packet);
});

//! pcap and pcapng writers.

/// A packet to write: time in nanoseconds since the epoch, interface, link-layer bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub ts_ns: i64,
    pub interface: u32,
    pub data: Vec<u8>,
    /// Length on the wire; `None` means `data.len()`.
    pub orig_len: Option<u32>,
}

impl Frame {
    pub fn new(ts_ns: i64, data: Vec<u8>) -> Frame {
        Frame {
            ts_ns,
            interface: 0,
            data,
            orig_len: None,
        }
    }
}

pub use flowdoc_capture::write::PcapOptions;

/// The 24-byte pcap file header.
pub fn pcap_header(o: &PcapOptions) -> Vec<u8> {
    flowdoc_capture::write::pcap_header(o).to_vec()
}

/// Appends one pcap record.
pub fn pcap_record(out: &mut Vec<u8>, o: &PcapOptions, f: &Frame) {
    let caplen = f.data.len() as u32;
    out.extend_from_slice(&flowdoc_capture::write::record_header(
        o,
        f.ts_ns,
        caplen,
        f.orig_len.unwrap_or(caplen),
    ));
    out.extend_from_slice(&f.data);
}

/// pcapng blocks are written little-endian.
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A whole pcap file.
pub fn pcap(o: &PcapOptions, frames: &[Frame]) -> Vec<u8> {
    let mut out = pcap_header(o);
    for f in frames {
        pcap_record(&mut out, o, f);
    }
    out
}

/// One pcapng interface: link type and timestamp resolution as 10^-exp seconds.
#[derive(Debug, Clone, Copy)]
pub struct Interface {
    pub link_type: u16,
    pub tsresol_exp: u8,
}

/// How a frame is stored in pcapng.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Enhanced,
    Simple,
    Obsolete,
}

fn block(out: &mut Vec<u8>, btype: u32, body: &[u8]) {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    put32(out, btype);
    put32(out, len);
    out.extend_from_slice(&body);
    put32(out, len);
}

/// A pcapng file (little-endian): section header, interfaces, an unknown block (type
/// 0x0BAD, which readers must skip), then the frames as the given block kinds.
pub fn pcapng(interfaces: &[Interface], frames: &[(BlockKind, Frame)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    put32(&mut shb, 0x1a2b_3c4d);
    put16(&mut shb, 1);
    put16(&mut shb, 0);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    for itf in interfaces {
        let mut idb = Vec::new();
        put16(&mut idb, itf.link_type);
        put16(&mut idb, 0);
        put32(&mut idb, 262_144);
        // if_tsresol, then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, itf.tsresol_exp, 0, 0, 0, 0, 0, 0, 0]);
        block(&mut out, 1, &idb);
    }
    block(&mut out, 0x0bad, b"flowdoc fixture: an unknown block type");
    for (kind, f) in frames {
        let exp = interfaces
            .get(f.interface as usize)
            .map_or(6, |i| i.tsresol_exp);
        let units = (i128::from(f.ts_ns) * 10i128.pow(u32::from(exp)) / 1_000_000_000) as u64;
        let orig = f.orig_len.unwrap_or(f.data.len() as u32);
        let mut b = Vec::new();
        match kind {
            BlockKind::Enhanced | BlockKind::Obsolete => {
                if *kind == BlockKind::Enhanced {
                    put32(&mut b, f.interface);
                } else {
                    put16(&mut b, f.interface as u16);
                    put16(&mut b, 0);
                }
                put32(&mut b, (units >> 32) as u32);
                put32(&mut b, units as u32);
                put32(&mut b, f.data.len() as u32);
                put32(&mut b, orig);
                b.extend_from_slice(&f.data);
                block(
                    &mut out,
                    if *kind == BlockKind::Enhanced { 6 } else { 2 },
                    &b,
                );
            }
            BlockKind::Simple => {
                put32(&mut b, orig);
                b.extend_from_slice(&f.data);
                block(&mut out, 3, &b);
            }
        }
    }
    out
}

/// Gzip with a fixed header (no name, no time), so the bytes are the same every run.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    if enc.write_all(data).is_err() {
        panic!("fixturegen: gzip into memory failed");
    }
    enc.finish().unwrap_or_default()
}

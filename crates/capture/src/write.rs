//! Classic pcap written back: the file header and each record's header, in the layouts the
//! reader reads (micro- or nanosecond timestamps, either byte order). The caller writes the
//! packet bytes after each record header, so no packet is copied here.

/// Layout options for classic pcap.
#[derive(Debug, Clone, Copy)]
pub struct PcapOptions {
    pub link_type: u16,
    pub nanos: bool,
    pub big_endian: bool,
    pub snaplen: u32,
}

impl PcapOptions {
    /// Ethernet, microseconds, little-endian.
    pub fn ethernet() -> PcapOptions {
        PcapOptions::link(1)
    }

    /// This link type, microseconds, little-endian.
    pub fn link(link_type: u16) -> PcapOptions {
        PcapOptions {
            link_type,
            nanos: false,
            big_endian: false,
            snaplen: 262_144,
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

/// The 24-byte file header.
pub fn pcap_header(o: &PcapOptions) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&o.u32(if o.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    h[4..6].copy_from_slice(&o.u16(2));
    h[6..8].copy_from_slice(&o.u16(4));
    h[16..20].copy_from_slice(&o.u32(o.snaplen));
    h[20..24].copy_from_slice(&o.u32(u32::from(o.link_type)));
    h
}

/// The 16-byte header of a record of `caplen` bytes captured at `ts_ns` (`orig_len` on the
/// wire); the `caplen` packet bytes follow it.
pub fn record_header(o: &PcapOptions, ts_ns: i64, caplen: u32, orig_len: u32) -> [u8; 16] {
    let sec = ts_ns.div_euclid(1_000_000_000);
    let ns = ts_ns.rem_euclid(1_000_000_000);
    let frac = if o.nanos { ns } else { ns / 1_000 };
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&o.u32(sec as u32));
    h[4..8].copy_from_slice(&o.u32(frac as u32));
    h[8..12].copy_from_slice(&o.u32(caplen));
    h[12..16].copy_from_slice(&o.u32(orig_len));
    h
}

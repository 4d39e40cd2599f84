//! The classic pcap format: a 24-byte file header, then 16-byte record headers (24 in the
//! "modified" variant) each followed by the captured bytes.

use crate::{CaptureError, Format, Found, Step};

/// Larger captured lengths are taken as a corrupt record header (as libpcap and Wireshark do).
pub(crate) const MAX_CAPLEN: usize = 262_144;

#[derive(Clone)]
pub(crate) struct State {
    big_endian: bool,
    nanos: bool,
    modified: bool,
    pub(crate) link_type: u16,
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

impl State {
    pub(crate) fn from_header(h: &[u8]) -> Option<State> {
        if h.len() < 24 {
            return None;
        }
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (big_endian, nanos, modified) = match le {
            0xa1b2_c3d4 => (false, false, false),
            0xd4c3_b2a1 => (true, false, false),
            0xa1b2_3c4d => (false, true, false),
            0x4d3c_b2a1 => (true, true, false),
            0xa1b2_cd34 => (false, false, true),
            0x34cd_b2a1 => (true, false, true),
            _ => return None,
        };
        // The link type is the low 16 bits; the high bits carry FCS information.
        let link_type = (u32_at(h, 20, big_endian) & 0xffff) as u16;
        Some(State {
            big_endian,
            nanos,
            modified,
            link_type,
        })
    }

    pub(crate) fn format(&self) -> Format {
        Format::Pcap {
            nanos: self.nanos,
            big_endian: self.big_endian,
            modified: self.modified,
        }
    }

    /// Bytes of a record header.
    pub(crate) fn header_len(&self) -> usize {
        if self.modified {
            24
        } else {
            16
        }
    }

    /// The seconds and captured length of a record header, if these bytes could be one: a
    /// captured length the reader accepts and no larger than the length on the wire, and a
    /// fraction of a second below one second. For guessing where records begin.
    pub(crate) fn plausible(&self, h: &[u8]) -> Option<(i64, usize)> {
        let big = self.big_endian;
        // The captured length's most significant byte is zero in any header the reader
        // accepts: most places a range's first record is searched from fail on it alone.
        const { assert!(MAX_CAPLEN < 1 << 24) };
        if h.get(if big { 8 } else { 11 }) != Some(&0) {
            return None;
        }
        let frac = u32_at(h, 4, big);
        let caplen = u32_at(h, 8, big) as usize;
        let orig_len = u32_at(h, 12, big) as usize;
        let unit = if self.nanos { 1_000_000_000 } else { 1_000_000 };
        (frac < unit && caplen <= MAX_CAPLEN && caplen <= orig_len)
            .then(|| (i64::from(u32_at(h, 0, big)), caplen))
    }

    /// The packet record at the front of `b` when it is there whole and sane: the common case,
    /// kept small enough to inline into the readers' loops. `None` sends the caller to
    /// [`State::step`], which says what is missing or wrong.
    #[inline]
    pub(crate) fn whole(&self, b: &[u8]) -> Option<(Found, usize)> {
        let hdr = self.header_len();
        let words = self.words(b.get(..hdr)?);
        let caplen = words[2] as usize;
        if caplen > MAX_CAPLEN || b.len() < hdr + caplen {
            return None;
        }
        Some(self.found(words, hdr, caplen))
    }

    /// The four words of a record header (seconds, fraction, captured length, length on the
    /// wire), read in one go: one bounds check and one test of the byte order per record.
    #[inline]
    fn words(&self, h: &[u8]) -> [u32; 4] {
        let mut w = [0u8; 16];
        w.copy_from_slice(&h[..16]);
        let word = |i: usize| u32::from_le_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]);
        let words = [word(0), word(4), word(8), word(12)];
        if self.big_endian {
            words.map(u32::swap_bytes)
        } else {
            words
        }
    }

    #[inline]
    fn found(
        &self,
        [sec, frac, _, orig_len]: [u32; 4],
        hdr: usize,
        caplen: usize,
    ) -> (Found, usize) {
        let (sec, frac) = (i64::from(sec), i64::from(frac));
        let ts_ns = sec * 1_000_000_000 + if self.nanos { frac } else { frac * 1_000 };
        let total = hdr + caplen;
        let found = Found {
            ts_ns,
            link_type: self.link_type,
            orig_len,
            data: hdr..total,
        };
        (found, total)
    }

    pub(crate) fn step(
        &self,
        b: &[u8],
        file: &str,
        number: u64,
        offset: u64,
    ) -> Result<Step, CaptureError> {
        let hdr = self.header_len();
        if b.len() < hdr {
            return Ok(Step::Need(hdr));
        }
        let caplen = u32_at(b, 8, self.big_endian) as usize;
        if caplen > MAX_CAPLEN {
            return Err(CaptureError::corrupt(
                file,
                number,
                offset,
                format!(
                    "corrupt record header: captured length {caplen} is larger than {MAX_CAPLEN}"
                ),
            ));
        }
        if b.len() < hdr + caplen {
            return Ok(Step::Need(hdr + caplen));
        }
        let (found, total) = self.found(self.words(b), hdr, caplen);
        Ok(Step::Packet(found, total))
    }
}

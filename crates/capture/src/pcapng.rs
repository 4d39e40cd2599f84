//! pcapng: blocks of `type, total length, body, total length`. Sections set the byte order;
//! Interface Description Blocks give each interface its link type and timestamp resolution.

use crate::{CaptureError, Found, ReaderStats, Step};

pub(crate) const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Blocks larger than this are taken as corrupt rather than buffered.
const MAX_BLOCK: usize = 64 << 20;

const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interface {
    link_type: u16,
    snaplen: u32,
    /// Timestamp units: 10^-n (`pow2 == false`) or 2^-n seconds.
    exp: u8,
    pow2: bool,
    offset_s: i64,
}

impl Interface {
    #[inline]
    fn ts_ns(&self, units: u64) -> i64 {
        // The usual resolutions (micro- or nanoseconds, no offset) in 64 bits; any other, or
        // one that would overflow, in 128.
        if !self.pow2 && self.exp <= 9 && self.offset_s == 0 {
            if let Some(ns) = i64::try_from(units)
                .ok()
                .and_then(|u| u.checked_mul(10i64.pow(9 - u32::from(self.exp))))
            {
                return ns;
            }
        }
        self.ts_ns_wide(units)
    }

    fn ts_ns_wide(&self, units: u64) -> i64 {
        let ns: i128 = if self.pow2 {
            (i128::from(units) * 1_000_000_000) >> u32::from(self.exp.min(127))
        } else if self.exp <= 9 {
            i128::from(units) * 10i128.pow(9 - u32::from(self.exp))
        } else {
            i128::from(units) / 10i128.pow(u32::from(self.exp.min(30)) - 9)
        };
        let ns = ns + i128::from(self.offset_s) * 1_000_000_000;
        i64::try_from(ns).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: i64,
    /// The last packet's time is not known (a walk that began inside the file, at a place it
    /// guessed): a simple packet block met before any enhanced one sets `stale`.
    pub(crate) time_unknown: bool,
    pub(crate) stale: bool,
}

impl State {
    /// Whether a walk that starts with `self` reads the blocks after it as one that starts
    /// with `other` would: the same byte order and interfaces (the last packet's time aside).
    pub(crate) fn agrees(&self, other: &State) -> bool {
        self.big_endian == other.big_endian && self.interfaces == other.interfaces
    }

    /// The length of a block that could begin at the front of `b` in this section (its type
    /// one pcapng defines, its two lengths equal), without reading it.
    pub(crate) fn plausible(&self, b: &[u8]) -> Option<usize> {
        if b.len() < 12 {
            return None;
        }
        let known = b[..4] == SHB_TYPE
            || matches!(
                self.u32(b, 0),
                IDB | OPB | SPB | 4 | 5 | EPB | 0x0a | 0xbad | 0x4000_0bad
            );
        let len = self.u32(b, 4) as usize;
        if !known || len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK || b.len() < len {
            return None;
        }
        (self.u32(b, len - 4) as usize == len).then_some(len)
    }

    pub(crate) fn link_types(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.interfaces.iter().map(|i| i.link_type).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    #[inline]
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    #[inline]
    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// The enhanced packet block at the front of `b` when it is whole, sane and of a known
    /// interface (the usual block), as [`State::step`] reads it; `None` for anything else,
    /// left to the general step.
    #[inline]
    pub(crate) fn whole(&mut self, b: &[u8]) -> Option<(Found, usize)> {
        if b.len() < 32 || b[..4] == SHB_TYPE || self.u32(b, 0) != EPB {
            return None;
        }
        let len = self.u32(b, 4) as usize;
        if len < 32 || !len.is_multiple_of(4) || len > MAX_BLOCK || len > b.len() {
            return None;
        }
        let caplen = self.u32(b, 20) as usize;
        if self.u32(b, len - 4) as usize != len || caplen > len - 32 {
            return None;
        }
        let itf = self.interfaces.get(self.u32(b, 8) as usize)?;
        let units = (u64::from(self.u32(b, 12)) << 32) | u64::from(self.u32(b, 16));
        let ts_ns = itf.ts_ns(units);
        self.last_ts = ts_ns;
        self.time_unknown = false;
        Some((
            Found {
                ts_ns,
                link_type: itf.link_type,
                orig_len: self.u32(b, 24),
                data: 28..28 + caplen,
            },
            len,
        ))
    }

    pub(crate) fn step(
        &mut self,
        b: &[u8],
        file: &str,
        number: u64,
        offset: u64,
        stats: &mut ReaderStats,
    ) -> Result<Step, CaptureError> {
        let corrupt = |what: String| CaptureError::corrupt(file, number, offset, what);
        if b.len() < 12 {
            return Ok(Step::Need(12));
        }
        if b[..4] == SHB_TYPE {
            // The byte-order magic decides how this section, and its own length, are read.
            let magic = [b[8], b[9], b[10], b[11]];
            self.big_endian = if u32::from_le_bytes(magic) == BYTE_ORDER_MAGIC {
                false
            } else if u32::from_be_bytes(magic) == BYTE_ORDER_MAGIC {
                true
            } else {
                return Err(corrupt(format!(
                    "section header with a bad byte-order magic {magic:02x?}"
                )));
            };
            self.interfaces.clear();
        }
        let btype = self.u32(b, 0);
        let len = self.u32(b, 4) as usize;
        if len < 12 || !len.is_multiple_of(4) || len > MAX_BLOCK {
            return Err(corrupt(format!(
                "block of type {btype:#x} has an impossible length {len}"
            )));
        }
        if b.len() < len {
            return Ok(Step::Need(len));
        }
        let trailer = self.u32(b, len - 4) as usize;
        if trailer != len {
            return Err(corrupt(format!(
                "block of type {btype:#x}: trailing length {trailer} disagrees with the leading length {len}"
            )));
        }
        let body = &b[8..len - 4];
        match btype {
            IDB => {
                if body.len() < 8 {
                    return Err(corrupt("interface description block too short".into()));
                }
                let mut itf = Interface {
                    link_type: self.u16(body, 0),
                    snaplen: self.u32(body, 4),
                    exp: 6,
                    pow2: false,
                    offset_s: 0,
                };
                self.read_options(&body[8..], &mut itf);
                self.interfaces.push(itf);
                Ok(Step::Skip(len))
            }
            EPB | OPB => {
                if body.len() < 20 {
                    return Err(corrupt("packet block too short".into()));
                }
                let iface = if btype == EPB {
                    self.u32(body, 0) as usize
                } else {
                    usize::from(self.u16(body, 0))
                };
                let units = (u64::from(self.u32(body, 4)) << 32) | u64::from(self.u32(body, 8));
                let caplen = self.u32(body, 12) as usize;
                let orig_len = self.u32(body, 16);
                if caplen > body.len() - 20 {
                    return Err(corrupt(format!(
                        "captured length {caplen} runs past the end of its block"
                    )));
                }
                let Some(itf) = self.interfaces.get(iface).copied() else {
                    stats.unknown_interface += 1;
                    return Ok(Step::Skip(len));
                };
                let ts_ns = itf.ts_ns(units);
                self.last_ts = ts_ns;
                self.time_unknown = false;
                let start = 8 + 20;
                Ok(Step::Packet(
                    Found {
                        ts_ns,
                        link_type: itf.link_type,
                        orig_len,
                        data: start..start + caplen,
                    },
                    len,
                ))
            }
            SPB => {
                if body.len() < 4 {
                    return Err(corrupt("simple packet block too short".into()));
                }
                let Some(itf) = self.interfaces.first().copied() else {
                    stats.unknown_interface += 1;
                    return Ok(Step::Skip(len));
                };
                self.stale |= self.time_unknown;
                let orig_len = self.u32(body, 0);
                let mut caplen = (orig_len as usize).min(body.len() - 4);
                if itf.snaplen > 0 {
                    caplen = caplen.min(itf.snaplen as usize);
                }
                // A simple packet block has no timestamp: it takes the previous packet's.
                Ok(Step::Packet(
                    Found {
                        ts_ns: self.last_ts,
                        link_type: itf.link_type,
                        orig_len,
                        data: 12..12 + caplen,
                    },
                    len,
                ))
            }
            _ => {
                if b[..4] != SHB_TYPE {
                    stats.skipped_blocks += 1;
                }
                Ok(Step::Skip(len))
            }
        }
    }

    fn read_options(&self, mut opts: &[u8], itf: &mut Interface) {
        while opts.len() >= 4 {
            let code = self.u16(opts, 0);
            let olen = usize::from(self.u16(opts, 2));
            let padded = (olen + 3) & !3;
            if code == 0 || opts.len() < 4 + olen {
                break;
            }
            let val = &opts[4..4 + olen];
            match (code, olen) {
                (9, 1) => {
                    itf.pow2 = val[0] & 0x80 != 0;
                    itf.exp = val[0] & 0x7f;
                }
                (14, 8) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(val);
                    itf.offset_s = if self.big_endian {
                        i64::from_be_bytes(a)
                    } else {
                        i64::from_le_bytes(a)
                    };
                }
                _ => {}
            }
            opts = &opts[(4 + padded).min(opts.len())..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 64-bit path for the usual resolutions gives the 128-bit path's time, up to where
    /// it would overflow and past it.
    #[test]
    fn usual_resolutions_give_the_same_time_in_64_bits() {
        for exp in 0..=9u8 {
            let itf = Interface {
                link_type: 1,
                snaplen: 0,
                exp,
                pow2: false,
                offset_s: 0,
            };
            let edge = (i64::MAX / 10i64.pow(9 - u32::from(exp))) as u64;
            for units in [
                0,
                1,
                1_700_000_000_123_456,
                edge - 1,
                edge,
                edge + 1,
                u64::MAX,
            ] {
                assert_eq!(
                    itf.ts_ns(units),
                    itf.ts_ns_wide(units),
                    "exp {exp} units {units}"
                );
            }
        }
    }
}

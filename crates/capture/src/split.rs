//! A classic pcap file as byte ranges that threads walk on their own.
//!
//! Each range is read with `pread` into its walker's own buffer. A walker that does not know
//! where the first record of its range begins finds it by looking for a chain of plausible
//! record headers ([`PcapSplit::walk`] with `exact` false). That guess is checked by the
//! caller: the walk of the range before ends exactly where this one began
//! ([`RangeWalk::next`] against [`RangeWalk::first`]), or the range is walked again from the
//! right place. So the records are always those the serial reader gives, and a range that
//! starts inside a record is never trusted on its own word.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::pcap;
use crate::{CaptureError, Format, Record, Step};

/// Bytes read past a range's end at first, for the record that straddles it: room for a
/// full-size Ethernet frame (a larger one is read when it is met). Every byte of it is read
/// twice, here and by the next range: at 64 KiB, two threads copied 12.5% more of a file
/// through the kernel than one thread did.
const TAIL: usize = 4 << 10;
/// Record headers that must follow one another for a guessed start to be taken.
const CHAIN: usize = 4;
/// Largest gap in seconds between the timestamps of a guessed chain.
const CHAIN_SECS: i64 = 3600;

/// An uncompressed classic pcap file on disk, to be walked in ranges.
pub struct PcapSplit {
    file: File,
    name: String,
    st: pcap::State,
    len: u64,
    /// The whole file mapped, when asked for: walks then read the map instead of copying.
    map: Option<memmap2::Mmap>,
}

impl std::fmt::Debug for PcapSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSplit")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish()
    }
}

/// What the walk of one range did.
#[derive(Debug)]
pub struct RangeWalk {
    /// Offset of the first record walked, or `None` when no record was found to begin in
    /// the range.
    pub first: Option<u64>,
    /// Offset of the first record at or past the range's end (the file's length at its end):
    /// where the next range's walk must begin.
    pub next: u64,
    /// Records walked.
    pub records: u64,
    /// Why the walk stopped before the range's end. Its record number counts from the range's
    /// first record: see [`CaptureError::renumber`].
    pub error: Option<CaptureError>,
}

impl PcapSplit {
    /// The file, when it is a regular, uncompressed classic pcap file, read through a memory
    /// map when `mapped` (else by `pread` into each walk's buffer); `None` otherwise (a
    /// pcapng or gzip file, a FIFO, a file that cannot be opened: [`crate::CaptureReader`]
    /// reads those and says what is wrong).
    pub fn open(path: &Path, mapped: bool) -> Option<PcapSplit> {
        // Asked before opening: opening a FIFO would take the bytes meant for the reader.
        if !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        let file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut head = [0u8; 24];
        read_exact_at(&file, &mut head, 0).ok()?;
        let st = pcap::State::from_header(&head)?;
        let map = if mapped {
            Some(crate::window::map_file(&file).ok()?)
        } else {
            None
        };
        Some(PcapSplit {
            file,
            name: path.display().to_string(),
            st,
            len: meta.len(),
            map,
        })
    }

    /// The whole file, when it is mapped: the bytes a walk's record offsets point into, from
    /// the walk's start.
    pub fn mapped(&self) -> Option<&[u8]> {
        self.map.as_deref()
    }

    /// Tells the kernel that the mapped bytes in `start..end` will not be read again, so that
    /// they leave this process's memory (they stay in the page cache).
    pub fn done_with(&self, start: u64, end: u64) {
        #[cfg(unix)]
        if let Some(m) = &self.map {
            let page = 4096u64;
            let lo = start / page * page;
            let hi = end.min(self.len) / page * page;
            if hi > lo {
                // SAFETY: the map is private and read-only; dropped pages are read again
                // from the file if touched, so no byte the program sees changes.
                #[allow(unsafe_code)]
                unsafe {
                    let _ = m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        lo as usize,
                        (hi - lo) as usize,
                    );
                }
            }
        }
    }

    /// Offset of the first record.
    pub fn data_start(&self) -> u64 {
        24
    }

    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= self.data_start()
    }

    pub fn format(&self) -> Format {
        self.st.format()
    }

    pub fn link_types(&self) -> Vec<u16> {
        vec![self.st.link_type]
    }

    /// Walks the records that begin in `start..end`: from `start` itself when `exact`, else
    /// from the first place in the range that looks like a run of record headers. Each record
    /// goes to `f` with the offset of its captured bytes in `buf`, which holds the range's
    /// bytes from its start when the walk returns (a record that straddles `end` is read
    /// whole). `buf` is scratch space, reused as it is: it is never cleared, only grown, so
    /// that a reused buffer costs no zeroing.
    pub fn walk(
        &self,
        start: u64,
        end: u64,
        exact: bool,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        let end = end.min(self.len);
        let mut out = RangeWalk {
            first: None,
            next: end,
            records: 0,
            error: None,
        };
        if start >= end {
            return out;
        }
        let want = (end - start) as usize + TAIL;
        let map = self.map.as_deref().and_then(|m| m.get(start as usize..));
        // Bytes in memory from `start` on.
        let mut have = 0;
        if let Some(m) = map {
            have = m.len();
        } else if let Err(e) = self.read_more(buf, &mut have, start, want) {
            out.error = Some(CaptureError::io(&self.name, start, e));
            return out;
        }
        let mut p = if exact {
            0
        } else {
            match self.resync(&map.unwrap_or(buf)[..have], start, end) {
                Some(p) => p,
                None => return out,
            }
        };
        out.first = Some(start + p as u64);
        loop {
            let offset = start + p as u64;
            if offset >= end {
                out.next = offset;
                return out;
            }
            let number = out.records + 1;
            let bytes: &[u8] = map.unwrap_or(buf);
            // The usual record, whole and sane, goes straight to `f`; the general step says
            // what the others are.
            let (found, total) = match self.st.whole(&bytes[p..have]) {
                Some(record) => record,
                None => match self.st.step(&bytes[p..have], &self.name, number, offset) {
                    Ok(Step::Packet(found, total)) => (found, total),
                    Ok(Step::Skip(n)) => {
                        p += n;
                        continue;
                    }
                    Ok(Step::Need(n)) => {
                        let left = have - p;
                        if start + (have as u64) < self.len {
                            if let Err(e) = self.read_more(buf, &mut have, start, p + n.max(TAIL)) {
                                out.error = Some(CaptureError::io(&self.name, offset, e));
                                return out;
                            }
                            if have - p > left {
                                continue;
                            }
                        }
                        if left == 0 {
                            out.next = offset;
                            return out;
                        }
                        out.error = Some(CaptureError::Truncated {
                            file: self.name.clone(),
                            record: number,
                            offset,
                            need: n,
                            have: left,
                        });
                        return out;
                    }
                    Err(e) => {
                        out.error = Some(e);
                        return out;
                    }
                },
            };
            out.records = number;
            let bytes: &[u8] = map.unwrap_or(buf);
            f(
                Record {
                    ts_ns: found.ts_ns,
                    link_type: found.link_type,
                    orig_len: found.orig_len,
                    data: &bytes[p + found.data.start..p + found.data.end],
                    number,
                },
                p + found.data.start,
            );
            p += total;
        }
    }

    /// Reads the file's bytes from `start + have` on into `buf`, up to `want` bytes from
    /// `start` in all or the file's end; `have` counts the bytes in `buf`.
    fn read_more(
        &self,
        buf: &mut Vec<u8>,
        have: &mut usize,
        start: u64,
        want: usize,
    ) -> io::Result<()> {
        let until = (start + want as u64).min(self.len);
        let want = (until.saturating_sub(start) as usize).max(*have);
        if buf.capacity() == 0 {
            // A new buffer comes zeroed from the allocator (fresh pages from the kernel, which
            // are zero already), not allocated and then written with zeros by `resize`.
            *buf = vec![0; want];
        } else if buf.len() < want {
            buf.resize(want, 0);
        }
        while *have < want {
            match read_at(&self.file, &mut buf[*have..want], start + *have as u64) {
                Ok(0) => break,
                Ok(n) => *have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The first place in `buf` (before the range's end) where a chain of plausible record
    /// headers begins.
    fn resync(&self, buf: &[u8], start: u64, end: u64) -> Option<usize> {
        let stop = ((end - start) as usize).min(buf.len());
        let at_file_end = start + buf.len() as u64 >= self.len;
        (0..stop).find(|&p| self.chain_at(buf, p, at_file_end))
    }

    fn chain_at(&self, buf: &[u8], mut p: usize, at_file_end: bool) -> bool {
        let hdr = self.st.header_len();
        let mut first_sec = None;
        for _ in 0..CHAIN {
            if p == buf.len() {
                return at_file_end;
            }
            let Some(h) = buf.get(p..p + hdr) else {
                return false;
            };
            let Some((sec, caplen)) = self.st.plausible(h) else {
                return false;
            };
            if (sec - *first_sec.get_or_insert(sec)).abs() > CHAIN_SECS {
                return false;
            }
            p += hdr + caplen;
        }
        true
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        match read_at(file, &mut buf[at..], offset + at as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file in either byte order and time resolution: 40 records of 1 to 1,400 bytes
    /// whose bytes look like no record header. Returns the file and each record's offset.
    fn capture(big: bool, nanos: bool) -> (Vec<u8>, Vec<u64>) {
        let word = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&word(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        f.extend_from_slice(&[0, 2, 0, 4][..]);
        if !big {
            f[4..8].copy_from_slice(&[2, 0, 4, 0]);
        }
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&word(65_535));
        f.extend_from_slice(&word(1));
        let mut at = Vec::new();
        for i in 0..40u32 {
            at.push(f.len() as u64);
            let len = 1 + (i * 397) % 1_400;
            let frac = if nanos { 999_999_999 - i } else { 999_999 - i };
            for w in [1_700_000_000 + i, frac, len, len + 4] {
                f.extend_from_slice(&word(w));
            }
            f.extend(std::iter::repeat_n(0xaa, len as usize));
        }
        (f, at)
    }

    /// A range that starts inside a record finds the next record's first byte, whatever the
    /// file's byte order and time resolution (a wrong guess would be walked again in order:
    /// right results, but every chunk read twice).
    #[test]
    fn a_range_finds_where_its_first_record_begins() {
        for (big, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let (bytes, at) = capture(big, nanos);
            let path = std::env::temp_dir().join(format!(
                "flowdoc-split-{}-{big}-{nanos}.pcap",
                std::process::id()
            ));
            std::fs::write(&path, &bytes).expect("write");
            let split = PcapSplit::open(&path, false).expect("a pcap file");
            for (i, &record) in at.iter().enumerate().skip(1) {
                for start in [record - 1, at[i - 1] + 1, at[i - 1] + 7] {
                    let mut buf = Vec::new();
                    let w = split.walk(start, split.len(), false, &mut buf, &mut |_, _| {});
                    assert_eq!(
                        w.first,
                        Some(record),
                        "big {big} nanos {nanos} from {start}"
                    );
                    assert_eq!(w.records, (at.len() - i) as u64);
                }
            }
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Ranges walked one after another, each from where the one before ended, give every
    /// record whole and once, however far a record reaches past its range's end (records of
    /// up to 70,000 bytes: past the bytes read ahead, so read when they are met).
    #[test]
    fn records_that_straddle_a_range_end_are_read_whole() {
        let mut f = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        let mut want = Vec::new();
        for i in 0..60u32 {
            let len = [60, 1_514, 4_000, 9_018, 70_000][i as usize % 5] + i;
            want.push((len as usize, i as u8));
            for w in [1_700_000_000 + i, 0, len, len] {
                f.extend_from_slice(&w.to_le_bytes());
            }
            f.extend(std::iter::repeat_n(i as u8, len as usize));
        }
        let path =
            std::env::temp_dir().join(format!("flowdoc-straddle-{}.pcap", std::process::id()));
        std::fs::write(&path, &f).expect("write");
        for mapped in [false, true] {
            let split = PcapSplit::open(&path, mapped).expect("a pcap file");
            for step in [1_000u64, 4_096, 10_000, 65_536, 524_288] {
                let mut seen = Vec::new();
                let mut start = split.data_start();
                let mut buf = Vec::new();
                while start < split.len() {
                    let end = (start + step).min(split.len());
                    let w = split.walk(start, end, true, &mut buf, &mut |rec, _| {
                        let whole = rec.data.len() == rec.orig_len as usize
                            && rec.data.iter().all(|&b| b == rec.data[0]);
                        seen.push((rec.data.len(), rec.data[0], whole));
                    });
                    assert!(
                        w.error.is_none(),
                        "step {step} mapped {mapped}: {:?}",
                        w.error
                    );
                    assert!(w.next >= end, "step {step}: a range ended early");
                    start = w.next;
                }
                let got: Vec<_> = seen.iter().map(|&(len, b, _)| (len, b)).collect();
                assert_eq!(got, want, "step {step} mapped {mapped}");
                assert!(
                    seen.iter().all(|s| s.2),
                    "step {step} mapped {mapped}: a record cut"
                );
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

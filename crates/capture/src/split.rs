//! A classic pcap or a pcapng file as byte ranges that threads walk on their own.
//!
//! Each range is read with `pread` into its walker's own buffer. A walker that does not know
//! where the first record of its range begins finds it by looking for a chain of plausible
//! record headers ([`PcapSplit::walk`] with `exact` false). That guess is checked by the
//! caller: the walk of the range before ends exactly where this one began
//! ([`RangeWalk::next`] against [`RangeWalk::first`]), or the range is walked again from the
//! right place. So the records are always those the serial reader gives, and a range that
//! starts inside a record is never trusted on its own word.
//!
//! A pcapng walk also carries state: the section's byte order and interfaces (declared by
//! blocks anywhere in the file) and the last packet's time (a simple packet block takes it).
//! A guessing walk starts from the state the file's head leaves; the caller checks that the
//! walk before ended with that state ([`PcapSplit::agrees`]), or walks the range again from
//! the state it ended with ([`RangeWalk::state`]).
//!
//! A stream that cannot be cut (gzip, a pipe) is read in order by one thread, which only frames
//! whole records ([`crate::CaptureReader::next_span`]); [`Spans`] walks each span with the same
//! loops, from the exact state the reader found at its start: nothing is guessed.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::{pcap, pcapng};
use crate::{CaptureError, Format, ReaderStats, Record, Step};

/// Bytes read past a range's end at first, for the record that straddles it: room for a
/// full-size Ethernet frame (a larger one is read when it is met). Every byte of it is read
/// twice, here and by the next range: at 64 KiB, two threads copied 12.5% more of a file
/// through the kernel than one thread did.
const TAIL: usize = 4 << 10;
/// Record headers that must follow one another for a guessed start to be taken.
const CHAIN: usize = 4;
/// Largest gap in seconds between the timestamps of a guessed chain.
const CHAIN_SECS: i64 = 3600;
/// Bytes of a pcapng file read at its opening for the blocks before its first packet.
const HEAD: usize = 1 << 20;

enum Kind {
    Pcap(pcap::State),
    /// pcapng, with the state the blocks before the first packet leave: where a walk that
    /// guesses its start begins.
    Pcapng(pcapng::State),
}

/// Where a walk stands in the file's blocks: a pcapng section's byte order and interfaces and
/// the last packet's time; nothing for classic pcap, whose header says everything.
#[derive(Debug, Clone, Default)]
pub struct WalkState(Option<pcapng::State>);

/// Where a walk begins.
#[derive(Debug, Clone, Copy)]
pub enum Start<'s> {
    /// At the range's start, a record's first byte, in this state.
    Exact(&'s WalkState),
    /// Where a chain of plausible records begins, in the state the file's head leaves.
    Guess,
}

/// An uncompressed classic pcap or pcapng file on disk, to be walked in ranges.
pub struct PcapSplit {
    file: File,
    name: String,
    kind: Kind,
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
    /// The state where the walk ended: the next range's walk begins in it.
    pub state: WalkState,
    /// The walk guessed its start and took the file head's state there: it stands only when
    /// the walk before it ended in a state that [`PcapSplit::agrees`] with.
    pub from_head: bool,
    /// pcapng blocks passed over.
    pub stats: ReaderStats,
}

impl PcapSplit {
    /// The file, when it is a regular, uncompressed classic pcap or pcapng file, read through
    /// a memory map when `mapped` (else by `pread` into each walk's buffer); `None` otherwise (a
    /// gzip file, a FIFO, a file that cannot be opened: [`crate::CaptureReader`] reads those
    /// and says what is wrong).
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
        let name = path.display().to_string();
        let mut head = [0u8; 24];
        read_exact_at(&file, &mut head, 0).ok()?;
        let kind = match pcap::State::from_header(&head) {
            Some(st) => Kind::Pcap(st),
            None if head[..4] == pcapng::SHB_TYPE => {
                let mut bytes = vec![0; HEAD.min(meta.len() as usize)];
                read_exact_at(&file, &mut bytes, 0).ok()?;
                Kind::Pcapng(pcapng_head(&bytes, &name))
            }
            None => return None,
        };
        let map = if mapped {
            Some(crate::window::map_file(&file).ok()?)
        } else {
            None
        };
        Some(PcapSplit {
            file,
            name,
            kind,
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

    /// Offset of the first record (for pcapng, of the section header block: the first range's
    /// walk reads the blocks before the first packet too).
    pub fn data_start(&self) -> u64 {
        match self.kind {
            Kind::Pcap(_) => 24,
            Kind::Pcapng(_) => 0,
        }
    }

    /// The state where the first range's walk begins.
    pub fn start_state(&self) -> WalkState {
        match self.kind {
            Kind::Pcap(_) => WalkState(None),
            Kind::Pcapng(_) => WalkState(Some(pcapng::State::default())),
        }
    }

    /// Whether a walk that guessed its start (and took the file head's state) reads the records
    /// after it as a walk in `state` would.
    pub fn agrees(&self, state: &WalkState) -> bool {
        match (&self.kind, &state.0) {
            (Kind::Pcapng(head), Some(st)) => head.agrees(st),
            (Kind::Pcapng(_), None) => false,
            (Kind::Pcap(_), _) => true,
        }
    }

    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= self.data_start()
    }

    pub fn format(&self) -> Format {
        self.kind.format()
    }

    /// The link types a walk that ended in `state` has met (pcapng: the interfaces of its
    /// section so far, as the serial reader says at its end).
    pub fn link_types(&self, state: &WalkState) -> Vec<u16> {
        match (&self.kind, &state.0) {
            (Kind::Pcap(st), _) => vec![st.link_type],
            (Kind::Pcapng(_), Some(st)) => st.link_types(),
            (Kind::Pcapng(head), None) => head.link_types(),
        }
    }

    /// Walks the records that begin in `start..end`: from `start` itself when `from` is
    /// [`Start::Exact`], else from the first place in the range that looks like a run of record
    /// headers. Each record goes to `f` with the offset of its captured bytes in `buf`, which
    /// holds the range's bytes from its start when the walk returns (a record that straddles
    /// `end` is read whole). `buf` is scratch space, reused as it is: it is never cleared, only
    /// grown, so that a reused buffer costs no zeroing.
    ///
    /// A caller that does much with each record should call [`PcapSplit::walk_pcap`] or
    /// [`PcapSplit::walk_pcapng`] instead, with a callback of its own for each: a callback
    /// that both formats' loops call is inlined into neither (classic pcap's walk took 6% more
    /// instructions so).
    pub fn walk(
        &self,
        start: u64,
        end: u64,
        from: Start<'_>,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        match self.kind {
            Kind::Pcap(_) => self.walk_pcap(start, end, from, buf, f),
            Kind::Pcapng(_) => self.walk_pcapng(start, end, from, buf, f),
        }
    }

    /// [`PcapSplit::walk`] of a classic pcap file (of a pcapng file: no record, and an error).
    pub fn walk_pcap(
        &self,
        start: u64,
        end: u64,
        from: Start<'_>,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        self.src().walk_pcap(&self.kind, start, end, from, buf, f)
    }

    /// [`PcapSplit::walk`] of a pcapng file (of a classic pcap file: no record, and an error).
    pub fn walk_pcapng(
        &self,
        start: u64,
        end: u64,
        from: Start<'_>,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        self.src().walk_pcapng(&self.kind, start, end, from, buf, f)
    }

    /// Where this file's walks read their bytes.
    fn src(&self) -> Src<'_> {
        Src {
            file: Some(&self.file),
            name: &self.name,
            len: self.len,
            map: self.map.as_deref().map(|m| (0, m)),
        }
    }
}

impl WalkState {
    pub(crate) fn new(st: Option<pcapng::State>) -> WalkState {
        WalkState(st)
    }
}

/// A stream's spans ([`crate::CaptureReader::next_span`]: whole records a reader thread read
/// ahead of a gzip file or a pipe) as threads walk them: the loops that walk a split file's
/// ranges, over bytes in memory, from the exact state the reader found at each span's start.
pub struct Spans {
    name: String,
    kind: Kind,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").field("name", &self.name).finish()
    }
}

impl Spans {
    /// A stream of classic pcap records read in `pcap`'s way, or (`None`) of pcapng blocks.
    pub(crate) fn new(name: String, pcap: Option<pcap::State>) -> Spans {
        let kind = match pcap {
            Some(st) => Kind::Pcap(st),
            None => Kind::Pcapng(pcapng::State::default()),
        };
        Spans { name, kind }
    }

    pub fn format(&self) -> Format {
        self.kind.format()
    }

    /// Where the bytes of a span at `offset` in the stream are read.
    fn src<'a>(&'a self, bytes: &'a [u8], offset: u64) -> Src<'a> {
        Src {
            file: None,
            name: &self.name,
            len: offset + bytes.len() as u64,
            map: Some((offset, bytes)),
        }
    }

    /// Walks the records of a classic pcap span, `bytes`, which begin at `offset` in the
    /// stream; each goes to `f` with the offset of its captured bytes in `bytes`.
    pub fn walk_pcap(
        &self,
        bytes: &[u8],
        offset: u64,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        let (end, from) = (offset + bytes.len() as u64, Start::Exact(&WalkState(None)));
        self.src(bytes, offset)
            .walk_pcap(&self.kind, offset, end, from, &mut Vec::new(), f)
    }

    /// [`Spans::walk_pcap`] of a pcapng span, which begins in `state`.
    pub fn walk_pcapng(
        &self,
        bytes: &[u8],
        offset: u64,
        state: &WalkState,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        let (end, from) = (offset + bytes.len() as u64, Start::Exact(state));
        self.src(bytes, offset)
            .walk_pcapng(&self.kind, offset, end, from, &mut Vec::new(), f)
    }
}

impl Kind {
    fn format(&self) -> Format {
        match self {
            Kind::Pcap(st) => st.format(),
            Kind::Pcapng(_) => Format::Pcapng,
        }
    }
}

/// The walk of a range in a format the file is not in: nothing, and an error saying so.
fn not_this(name: &str, start: u64, end: u64, format: &str) -> RangeWalk {
    RangeWalk {
        first: None,
        next: end,
        records: 0,
        error: Some(CaptureError::io(
            name,
            start,
            io::Error::other(format!("walked as the wrong format: the file is {format}")),
        )),
        state: WalkState(None),
        from_head: false,
        stats: ReaderStats::default(),
    }
}

/// Where a walk reads its bytes: a file by `pread`, or bytes in memory (a mapped file, or a
/// span of a stream read ahead by [`crate::CaptureReader::next_span`]).
struct Src<'a> {
    file: Option<&'a File>,
    name: &'a str,
    /// Where the bytes end.
    len: u64,
    /// The bytes in memory, and the offset of their first.
    map: Option<(u64, &'a [u8])>,
}

impl Src<'_> {
    /// [`PcapSplit::walk_pcap`] of these bytes, in a file of `kind`.
    #[inline(always)]
    fn walk_pcap(
        &self,
        kind: &Kind,
        start: u64,
        end: u64,
        from: Start<'_>,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        match kind {
            Kind::Pcap(st) => {
                let exact = matches!(from, Start::Exact(_));
                self.walk_in(&mut Pcap(st), start, end, exact, buf, f)
            }
            Kind::Pcapng(_) => not_this(self.name, start, end, "pcapng"),
        }
    }

    /// [`PcapSplit::walk_pcapng`] of these bytes, in a file of `kind` (a guessing walk takes
    /// the state of the file's head, which `kind` holds).
    #[inline(always)]
    fn walk_pcapng(
        &self,
        kind: &Kind,
        start: u64,
        end: u64,
        from: Start<'_>,
        buf: &mut Vec<u8>,
        f: &mut impl FnMut(Record<'_>, usize),
    ) -> RangeWalk {
        let Kind::Pcapng(head) = kind else {
            return not_this(self.name, start, end, "classic pcap");
        };
        let (mut st, exact) = match from {
            Start::Exact(st) => (st.0.clone().unwrap_or_default(), true),
            Start::Guess => {
                let mut st = head.clone();
                st.time_unknown = true;
                (st, false)
            }
        };
        let mut w = self.walk_in(&mut st, start, end, exact, buf, f);
        w.from_head = !exact;
        w.state = WalkState(Some(st));
        w
    }

    /// [`PcapSplit::walk`] with the records' parser: a loop made for each format.
    #[inline(always)]
    fn walk_in<P: Parse>(
        &self,
        st: &mut P,
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
            state: WalkState(None),
            from_head: false,
            stats: ReaderStats::default(),
        };
        if start >= end {
            return out;
        }
        let want = (end - start) as usize + TAIL;
        let map = self
            .map
            .and_then(|(base, m)| m.get(start.checked_sub(base)? as usize..));
        // Bytes in memory from `start` on.
        let mut have = 0;
        if let Some(m) = map {
            have = m.len();
        } else if let Err(e) = self.read_more(buf, &mut have, start, want) {
            out.error = Some(CaptureError::io(self.name, start, e));
            return out;
        }
        let mut p = if exact {
            0
        } else {
            let bytes = &map.unwrap_or(buf)[..have];
            let stop = ((end - start) as usize).min(bytes.len());
            let at_file_end = start + bytes.len() as u64 >= self.len;
            match (0..stop).find(|&p| st.chain_at(bytes, p, at_file_end)) {
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
            let (found, total) = match st.whole(&bytes[p..have]) {
                Some(record) => record,
                None => {
                    match st.step(&bytes[p..have], self.name, number, offset, &mut out.stats) {
                        _ if st.stale() => {
                            // A simple packet block took the time of a packet before the range:
                            // the walk stands on nothing; the range is walked again in order.
                            out.first = None;
                            return out;
                        }
                        Ok(Step::Packet(found, total)) => (found, total),
                        Ok(Step::Skip(n)) => {
                            p += n;
                            continue;
                        }
                        Ok(Step::Need(n)) => {
                            let left = have - p;
                            if start + (have as u64) < self.len {
                                if let Err(e) =
                                    self.read_more(buf, &mut have, start, p + n.max(TAIL))
                                {
                                    out.error = Some(CaptureError::io(self.name, offset, e));
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
                                file: self.name.to_string(),
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
                    }
                }
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
            let Some(file) = self.file else {
                return Err(io::Error::other("read past the bytes in memory"));
            };
            match read_at(file, &mut buf[*have..want], start + *have as u64) {
                Ok(0) => break,
                Ok(n) => *have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A format's records as a walk reads them.
trait Parse {
    /// The record at the front of `b` when it is whole and sane (the fast path).
    fn whole(&mut self, b: &[u8]) -> Option<(crate::Found, usize)>;
    fn step(
        &mut self,
        b: &[u8],
        file: &str,
        number: u64,
        offset: u64,
        stats: &mut ReaderStats,
    ) -> Result<Step, CaptureError>;
    /// Whether the last step leaned on a time the walk does not know.
    fn stale(&self) -> bool;
    /// Whether a chain of [`CHAIN`] plausible records begins at `p` in `buf`.
    fn chain_at(&self, buf: &[u8], p: usize, at_file_end: bool) -> bool;
}

struct Pcap<'s>(&'s pcap::State);

impl Parse for Pcap<'_> {
    #[inline(always)]
    fn whole(&mut self, b: &[u8]) -> Option<(crate::Found, usize)> {
        self.0.whole(b)
    }

    fn step(
        &mut self,
        b: &[u8],
        file: &str,
        number: u64,
        offset: u64,
        _: &mut ReaderStats,
    ) -> Result<Step, CaptureError> {
        self.0.step(b, file, number, offset)
    }

    #[inline(always)]
    fn stale(&self) -> bool {
        false
    }

    #[inline(always)]
    fn chain_at(&self, buf: &[u8], mut p: usize, at_file_end: bool) -> bool {
        let hdr = self.0.header_len();
        let mut first_sec = None;
        for _ in 0..CHAIN {
            if p == buf.len() {
                return at_file_end;
            }
            let Some(h) = buf.get(p..p + hdr) else {
                return false;
            };
            let Some((sec, caplen)) = self.0.plausible(h) else {
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

impl Parse for pcapng::State {
    #[inline(always)]
    fn whole(&mut self, b: &[u8]) -> Option<(crate::Found, usize)> {
        pcapng::State::whole(self, b)
    }

    fn step(
        &mut self,
        b: &[u8],
        file: &str,
        number: u64,
        offset: u64,
        stats: &mut ReaderStats,
    ) -> Result<Step, CaptureError> {
        pcapng::State::step(self, b, file, number, offset, stats)
    }

    fn stale(&self) -> bool {
        self.stale
    }

    /// Blocks, read in this section's byte order.
    fn chain_at(&self, buf: &[u8], mut p: usize, at_file_end: bool) -> bool {
        for _ in 0..CHAIN {
            if p == buf.len() {
                return at_file_end;
            }
            let Some(len) = self.plausible(&buf[p..]) else {
                return false;
            };
            p += len;
        }
        true
    }
}

/// The state the blocks before a pcapng file's first packet leave (as far as `head` holds
/// them): the section's byte order and the interfaces declared there.
fn pcapng_head(head: &[u8], name: &str) -> pcapng::State {
    let mut st = pcapng::State::default();
    let mut stats = ReaderStats::default();
    let mut p = 0;
    let mut blocks = 0;
    while let Ok(Step::Skip(n)) = st.step(&head[p..], name, 1, p as u64, &mut stats) {
        p += n;
        blocks += 1;
        if blocks > 10_000 {
            break;
        }
    }
    st
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
                    let w = split.walk(start, split.len(), Start::Guess, &mut buf, &mut |_, _| {});
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

    /// A pcapng file (little-endian): section header, one interface, 30 enhanced packet
    /// blocks, then a second interface and 10 more packets on it. Returns the file, each packet
    /// block's offset, and where the second interface's block begins.
    fn pcapng_capture() -> (Vec<u8>, Vec<u64>, u64) {
        fn block(f: &mut Vec<u8>, btype: u32, body: &[u8]) {
            let len = (12 + body.len().div_ceil(4) * 4) as u32;
            f.extend_from_slice(&btype.to_le_bytes());
            f.extend_from_slice(&len.to_le_bytes());
            f.extend_from_slice(body);
            f.resize(f.len() + (body.len().div_ceil(4) * 4 - body.len()), 0);
            f.extend_from_slice(&len.to_le_bytes());
        }
        let mut f = Vec::new();
        block(
            &mut f,
            0x0a0d_0d0a,
            &[
                0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            ],
        );
        let idb = [1, 0, 0, 0, 0, 0, 4, 0];
        block(&mut f, 1, &idb);
        let mut at = Vec::new();
        let mut second = 0;
        for i in 0..40u32 {
            if i == 30 {
                second = f.len() as u64;
                block(&mut f, 1, &idb);
            }
            at.push(f.len() as u64);
            let len = 1 + (i * 397) % 1_400;
            let mut body = Vec::new();
            for w in [u32::from(i >= 30), 0, 1_700_000_000 + i, len, len] {
                body.extend_from_slice(&w.to_le_bytes());
            }
            body.extend(std::iter::repeat_n(0xaa, len as usize));
            block(&mut f, 6, &body);
        }
        (f, at, second)
    }

    /// In pcapng a guessing walk finds the next block and takes the head's state (one
    /// interface), which agrees with the state before the second interface's block and not
    /// with the state after it.
    #[test]
    fn a_pcapng_range_finds_its_first_block_and_the_state_it_stands_on() {
        let (bytes, at, second) = pcapng_capture();
        let path =
            std::env::temp_dir().join(format!("flowdoc-split-{}.pcapng", std::process::id()));
        std::fs::write(&path, &bytes).expect("write");
        let split = PcapSplit::open(&path, false).expect("a pcapng file");
        assert_eq!(split.format(), Format::Pcapng);
        for (i, &block) in at.iter().enumerate().skip(1).filter(|&(i, _)| i != 30) {
            let mut buf = Vec::new();
            let w = split.walk(
                at[i - 1] + 5,
                split.len(),
                Start::Guess,
                &mut buf,
                &mut |_, _| {},
            );
            assert_eq!(w.first, Some(block), "block {i}");
            assert!(w.from_head);
        }
        let state_at = |end: u64| {
            let mut buf = Vec::new();
            let start = split.start_state();
            let w = split.walk(0, end, Start::Exact(&start), &mut buf, &mut |_, _| {});
            assert!(w.error.is_none(), "{:?}", w.error);
            w.state
        };
        assert!(split.agrees(&state_at(second)));
        let after = state_at(second + 1);
        assert!(!split.agrees(&after));
        assert_eq!(split.link_types(&after), [1]);
        // Walked from that state, the rest of the file: the last ten packets, all on the second
        // interface.
        let mut buf = Vec::new();
        let mut seen = 0;
        let w = split.walk(
            at[30],
            split.len(),
            Start::Exact(&after),
            &mut buf,
            &mut |rec, _| {
                assert_eq!(rec.link_type, 1);
                seen += 1;
            },
        );
        assert_eq!((w.records, seen, w.stats.unknown_interface), (10, 10, 0));
        let _ = std::fs::remove_file(&path);
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
                let mut state = split.start_state();
                let mut buf = Vec::new();
                while start < split.len() {
                    let end = (start + step).min(split.len());
                    let w =
                        split.walk(start, end, Start::Exact(&state), &mut buf, &mut |rec, _| {
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
                    state = w.state;
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

    /// Bytes in reads of at most 100 bytes, as a pipe may give them.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(100);
            self.0.read(&mut buf[..n])
        }
    }

    /// A stream read ahead in spans holds whole records only, each span beginning where a
    /// record does, and the spans walked one by one give every record; a stream cut inside its
    /// last record gives the serial reader's error after the records before it.
    #[test]
    fn a_streams_spans_hold_whole_records_and_its_error_comes_after_them() {
        let (bytes, at) = capture(false, true);
        for cut in [0, 7] {
            let bytes = bytes[..bytes.len() - cut].to_vec();
            let stream = || {
                let src = Box::new(Trickle(std::io::Cursor::new(bytes.clone())));
                crate::CaptureReader::from_reader("stream.pcap", src).expect("a pcap stream")
            };
            let mut serial = stream();
            let mut want_error = None;
            let mut serial_lens = Vec::new();
            loop {
                match serial.next_record() {
                    Ok(Some(rec)) => serial_lens.push(rec.data.len()),
                    Ok(None) => break,
                    Err(e) => {
                        want_error = Some(e.to_string());
                        break;
                    }
                }
            }
            assert_eq!(serial_lens.len(), if cut == 0 { 40 } else { 39 });
            let mut reader = stream();
            let spans = reader.spans();
            let (mut lens, mut buf, mut error, mut count) = (Vec::new(), Vec::new(), None, 0);
            for _ in 0..100 {
                let span = reader.next_span(1_000, &mut buf);
                if span.len > 0 {
                    assert!(at.contains(&span.offset), "a span at {}", span.offset);
                }
                let mut records = 0;
                let w = spans.walk_pcap(&buf[..span.len], span.offset, &mut |rec, p| {
                    assert_eq!(&buf[p..p + rec.data.len()], rec.data);
                    lens.push(rec.data.len());
                    records += 1;
                });
                assert!(w.error.is_none(), "{:?}", w.error);
                // About 1,000 bytes, whole records: more only by what one read brought.
                assert!(span.len < 1_100 + 1_420, "{} bytes", span.len);
                count += usize::from(records > 0);
                if span.ended {
                    error = span.error.map(|e| e.to_string());
                    break;
                }
            }
            assert!(count >= 20, "{count} spans");
            assert_eq!(lens, serial_lens, "cut {cut}");
            assert_eq!(error, want_error, "cut {cut}");
            assert_eq!(error.is_some(), cut > 0);
        }
    }
}

//! Several threads on one analysis, with the results of one thread.
//!
//! A file is cut into chunks of bytes. Each chunk goes through four jobs, and every thread
//! takes whichever job is ready next ([`Sched`]), so that no thread waits for a round of
//! others to end, only for a chunk it needs:
//!
//! 1. **Read** (any thread): the chunk is read with `pread` into its slot's buffer. The thread
//!    finds where its first record begins ([`PcapSplit`] guesses from a chain of record
//!    headers or pcapng blocks), dissects every record and files each packet under the flow
//!    table its symmetric hash picks, with the hash and the record's place. An input that
//!    cannot be cut (gzip, a pipe) is read in order by one thread, which only decompresses
//!    and finds where its records begin ([`CaptureReader::next_span`]): any thread then
//!    dissects the chunk (**Walk**), from the state of blocks the reader found at its start.
//! 2. **Order** (one thread at a time, chunk after chunk): each chunk must begin exactly where
//!    the one before ended (pcapng: in the state of blocks it ended in), or it is walked again
//!    from there. Here too the sweeps (idle and active timeouts) are found where one thread's
//!    clock would strike, from each chunk's running maxima of time, and non-first IP
//!    fragments are sent to the table of their datagram's first fragment, at their place.
//! 3. **Fold** (one per table, chunk after chunk): the table takes its packets, sweeps and
//!    fragments in file order, so every flow sees its packets in the order one table would.
//!    Each flow that ends is tagged with the place of the record that ended it.
//! 4. **Write** (the caller's thread): the flows the tables ended in the chunk are merged by
//!    that place (flows a sweep ends by first packet, then key) and handed to the sink. The
//!    chunk's slot is then free to read another chunk into.
//!
//! A few chunks are in flight at once (four per thread), so their bytes and packets stay in
//! the processor's cache between the jobs. The flows still open at the end are merged by
//! first packet, then key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, RwLock};

use flowdoc_capture::{
    CaptureError, CaptureReader, Format, PcapSplit, RangeWalk, ReadMode, ReaderStats, Record, Span,
    Spans, Start, WalkState,
};
use flowdoc_dissect::{
    dissect, dissect_common, ipv4_addr, Addr, Dissected, FragmentId, Packet, Proto, Tunnel,
};
use flowdoc_flow::{
    packet_hash, Endpoint, Finished, Flow, FlowKey, PacketHash, PacketView, Side, TableStats,
};
use foldhash::fast::FixedState;

use crate::{label, FileSummary, LabelledFlow, Options, Reference, Summary, SweepClock, Worker};

/// Flows a table hands over at once when the input ends.
const FINISH_BLOCK: usize = 64;

/// Bound on datagrams whose fragments are routed at once (as one table bounds its own).
const MAX_ROUTES: usize = 65_536;
/// Packets a table looks ahead to prefetch their index slots (flows: half as far).
const PREFETCH: usize = 16;

/// Kinds of event at one record's place, in the order they happen there.
const BEFORE: u64 = 0;
const RECORD: u64 = 1;
const SWEEP: u64 = 2;

/// The place of an event in its chunk: record, kind.
fn place(pos: u32, kind: u64) -> u64 {
    (u64::from(pos) << 2) | kind
}

/// The table (of `n`) that owns a packet's flow: from the hash's low half, which the tables'
/// own indexes do not use.
fn shard_of(hash: u64, n: usize) -> usize {
    (((hash & 0xffff_ffff) * n as u64) >> 32) as usize
}

/// One packet for one table, packed into 56 bytes: phase 1 writes one per packet and phase 2
/// reads it back, so its size is memory traffic on every packet (it was 88 bytes, with both
/// addresses at full width). Its payload stays in its chunk's buffer; a first fragment's
/// datagram is in the chunk's `firsts`; addresses that do not fit in `addrs` are in the
/// chunk's `wide`.
#[derive(Debug)]
struct Desc {
    hash: u64,
    ts: i64,
    /// Both addresses' last four bytes (IPv4: the whole address), or the index of the pair
    /// in the chunk's `wide` when `WIDE` is set.
    addrs: [u8; 8],
    tcp_seq: u32,
    pos: u32,
    len: u32,
    at: u32,
    n: u32,
    sport: u16,
    dport: u16,
    /// The VLAN id, or `NO_VLAN` (ids have 12 bits).
    vlan: u16,
    icmp: [u8; 2],
    tcp_flags: u8,
    /// The transport (2 bits), the tunnel (2 bits, 0: none) and the flags below.
    bits: u8,
    /// The sender's side of the flow key (in what was padding).
    side: Side,
}

const _: () = assert!(std::mem::size_of::<Desc>() == 56);

const NO_VLAN: u16 = u16::MAX;
const V6: u8 = 1 << 4;
const WIDE: u8 = 1 << 5;
const ICMP: u8 = 1 << 6;
const FIRST_FRAGMENT: u8 = 1 << 7;

impl Desc {
    /// `wide` is the chunk's list, to which addresses that need more than four bytes each
    /// go.
    #[inline(always)]
    fn new(
        p: &Packet<'_>,
        h: PacketHash,
        ts: i64,
        pos: u32,
        len: u32,
        (at, n): (u32, u32),
        wide: &mut Vec<[Addr; 2]>,
    ) -> Desc {
        let mut addrs = [0u8; 8];
        let mut bits = match p.proto {
            Proto::Tcp => 0,
            Proto::Udp => 1,
            Proto::Icmp => 2,
            Proto::Icmpv6 => 3,
        } | match p.tunnel {
            None => 0,
            Some(Tunnel::IpInIp) => 1 << 2,
            Some(Tunnel::SixInFour) => 2 << 2,
            Some(Tunnel::Gre) => 3 << 2,
        };
        if p.src[..12] == [0; 12] && p.dst[..12] == [0; 12] {
            addrs[..4].copy_from_slice(&p.src[12..]);
            addrs[4..].copy_from_slice(&p.dst[12..]);
        } else {
            addrs[..4].copy_from_slice(&(wide.len() as u32).to_le_bytes());
            wide.push([p.src, p.dst]);
            bits |= WIDE;
        }
        if p.v6 {
            bits |= V6;
        }
        if p.first_fragment.is_some() {
            bits |= FIRST_FRAGMENT;
        }
        let mut icmp = [0; 2];
        if let Some((t, c)) = p.icmp {
            icmp = [t, c];
            bits |= ICMP;
        }
        debug_assert!(p.vlan != Some(NO_VLAN));
        Desc {
            hash: h.hash,
            ts,
            addrs,
            tcp_seq: p.tcp_seq,
            pos,
            len,
            at,
            n,
            sport: p.sport,
            dport: p.dport,
            vlan: p.vlan.unwrap_or(NO_VLAN),
            icmp,
            tcp_flags: p.tcp_flags,
            bits,
            side: h.side,
        }
    }

    /// The hash and side the walk worked out for the packet.
    fn packet_hash(&self) -> PacketHash {
        PacketHash {
            hash: self.hash,
            side: self.side,
        }
    }

    fn first_fragment(&self) -> bool {
        self.bits & FIRST_FRAGMENT != 0
    }

    /// The packet's addresses, source first.
    #[inline(always)]
    fn addrs(&self, wide: &[[Addr; 2]]) -> [Addr; 2] {
        let a = self.addrs;
        if self.bits & WIDE == 0 {
            [
                ipv4_addr([a[0], a[1], a[2], a[3]]),
                ipv4_addr([a[4], a[5], a[6], a[7]]),
            ]
        } else {
            wide[u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as usize]
        }
    }

    #[inline(always)]
    fn proto(&self) -> Proto {
        match self.bits & 3 {
            0 => Proto::Tcp,
            1 => Proto::Udp,
            2 => Proto::Icmp,
            _ => Proto::Icmpv6,
        }
    }

    fn packet<'b>(
        &self,
        payload: &'b [u8],
        first_fragment: Option<FragmentId>,
        wide: &[[Addr; 2]],
    ) -> Packet<'b> {
        let [src, dst] = self.addrs(wide);
        Packet {
            src,
            dst,
            v6: self.bits & V6 != 0,
            proto: self.proto(),
            sport: self.sport,
            dport: self.dport,
            tcp_flags: self.tcp_flags,
            tcp_seq: self.tcp_seq,
            icmp: (self.bits & ICMP != 0).then_some((self.icmp[0], self.icmp[1])),
            payload,
            tunnel: match (self.bits >> 2) & 3 {
                0 => None,
                1 => Some(Tunnel::IpInIp),
                2 => Some(Tunnel::SixInFour),
                _ => Some(Tunnel::Gre),
            },
            vlan: (self.vlan != NO_VLAN).then_some(self.vlan),
            first_fragment,
        }
    }
}

/// A packed packet as its table folds it: read in place, made whole only where a flow needs
/// the whole packet (see [`PacketView`]). Its payload and a first fragment's datagram are
/// looked up only then: most packets belong to flows whose payload is decided.
struct Packed<'b> {
    d: &'b Desc,
    /// Where its chunk keeps what does not fit in a descriptor (made once a chunk: each
    /// packet's view is then two pointers to write, not seven).
    chunk: &'b ChunkView<'b>,
}

/// A chunk as its packets' views read it.
struct ChunkView<'b> {
    /// The chunk's bytes (a packet's payload is `at..at + n` in them).
    bytes: &'b [u8],
    /// The chunk's first fragments, in place order.
    firsts: &'b [(u32, FragmentId, usize)],
    wide: &'b [[Addr; 2]],
}

impl<'b> Packed<'b> {
    fn payload(&self) -> &'b [u8] {
        let (at, n) = (self.d.at as usize, self.d.n as usize);
        self.chunk.bytes.get(at..at + n).unwrap_or(&[])
    }

    /// The datagram of a first fragment.
    fn first(&self) -> Option<FragmentId> {
        if !self.d.first_fragment() {
            return None;
        }
        let firsts = self.chunk.firsts;
        let i = firsts.binary_search_by_key(&self.d.pos, |f| f.0).ok()?;
        Some(firsts[i].1)
    }
}

impl<'b> PacketView<'b> for Packed<'b> {
    #[inline(always)]
    fn endpoints(&self) -> (Endpoint, Endpoint) {
        let [src, dst] = self.d.addrs(self.chunk.wide);
        (
            Endpoint {
                addr: src,
                port: self.d.sport,
            },
            Endpoint {
                addr: dst,
                port: self.d.dport,
            },
        )
    }
    #[inline(always)]
    fn proto(&self) -> Proto {
        self.d.proto()
    }
    #[inline(always)]
    fn v6(&self) -> bool {
        self.d.bits & V6 != 0
    }
    #[inline(always)]
    fn tcp_flags(&self) -> u8 {
        self.d.tcp_flags
    }
    #[inline(always)]
    fn tcp_seq(&self) -> u32 {
        self.d.tcp_seq
    }
    #[inline(always)]
    fn has_payload_or_icmp(&self) -> bool {
        !self.payload().is_empty() || self.d.bits & ICMP != 0
    }
    #[inline(always)]
    fn first_fragment(&self) -> bool {
        self.d.first_fragment()
    }
    fn packet(&self) -> Packet<'b> {
        self.d.packet(self.payload(), self.first(), self.chunk.wide)
    }
}

/// A part of a file, read and dissected by one thread.
#[derive(Debug, Default)]
struct Chunk {
    buf: Vec<u8>,
    /// Where the walk began: payload offsets count from there, in `buf` or in the map.
    base: u64,
    /// Where the walk began (`None`: no record begins in the range) and where the next
    /// chunk must begin.
    first: Option<u64>,
    next: u64,
    /// Records in the chunk.
    count: u32,
    error: Option<CaptureError>,
    /// Where the walk ended in the file's blocks (pcapng), whether it took the file head's
    /// state at a guessed start, and the blocks it passed over.
    state: WalkState,
    from_head: bool,
    blocks: ReaderStats,
    /// Packets by table.
    shards: Vec<Vec<Desc>>,
    /// Address pairs that do not fit in a packet's `Desc`.
    wide: Vec<[Addr; 2]>,
    /// Non-first fragments: place, time, datagram.
    frags: Vec<(u32, i64, FragmentId)>,
    /// First fragments: place, datagram, table.
    firsts: Vec<(u32, FragmentId, usize)>,
    /// Packets later than every packet before them in the chunk (place, time): the only
    /// packets where the sweep clock can strike.
    maxima: Vec<(u32, i64)>,
    /// The skipped records by reason (the rest of the chunk's counts: `count`, `skips`, `lo`
    /// and `hi`, added to the summary when the chunk is put in order).
    counts: Summary,
    /// Records skipped (no flow packet). The sum of `counts.skipped`, counted apart on
    /// purpose: summed from the map per chunk instead, the walk loop compiled 0.5% longer on
    /// two threads (callgrind, reproducibly).
    skips: u32,
    /// The earliest and latest time of the chunk's records.
    lo: i64,
    hi: i64,
    /// A stream's records read ahead into `buf` (a serial input), until a thread walks them.
    span: Span,
    /// Why the stream's reading stopped after this chunk (a serial input).
    stream_error: Option<CaptureError>,
    /// Set when the chunk is put in order: the sweeps due in it, and its non-first fragments
    /// by table.
    sweeps: Vec<(u64, i64)>,
    events: Vec<Vec<FragEvent>>,
}

impl Chunk {
    fn reset(&mut self, n: usize) {
        self.first = None;
        self.next = 0;
        self.count = 0;
        self.error = None;
        self.stream_error = None;
        self.from_head = false;
        self.blocks = ReaderStats::default();
        self.shards.resize_with(n, Vec::new);
        self.shards.iter_mut().for_each(Vec::clear);
        self.wide.clear();
        self.frags.clear();
        self.firsts.clear();
        self.maxima.clear();
        self.counts = Summary::default();
        self.skips = 0;
        self.lo = i64::MAX;
        self.hi = i64::MIN;
    }

    /// Files one record; `payload_at` says where the packet's payload is kept in the buffer.
    /// Always inlined into the walk: as a call it took the record through memory and read its
    /// 2-byte link type back 4 bytes wide, a load that waits for the store (every packet).
    #[inline(always)]
    fn record(&mut self, rec: &Record<'_>, n: usize, payload_at: impl FnOnce(&[u8]) -> (u32, u32)) {
        let pos = self.count;
        self.count += 1;
        self.lo = self.lo.min(rec.ts_ns);
        self.hi = self.hi.max(rec.ts_ns);
        // The common frame is filed from the fast path's fields; dissection's answer as a
        // whole met the general walk's in registers spilled to the stack (as `dissect_into`
        // says).
        if let Some(p) = dissect_common(rec.link_type, rec.data) {
            return self.packet(rec, pos, n, &p, payload_at);
        }
        let d = dissect(rec.link_type, rec.data);
        if let Dissected::Skip(why) = &d {
            self.skips += 1;
            *self.counts.skipped.entry(*why).or_insert(0) += 1;
        }
        match &d {
            Dissected::Packet(p) => self.packet(rec, pos, n, p, payload_at),
            Dissected::Fragment(fid) => self.frags.push((pos, rec.ts_ns, *fid)),
            Dissected::Skip(_) => {}
        }
    }

    /// Takes back its buffer, whose bytes from `base` on were walked, and what the walk found.
    fn took(&mut self, buf: Vec<u8>, base: u64, w: RangeWalk) {
        self.buf = buf;
        self.base = base;
        self.first = w.first;
        self.next = w.next;
        self.error = w.error;
        self.state = w.state;
        self.from_head = w.from_head;
        self.blocks = w.stats;
    }

    /// Files a record walked in a split file, whose captured bytes are at `at` in the
    /// chunk's buffer.
    #[inline(always)]
    fn walked(&mut self, rec: &Record<'_>, at: usize, n: usize) {
        let base = rec.data.as_ptr() as usize;
        self.record(rec, n, |pl| {
            let off = (pl.as_ptr() as usize).wrapping_sub(base);
            if pl.is_empty() || off > rec.data.len() {
                (0, 0)
            } else {
                ((at + off) as u32, pl.len() as u32)
            }
        });
    }

    /// Files a packet under its flow table's shard.
    #[inline(always)]
    fn packet(
        &mut self,
        rec: &Record<'_>,
        pos: u32,
        n: usize,
        p: &Packet<'_>,
        payload_at: impl FnOnce(&[u8]) -> (u32, u32),
    ) {
        let h = packet_hash(p);
        let s = shard_of(h.hash, n);
        if self.maxima.last().is_none_or(|&(_, t)| rec.ts_ns > t) {
            self.maxima.push((pos, rec.ts_ns));
        }
        if let Some(fid) = p.first_fragment {
            self.firsts.push((pos, fid, s));
        }
        let d = Desc::new(
            p,
            h,
            rec.ts_ns,
            pos,
            rec.orig_len,
            payload_at(p.payload),
            &mut self.wide,
        );
        self.shards[s].push(d);
    }
}

/// Walks one range of a pcap file into a chunk.
fn walk_chunk(split: &PcapSplit, c: &mut Chunk, start: u64, end: u64, from: Start<'_>, n: usize) {
    let mut buf = std::mem::take(&mut c.buf);
    c.reset(n);
    // A callback for each format, each inlined into its format's loop.
    let w = if split.format() == Format::Pcapng {
        split.walk_pcapng(start, end, from, &mut buf, &mut |rec, at| {
            c.walked(&rec, at, n)
        })
    } else {
        split.walk_pcap(start, end, from, &mut buf, &mut |rec, at| {
            c.walked(&rec, at, n)
        })
    };
    c.took(buf, start, w);
}

/// Reads the next records of a serial input into a chunk's buffer, about `step` bytes of
/// them, for any thread to walk ([`walk_span`]). Returns true when the input ended or failed.
fn read_span(reader: &mut CaptureReader, c: &mut Chunk, step: u64) -> bool {
    c.span = reader.next_span(step as usize, &mut c.buf);
    c.next = reader.file_pos();
    c.span.ended
}

/// Walks the records a serial input's reader put in a chunk ([`read_span`]).
fn walk_span(spans: &Spans, c: &mut Chunk, n: usize) {
    let buf = std::mem::take(&mut c.buf);
    let span = std::mem::take(&mut c.span);
    let next = c.next;
    c.reset(n);
    let bytes = buf.get(..span.len).unwrap_or(&buf);
    // A callback for each format, each inlined into its format's loop.
    let w = if spans.format() == Format::Pcapng {
        spans.walk_pcapng(bytes, span.offset, &span.state, &mut |rec, at| {
            c.walked(&rec, at, n)
        })
    } else {
        spans.walk_pcap(bytes, span.offset, &mut |rec, at| c.walked(&rec, at, n))
    };
    c.took(buf, span.offset, w);
    // Where the reader had read to in the file (compressed), for the progress.
    c.next = next;
    c.stream_error = span.error;
}

/// A flow that ended, with the place that ended it and what `render` made of it.
type Ended<R> = (u64, LabelledFlow, R);

/// A non-first fragment whose datagram's first fragment has not come yet: its place when it
/// is in the chunk being routed.
#[derive(Debug)]
struct Waiting {
    at: Option<u64>,
    ts: i64,
}

/// A non-first fragment for one table, at its place.
#[derive(Debug)]
struct FragEvent {
    place: u64,
    ts: i64,
    fid: FragmentId,
}

/// What `render` makes of a flow, on the thread that ended it.
type Render<'r, R> = &'r (dyn Fn(&LabelledFlow) -> R + Sync);

/// One run over several files with `n` flow tables.
struct Parallel<'c, 'r, R> {
    rf: Reference<'c>,
    render: Render<'r, R>,
    opts: Options,
    n: usize,
    workers: Vec<Worker<'c>>,
    clock: SweepClock,
    /// Table of each datagram whose first fragment was seen.
    routes: HashMap<FragmentId, usize, FixedState>,
    waiting: HashMap<FragmentId, Vec<Waiting>, FixedState>,
    /// The chunks in flight, used in turn: a file's chunk `i` is in slot `i % slots.len()`.
    slots: Vec<Slot<R>>,
    summary: Summary,
    /// The other `n - 1` threads, started once for the whole run: each file hands them its
    /// jobs instead of starting threads of its own.
    pool: Option<rayon::ThreadPool>,
}

/// One chunk in flight, and the flows each table's fold of it ended.
struct Slot<R> {
    chunk: RwLock<Chunk>,
    outs: Vec<Mutex<Vec<Ended<R>>>>,
}

impl<R> Slot<R> {
    /// The chunk, to read into or put in order (the scheduler gives it to one job at a time).
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Chunk> {
        self.chunk.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chunk, for the tables to fold and the sink's thread to write out.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Chunk> {
        self.chunk.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where a file's chunks come from.
enum Input<'a> {
    /// A pcap or pcapng file: chunk `i` holds the records that begin in its `i`-th range of
    /// `chunk_bytes`, read by any thread.
    Split(&'a PcapSplit),
    /// Any other input (gzip, a pipe): chunks of about `chunk_bytes` of records read in
    /// order by one thread, and walked by any.
    Serial(&'a Mutex<CaptureReader>, &'a Spans),
}

/// One job for one thread.
#[derive(Debug, Clone, Copy)]
enum Job {
    /// Read and dissect chunk `i` (a serial input: only read it).
    Read(u64),
    /// Dissect chunk `i` of a serial input, read by [`Job::Read`].
    Walk(u64),
    /// Put chunks `a..b` in file order (a wrong guess of where a chunk begins is read again)
    /// and find their sweeps and fragments.
    Order(u64, u64),
    /// Table `t` folds chunk `i`.
    Fold(usize, u64),
    /// Write out the flows chunk `i` ended (the sink's thread only).
    Drain(u64),
}

enum Next {
    Job(Job),
    Wait,
    Done,
}

/// Who does what next. Every change is made under one lock; every job runs outside it. A
/// chunk is read, put in order, folded by every table and written out, in that order, and its
/// slot is only read into again once it is written out.
struct Sched {
    /// Chunks in the file: fewer when reading stops early, and `u64::MAX` for a serial input
    /// until its end is read.
    end: u64,
    next_read: u64,
    /// Per slot: its chunk is read (a serial input: and walked).
    read: Vec<bool>,
    /// A serial input: per slot, its chunk's bytes are read; the next chunk to walk.
    filled: Vec<bool>,
    next_walk: u64,
    /// Chunks before this one are in order: the tables may fold them.
    ordered: u64,
    ordering: bool,
    /// Per table: the next chunk it folds, and whether a thread is folding it.
    table_next: Vec<u64>,
    table_busy: Vec<bool>,
    /// Per slot: the tables that folded its chunk.
    folded: Vec<usize>,
    /// Chunks before this one are written out.
    drained: u64,
    draining: bool,
    /// A serial input is read by one thread only: `reader`.
    serial: bool,
    reader: usize,
    /// Threads waiting for a job.
    sleepers: usize,
    /// A job panicked: every thread stops, and the panic comes back where they end.
    failed: bool,
}

impl Sched {
    /// `serial`: the input is read in order, by this thread only.
    fn new(end: u64, slots: usize, tables: usize, serial: Option<usize>) -> Sched {
        Sched {
            end,
            next_read: 0,
            read: vec![false; slots],
            filled: vec![false; slots],
            next_walk: 0,
            ordered: 0,
            ordering: false,
            table_next: vec![0; tables],
            table_busy: vec![false; tables],
            folded: vec![0; slots],
            drained: 0,
            draining: false,
            serial: serial.is_some(),
            reader: serial.unwrap_or(0),
            sleepers: 0,
            failed: false,
        }
    }

    fn slot(&self, i: u64) -> usize {
        (i % self.read.len() as u64) as usize
    }

    /// Thread `me`'s next job, taken: writing out (thread 0 only, it holds the sink), putting
    /// in order (both unblock the others), its own table's fold, reading, another table's fold.
    fn take(&mut self, me: usize) -> Next {
        if self.failed || self.drained >= self.end {
            return Next::Done;
        }
        let n = self.table_next.len();
        let d = self.drained;
        if me == 0 && !self.draining && d < self.ordered && self.folded[self.slot(d)] == n {
            self.draining = true;
            return Next::Job(Job::Drain(d));
        }
        let o = self.ordered;
        if !self.ordering && o < self.end && o < self.next_read && self.read[self.slot(o)] {
            let mut b = o + 1;
            while b < self.end && b < self.next_read && self.read[self.slot(b)] {
                b += 1;
            }
            self.ordering = true;
            return Next::Job(Job::Order(o, b));
        }
        let slots = self.read.len() as u64;
        let readable = self.next_read < self.end && self.next_read < d + slots;
        // A serial input (gzip, a FIFO) is read by one thread only (the last of the pool's),
        // before its folds: one reader at a time is all it allows, and on one core the
        // decompressor's state stays in cache (read by whichever thread was free, two threads
        // ran a gzip capture 5% slower). Its chunks are walked by any thread.
        if self.serial && me == self.reader && readable {
            self.next_read += 1;
            return Next::Job(Job::Read(self.next_read - 1));
        }
        let own = me % n;
        if let Some(job) = self.fold(own) {
            return Next::Job(job);
        }
        let w = self.next_walk;
        if self.serial && w < self.next_read && w < self.end && self.filled[self.slot(w)] {
            self.next_walk += 1;
            return Next::Job(Job::Walk(w));
        }
        if !self.serial && readable {
            self.next_read += 1;
            return Next::Job(Job::Read(self.next_read - 1));
        }
        match (0..n).find_map(|t| self.fold(t)) {
            Some(job) => Next::Job(job),
            None => Next::Wait,
        }
    }

    fn fold(&mut self, t: usize) -> Option<Job> {
        if self.table_busy[t] || self.table_next[t] >= self.ordered {
            return None;
        }
        self.table_busy[t] = true;
        Some(Job::Fold(t, self.table_next[t]))
    }

    /// A job is done; `end` is the chunk count when the job found where reading ends.
    fn finished(&mut self, job: Job, end: Option<u64>) {
        if let Some(e) = end {
            self.end = self.end.min(e);
        }
        match job {
            Job::Read(i) if self.serial => {
                let s = self.slot(i);
                self.filled[s] = true;
            }
            Job::Read(i) | Job::Walk(i) => {
                let s = self.slot(i);
                self.read[s] = true;
            }
            Job::Order(_, b) => {
                self.ordering = false;
                self.ordered = b.min(self.end);
            }
            Job::Fold(t, i) => {
                let s = self.slot(i);
                self.table_busy[t] = false;
                self.table_next[t] = i + 1;
                self.folded[s] += 1;
            }
            Job::Drain(i) => {
                let s = self.slot(i);
                self.draining = false;
                self.drained = i + 1;
                self.read[s] = false;
                self.filled[s] = false;
                self.folded[s] = 0;
            }
        }
    }
}

/// Where the threads meet: the scheduler, the condition its sleepers wait on, and a count of
/// its changes that a thread about to sleep watches for a while first.
struct Board {
    sched: Mutex<Sched>,
    cv: Condvar,
    /// Jobs finished (and a failure), counted under the scheduler's lock.
    changes: AtomicU64,
    /// Whether a thread with nothing to do watches `changes` before it sleeps: only when
    /// there are no more threads than cores (a watching thread holds its core).
    watch: bool,
}

/// How long a thread with nothing to do watches for a job before it sleeps. A thread's sleep
/// costs the thread that wakes it a system call: on a gzip capture, the reading thread woke
/// the other after each chunk it read (about every 250 us), some 3% of its time.
const WATCH: std::time::Duration = std::time::Duration::from_micros(300);

/// Stops every thread when a job panics, so that none waits for it.
struct StopOnPanic<'a>(&'a Board);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(&self.0.sched).failed = true;
            self.0.changes.fetch_add(1, Ordering::Release);
            self.0.cv.notify_all();
        }
    }
}

/// Watches `changes` until it moves from `seen` or [`WATCH`] passes.
fn watch(changes: &AtomicU64, seen: u64) {
    let until = std::time::Instant::now() + WATCH;
    loop {
        for _ in 0..64 {
            if changes.load(Ordering::Acquire) != seen {
                return;
            }
            std::hint::spin_loop();
        }
        if std::time::Instant::now() >= until {
            return;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Thread `me` takes jobs until the file is done. `run` does a job and says where reading
/// ends when the job found it.
fn take_jobs(board: &Board, me: usize, run: &mut dyn FnMut(Job) -> Option<u64>) {
    let _stop = StopOnPanic(board);
    let (sched, cv) = (&board.sched, &board.cv);
    let mut st = lock(sched);
    // Whether this thread watched since its last job: it then sleeps.
    let mut watched = !board.watch;
    loop {
        match st.take(me) {
            Next::Done => {
                if st.sleepers > 0 {
                    cv.notify_all();
                }
                return;
            }
            Next::Wait if !watched => {
                let seen = board.changes.load(Ordering::Acquire);
                drop(st);
                watch(&board.changes, seen);
                watched = true;
                st = lock(sched);
            }
            Next::Wait => {
                st.sleepers += 1;
                st = cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                st.sleepers -= 1;
                watched = !board.watch;
            }
            Next::Job(job) => {
                drop(st);
                let end = run(job);
                st = lock(sched);
                st.finished(job, end);
                board.changes.fetch_add(1, Ordering::Release);
                watched = !board.watch;
                if st.sleepers > 0 {
                    cv.notify_all();
                }
            }
        }
    }
}

/// What puts chunks in file order, one chunk after the other.
struct InOrder<'p> {
    n: usize,
    clock: &'p mut SweepClock,
    routes: &'p mut HashMap<FragmentId, usize, FixedState>,
    waiting: &'p mut HashMap<FragmentId, Vec<Waiting>, FixedState>,
    summary: &'p mut Summary,
    fs: &'p mut FileSummary,
    /// Where the next chunk's first record must begin (a split file), and in what state of
    /// the file's blocks.
    expected: u64,
    state: WalkState,
}

impl InOrder<'_> {
    /// Chunk `i`, in order after the one before. Returns the chunk count when reading stops
    /// with this chunk.
    fn order(&mut self, c: &mut Chunk, i: u64, input: &Input<'_>, step: u64) -> Option<u64> {
        let n = self.n;
        let mut end = None;
        if let Input::Split(split) = input {
            let stop = (split.data_start() + (i + 1) * step).min(split.len());
            if self.expected >= stop {
                // A record from before covers the whole range.
                c.reset(n);
                c.next = self.expected;
                c.state = self.state.clone();
            } else if c.first != Some(self.expected) || (c.from_head && !split.agrees(&self.state))
            {
                walk_chunk(split, c, self.expected, stop, Start::Exact(&self.state), n);
            }
            self.expected = c.next;
            self.state = std::mem::take(&mut c.state);
        }
        self.summary.skipped_blocks += c.blocks.skipped_blocks + c.blocks.unknown_interface;
        let before = self.fs.records;
        self.fs.records += u64::from(c.count);
        // A walk's error counts records from its chunk's first; a stream's reader, from the
        // stream's.
        let walked = c.error.take().map(|mut e| {
            e.renumber(before);
            e
        });
        if let Some(e) = walked.or_else(|| c.stream_error.take()) {
            self.fs.error = Some(e.to_string());
            end = Some(i + 1);
        }
        self.summary.absorb(&c.counts);
        let records = u64::from(c.count);
        self.summary
            .tally_span(records, records - u64::from(c.skips), c.lo, c.hi);
        c.sweeps.clear();
        for &(pos, ts) in &c.maxima {
            if self.clock.due(ts) {
                c.sweeps.push((place(pos, SWEEP), ts));
            }
        }
        c.events = route_fragments(self.routes, self.waiting, c, n);
        end
    }
}

/// Flows one chunk ended, from every table, in the order one table would have ended them.
fn merge<R>(outs: &[Mutex<Vec<Ended<R>>>]) -> Vec<Ended<R>> {
    let mut all: Vec<Ended<R>> = Vec::with_capacity(outs.iter().map(|o| lock(o).len()).sum());
    for o in outs {
        all.append(&mut lock(o));
    }
    // Stable: the flows one packet ends come from one table, in its order; a sweep's flows
    // come from every table and go by first packet, then key.
    all.sort_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| {
            if a.0 & 3 == SWEEP {
                (a.1.flow.first_ns, a.1.flow.key).cmp(&(b.1.flow.first_ns, b.1.flow.key))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    all
}

pub(crate) fn analyze<'c, R: Send>(
    rf: Reference<'c>,
    paths: &[std::path::PathBuf],
    opts: Options,
    threads: usize,
    render: Render<'_, R>,
    sink: &mut dyn FnMut(&LabelledFlow, &R),
    progress: &mut dyn FnMut(usize, u64, u64),
) -> Summary {
    analyze_in(rf, paths, opts, threads, true, render, sink, progress)
}

/// [`analyze`], with the pool of threads started or not (as when it cannot start: the tests
/// take that path on purpose).
#[allow(clippy::too_many_arguments)]
fn analyze_in<'c, R: Send>(
    rf: Reference<'c>,
    paths: &[std::path::PathBuf],
    opts: Options,
    threads: usize,
    start_pool: bool,
    render: Render<'_, R>,
    sink: &mut dyn FnMut(&LabelledFlow, &R),
    progress: &mut dyn FnMut(usize, u64, u64),
) -> Summary {
    let n = threads.max(1);
    // Each table's share of the cap, with room for the hash's uneven split: a capture that
    // one table holds without evicting is held by these too (a million flows over two
    // tables differ by about a thousand), and all of them together hold at most 9/8 of it.
    let cap = opts.flow.max_flows.max(1);
    let per_table = flowdoc_flow::FlowConfig {
        max_flows: (cap / n + cap / (8 * n)).clamp(1, cap),
        // The flows an eviction ends are held (with their lines) until they are written: a
        // sixteenth of the table at a time, not nine (a SYN flood of 2M flows peaked at
        // 1.45 GB on two threads).
        evict_to_16ths: 15,
        ..opts.flow
    };
    let mut run = Parallel {
        rf,
        render,
        opts,
        n,
        workers: (0..n).map(|_| Worker::new(rf, per_table)).collect(),
        clock: SweepClock::new(&opts.flow),
        routes: HashMap::with_hasher(FixedState::default()),
        waiting: HashMap::with_hasher(FixedState::default()),
        slots: (0..opts.split.chunks(n).max(1))
            .map(|_| Slot {
                chunk: RwLock::new(Chunk::default()),
                outs: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            })
            .collect(),
        summary: Summary::begin(rf),
        // Without a pool (it could not start) the same jobs run on this thread alone.
        pool: (n > 1 && start_pool).then(|| pool(n - 1)).flatten(),
    };
    for (i, p) in paths.iter().enumerate() {
        run.read_file(p, sink, &mut |pos, len| progress(i, pos, len));
    }
    run.finish(sink)
}

/// The pool of `threads` threads that work beside the calling one, or `None` when it cannot
/// start. Each thread starts away from the CPU the calling thread is on (see [`Away`]).
fn pool(threads: usize) -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("flowdoc-{}", i + 1))
        .spawn_handler(|t| {
            let mut b = std::thread::Builder::new();
            if let Some(name) = t.name() {
                b = b.name(name.to_owned());
            }
            if let Some(size) = t.stack_size() {
                b = b.stack_size(size);
            }
            let away = Away::here();
            // The thread takes its CPUs back only once it has been sent away (it may run
            // before `spawn` returns): it waits for `sent` to be dropped.
            let (sent, wait) = std::sync::mpsc::channel::<()>();
            let h = b.spawn(move || {
                let _ = wait.recv();
                away.back();
                t.run()
            })?;
            away.send(&h);
            drop(sent);
            Ok(())
        })
        .build()
        .ok()
}

/// A new thread's start, away from the CPU of the thread that spawned it. Linux often queues
/// a new thread on its parent's CPU, where it waits, the parent busy reading, until the next
/// balancing moves it to an idle CPU: the pool's thread began its first job 0.4-3.0 ms after
/// the pool was built (0.1-0.2 ms once sent away; a C program that spawns a thread and stays
/// busy sees the same, here). The new thread is allowed every CPU its parent is allowed but
/// the parent's own until it runs, then all of them again: it is never pinned.
#[derive(Clone, Copy)]
struct Away {
    #[cfg(target_os = "linux")]
    allowed: Option<libc::cpu_set_t>,
}

impl Away {
    /// The CPUs this thread may run on.
    #[allow(unsafe_code)]
    fn here() -> Away {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `cpu_set_t` is plain data (all zeroes is the empty set), and
            // `sched_getaffinity` writes at most the size it is given.
            let allowed = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let got = libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set);
                (got == 0).then_some(set)
            };
            Away { allowed }
        }
        #[cfg(not(target_os = "linux"))]
        Away {}
    }

    /// Asks for the new thread `h` to start on any of the allowed CPUs but the one this
    /// thread is on (when there is another).
    #[allow(unsafe_code)]
    fn send<T>(&self, h: &std::thread::JoinHandle<T>) {
        #[cfg(target_os = "linux")]
        if let Some(mut set) = self.allowed {
            use std::os::unix::thread::JoinHandleExt;
            // SAFETY: the set is plain data; `CPU_CLR` ignores a CPU outside it; the thread
            // handle is live (the thread is not joined, and a thread that has already ended
            // is still a valid target until it is).
            unsafe {
                if let Ok(cpu) = usize::try_from(libc::sched_getcpu()) {
                    libc::CPU_CLR(cpu, &mut set);
                }
                if libc::CPU_COUNT(&set) > 0 {
                    libc::pthread_setaffinity_np(
                        h.as_pthread_t(),
                        std::mem::size_of_val(&set),
                        &set,
                    );
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = h;
    }

    /// On the new thread, once it runs: every CPU its parent was allowed again.
    #[allow(unsafe_code)]
    fn back(&self) {
        #[cfg(target_os = "linux")]
        if let Some(set) = &self.allowed {
            // SAFETY: the set is plain data, read for its size.
            unsafe {
                libc::sched_setaffinity(0, std::mem::size_of_val(set), set);
            }
        }
    }
}

impl<R: Send> Parallel<'_, '_, R> {
    fn read_file(
        &mut self,
        path: &Path,
        sink: &mut dyn FnMut(&LabelledFlow, &R),
        progress: &mut dyn FnMut(u64, u64),
    ) {
        let mut fs = FileSummary::new(path);
        match PcapSplit::open(path, self.opts.read_mode == ReadMode::Mmap) {
            Some(split) => {
                fs.format = Some(split.format().name());
                fs.link_types = split.link_types(&split.start_state());
                let step = self.opts.split.chunk_bytes.max(1);
                let chunks = (split.len().saturating_sub(split.data_start())).div_ceil(step);
                self.run_file(&Input::Split(&split), chunks, &mut fs, sink, progress);
            }
            None => match CaptureReader::open(path, self.opts.read_mode) {
                Ok(reader) => {
                    fs.format = Some(reader.format().name());
                    // The blocks the reader skips are counted by the walks of its spans.
                    let spans = reader.spans();
                    let reader = Mutex::new(reader);
                    let input = Input::Serial(&reader, &spans);
                    self.run_file(&input, u64::MAX, &mut fs, sink, progress);
                    let reader = reader.into_inner().unwrap_or_else(PoisonError::into_inner);
                    fs.link_types = reader.link_types();
                }
                Err(e) => {
                    fs.unreadable = e.is_unreadable();
                    fs.error = Some(e.to_string());
                }
            },
        }
        self.summary.files.push(fs);
    }

    /// Every thread takes jobs until the file's chunks are all written out: chunks are read,
    /// put in order, folded and written while others are, so no thread waits for a round to
    /// end, only for a chunk it needs.
    fn run_file(
        &mut self,
        input: &Input<'_>,
        chunks: u64,
        fs: &mut FileSummary,
        sink: &mut dyn FnMut(&LabelledFlow, &R),
        progress: &mut dyn FnMut(u64, u64),
    ) {
        let n = self.n;
        let step = self.opts.split.chunk_bytes.max(1);
        let render = self.render;
        let slots = &self.slots;
        let w = slots.len() as u64;
        let (mapped, len, start, state) = match input {
            Input::Split(s) => (s.mapped(), s.len(), s.data_start(), s.start_state()),
            Input::Serial(r, _) => (None, lock(r).file_len(), 0, WalkState::default()),
        };
        let in_order = Mutex::new(InOrder {
            n,
            clock: &mut self.clock,
            routes: &mut self.routes,
            waiting: &mut self.waiting,
            summary: &mut self.summary,
            fs,
            expected: start,
            state: state.clone(),
        });
        let tables: Vec<Mutex<&mut Worker<'_>>> = self.workers.iter_mut().map(Mutex::new).collect();
        // A serial input's reader: the last of the pool's threads, or this thread alone.
        let reader = if self.pool.is_some() { n - 1 } else { 0 };
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let board = Board {
            sched: Mutex::new(Sched::new(
                chunks,
                slots.len(),
                n,
                matches!(input, Input::Serial(..)).then_some(reader),
            )),
            cv: Condvar::new(),
            changes: AtomicU64::new(0),
            watch: self.pool.is_some() && n <= cores,
        };
        let slot = |i: u64| &slots[(i % w) as usize];
        let shared = |job: Job| -> Option<u64> {
            match job {
                Job::Read(i) => {
                    let mut c = slot(i).write();
                    match input {
                        Input::Split(split) => {
                            let a = start + i * step;
                            let from = if i == 0 {
                                Start::Exact(&state)
                            } else {
                                Start::Guess
                            };
                            walk_chunk(split, &mut c, a, (a + step).min(len), from, n);
                            None
                        }
                        Input::Serial(reader, _) => {
                            read_span(&mut lock(reader), &mut c, step).then_some(i + 1)
                        }
                    }
                }
                Job::Walk(i) => {
                    if let Input::Serial(_, spans) = input {
                        walk_span(spans, &mut slot(i).write(), n);
                    }
                    None
                }
                Job::Order(a, b) => {
                    let mut o = lock(&in_order);
                    for i in a..b {
                        let mut c = slot(i).write();
                        if let Some(end) = o.order(&mut c, i, input, step) {
                            return Some(end);
                        }
                    }
                    None
                }
                Job::Fold(t, i) => {
                    let s = slot(i);
                    let c = s.read();
                    let out = fold_table(&mut lock(&tables[t]), t, &c, mapped, render);
                    *lock(&s.outs[t]) = out;
                    None
                }
                // Taken by the sink's thread only.
                Job::Drain(_) => None,
            }
        };
        // Where the last chunk written out ended.
        let mut pos = start;
        let mut own = |job: Job| -> Option<u64> {
            let Job::Drain(i) = job else {
                return shared(job);
            };
            let s = slot(i);
            for (_, lf, r) in merge(&s.outs) {
                sink(&lf, &r);
            }
            let next = s.read().next;
            if let Input::Split(split) = input {
                split.done_with(pos, next);
            }
            pos = next;
            progress(pos.min(len), len);
            None
        };
        match &self.pool {
            // A panic in a job comes back here when the scope ends.
            Some(pool) => pool.in_place_scope(|scope| {
                for me in 1..n {
                    let (board, shared) = (&board, &shared);
                    scope.spawn(move |_| take_jobs(board, me, &mut |job| shared(job)));
                }
                take_jobs(&board, 0, &mut own);
            }),
            None => take_jobs(&board, 0, &mut own),
        }
        // The link types the file declared, from the state the last walk in order ended in.
        if let Input::Split(split) = input {
            let o = in_order
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner);
            o.fs.link_types = split.link_types(&o.state);
        }
        progress(len, len);
    }

    /// Ends every open flow (the first table's on this thread, each other's on one of the
    /// pool's threads) and merges them by first packet.
    fn finish(mut self, sink: &mut dyn FnMut(&LabelledFlow, &R)) -> Summary {
        // Fragments whose first never came: one table counts them as orphans.
        if let Some(w) = self.workers.first_mut() {
            for (fid, list) in self.waiting.drain() {
                for f in list {
                    w.fragment(f.ts, fid);
                }
            }
        }
        // Each table ends its flows in order of first packet, then key, labels and renders
        // them and hands them over a few at a time; this thread merges them (a key is in one
        // table only) and writes. The first table's flows are made here, as the merge needs
        // them, the others' each on one of the pool's threads (the n - 1 that read and
        // folded, idle now: their heaps and line buffers are warm, where a thread started
        // for the end grew a heap of its own, page by page). Memory holds a few blocks per
        // table, not every open flow's output, and the blocks are still in cache when
        // written. When this thread finds a table's next block not there yet, that table's
        // thread hands its next block over labelled but not rendered, and this thread
        // renders it: the work evens out between the threads whichever is slower (this one
        // also writes every flow).
        let (rf, render) = (self.rf, self.render);
        let label_only = |f: Flow| (label(rf, f), None);
        let label_only = &label_only;
        let mut workers = self.workers.iter_mut();
        let Some(own) = workers.next() else {
            return self.summary;
        };
        let hungry: Vec<AtomicBool> = (1..self.n).map(|_| AtomicBool::new(false)).collect();
        let others = Mutex::new(TableStats::default());
        let mut lanes = Vec::with_capacity(self.n);
        lanes.push(Lane {
            source: Source::Here(own.table.finish_sorted()),
            block: Vec::new(),
            at: 0,
        });
        // Without a pool, every table's flows are made here.
        let mut handers = Vec::with_capacity(self.n);
        for (w, hungry) in workers.zip(&hungry) {
            if self.pool.is_none() {
                lanes.push(Lane {
                    source: Source::Here(w.table.finish_sorted()),
                    block: Vec::new(),
                    at: 0,
                });
                others
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .add(&w.table.stats());
                continue;
            }
            let (tx, rx) = std::sync::mpsc::sync_channel::<Block<R>>(4);
            // The flows and what `render` made of them come back once written, to be
            // freed by the thread that made them: glibc frees another thread's memory
            // slowly (under that arena's lock), and the merging thread is the one every
            // flow waits for.
            let (back, spent) = std::sync::mpsc::channel::<Block<R>>();
            lanes.push(Lane {
                source: Source::Thread {
                    rx: Some(rx),
                    back: Some(back),
                    hungry,
                },
                block: Vec::new(),
                at: 0,
            });
            let others = &others;
            handers.push(move || {
                hand_over(w, rf, render, &tx, &spent, hungry);
                drop(tx);
                // Until the merging thread has used this table's last block.
                spent.iter().for_each(drop);
                others
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .add(&w.table.stats());
            });
        }
        let mut merge_all = |mut lanes: Vec<Lane<'_, R>>| loop {
            let mut best: Option<(usize, (i64, FlowKey))> = None;
            for (i, lane) in lanes.iter_mut().enumerate() {
                if let Some((lf, _)) = lane.head(label_only) {
                    let k = (lf.flow.first_ns, lf.flow.key);
                    if best.is_none_or(|(_, b)| k < b) {
                        best = Some((i, k));
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let lane = &mut lanes[i];
            if let Some((lf, r)) = lane.block.get(lane.at) {
                match r {
                    Some(r) => sink(lf, r),
                    None => sink(lf, &render(lf)),
                }
                lane.at += 1;
            }
        };
        match &self.pool {
            // A panic on a table's thread comes back here when the scope ends (its lane
            // sees the table end early, so the merge ends too).
            Some(pool) => pool.in_place_scope(|scope| {
                for h in handers {
                    scope.spawn(move |_| h());
                }
                merge_all(lanes);
            }),
            None => merge_all(lanes),
        }
        let mut table = others.into_inner().unwrap_or_else(PoisonError::into_inner);
        table.add(&own.table.stats());
        self.summary.table = table;
        self.summary
    }
}

/// A table's thread at the end: its open flows, in order, labelled and (unless the merging
/// thread is waiting for them) rendered, handed over [`FINISH_BLOCK`] at a time; blocks the
/// merging thread is done with are freed here as they come back.
fn hand_over<R>(
    w: &mut Worker<'_>,
    rf: Reference<'_>,
    render: Render<'_, R>,
    tx: &std::sync::mpsc::SyncSender<Block<R>>,
    spent: &std::sync::mpsc::Receiver<Block<R>>,
    hungry: &AtomicBool,
) {
    let mut block = Vec::with_capacity(FINISH_BLOCK);
    let mut lazy = false;
    for f in w.table.finish_sorted() {
        let lf = label(rf, f);
        let r = (!lazy).then(|| render(&lf));
        block.push((lf, r));
        if block.len() == FINISH_BLOCK {
            let full = std::mem::replace(&mut block, Vec::with_capacity(FINISH_BLOCK));
            if tx.send(full).is_err() {
                return;
            }
            spent.try_iter().for_each(drop);
            lazy = hungry.swap(false, Ordering::Relaxed);
        }
    }
    if !block.is_empty() {
        // The merging thread only hangs up when it unwinds.
        let _ = tx.send(block);
    }
}

/// Flows a table hands over at the end, each with what `render` made of it, or `None` when
/// it is left to the merging thread to render.
type Block<R> = Vec<(LabelledFlow, Option<R>)>;

/// Where a table's flows come from at the end.
enum Source<'h, R> {
    /// Made on this thread as the merge needs them.
    Here(Finished),
    /// Made by the table's own thread and handed over in blocks.
    Thread {
        rx: Option<std::sync::mpsc::Receiver<Block<R>>>,
        back: Option<std::sync::mpsc::Sender<Block<R>>>,
        /// Set when the merge found no block waiting: the table's thread then hands its next
        /// block over unrendered.
        hungry: &'h AtomicBool,
    },
}

/// One table's flows at the end.
struct Lane<'h, R> {
    source: Source<'h, R>,
    /// The block in hand, written up to `at`. A block stays whole until it is used up, then
    /// is freed here or goes back to the table's thread: its flows and lines (a few hundred
    /// bytes each) are never moved one by one.
    block: Block<R>,
    at: usize,
}

impl<R> Lane<'_, R> {
    /// The table's next flow, made here or waited for from its thread when the block in hand
    /// is used up; `None` once the table has no more.
    fn head(
        &mut self,
        make: &dyn Fn(Flow) -> (LabelledFlow, Option<R>),
    ) -> Option<&(LabelledFlow, Option<R>)> {
        while self.at == self.block.len() {
            self.at = 0;
            match &mut self.source {
                Source::Here(flows) => {
                    self.block.clear();
                    self.block
                        .extend(flows.by_ref().take(FINISH_BLOCK).map(make));
                    if self.block.is_empty() {
                        return None;
                    }
                }
                Source::Thread { rx, back, hungry } => {
                    let spent = std::mem::take(&mut self.block);
                    if !spent.is_empty() {
                        if let Some(back) = back {
                            // A table thread that is gone leaves it to be freed here.
                            let _ = back.send(spent);
                        }
                    }
                    let rx_now = rx.as_ref()?;
                    let got = match rx_now.try_recv() {
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            hungry.store(true, Ordering::Relaxed);
                            rx_now.recv().ok()
                        }
                        got => got.ok(),
                    };
                    match got {
                        Some(b) => self.block = b,
                        None => {
                            *rx = None;
                            // Lets the table's thread end.
                            *back = None;
                        }
                    }
                }
            }
        }
        self.block.get(self.at)
    }
}

/// Table `s`'s packets of a chunk, in file order, with the sweeps and its fragments at
/// their places. Returns the flows that ended, each with the place that ended it.
fn fold_table<R>(
    w: &mut Worker<'_>,
    s: usize,
    c: &Chunk,
    mapped: Option<&[u8]>,
    render: Render<'_, R>,
) -> Vec<Ended<R>> {
    let (sweeps, frags) = (&c.sweeps, &c.events[s]);
    let mut out = Vec::new();
    let (mut si, mut fi) = (0, 0);
    // Sweeps and fragments placed before `limit`; returns the place of the next one.
    let mut events_until = |w: &mut Worker<'_>, limit: u64, out: &mut Vec<Ended<R>>| loop {
        let sweep = sweeps.get(si).filter(|e| e.0 < limit);
        let frag = frags.get(fi).filter(|e| e.place < limit);
        match (sweep, frag) {
            (Some(&(at, ts)), f) if f.is_none_or(|f| at < f.place) => {
                si += 1;
                w.sweep(ts, &mut |lf| {
                    let r = render(&lf);
                    out.push((at, lf, r))
                });
            }
            (_, Some(f)) => {
                fi += 1;
                w.fragment(f.ts, f.fid);
            }
            _ => {
                let sweep = sweeps.get(si).map_or(u64::MAX, |e| e.0);
                break sweep.min(frags.get(fi).map_or(u64::MAX, |e| e.place));
            }
        }
    };
    // Packets placed before it have no event to wait for.
    let mut next_event = events_until(w, 0, &mut out);
    let descs = &c.shards[s];
    let bytes: &[u8] = match mapped {
        Some(m) => m.get(c.base as usize..).unwrap_or(&[]),
        None => &c.buf,
    };
    let chunk = ChunkView {
        bytes,
        firsts: &c.firsts,
        wide: &c.wide,
    };
    for (i, d) in descs.iter().enumerate() {
        if let Some(a) = descs.get(i + PREFETCH) {
            w.table.prefetch_slot(a.hash);
        }
        if let Some(b) = descs.get(i + PREFETCH / 2) {
            w.table.prefetch_flow(b.hash);
        }
        let at = place(d.pos, RECORD);
        if next_event < at {
            next_event = events_until(w, at, &mut out);
        }
        let p = Packed { d, chunk: &chunk };
        w.fold(d.packet_hash(), d.ts, d.len, &p, &mut |lf| {
            let r = render(&lf);
            out.push((at, lf, r))
        });
    }
    events_until(w, u64::MAX, &mut out);
    out
}

/// Sends each non-first fragment of a chunk to the table of its datagram's first fragment,
/// at its place (before the first one came, the table holds it as one table would).
fn route_fragments(
    routes: &mut HashMap<FragmentId, usize, FixedState>,
    waiting: &mut HashMap<FragmentId, Vec<Waiting>, FixedState>,
    c: &Chunk,
    n: usize,
) -> Vec<Vec<FragEvent>> {
    let mut ev: Vec<Vec<FragEvent>> = (0..n).map(|_| Vec::new()).collect();
    let (mut a, mut b) = (c.firsts.iter().peekable(), c.frags.iter().peekable());
    loop {
        let first_next = match (a.peek(), b.peek()) {
            (Some(f), Some(g)) => f.0 < g.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if first_next {
            let Some(&(pos, fid, s)) = a.next() else {
                break;
            };
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
            routes.insert(fid, s);
            for wt in waiting.remove(&fid).unwrap_or_default() {
                ev[s].push(FragEvent {
                    place: wt.at.unwrap_or(place(pos, BEFORE)),
                    ts: wt.ts,
                    fid,
                });
            }
        } else {
            let Some(&(pos, ts, fid)) = b.next() else {
                break;
            };
            let at = place(pos, RECORD);
            if let Some(&s) = routes.get(&fid) {
                ev[s].push(FragEvent { place: at, ts, fid });
                continue;
            }
            if waiting.len() >= MAX_ROUTES {
                // Too many datagrams without their first: one table counts them.
                for (fid, list) in waiting.drain() {
                    for wt in list {
                        ev[0].push(FragEvent {
                            place: wt.at.unwrap_or(place(pos, BEFORE)),
                            ts: wt.ts,
                            fid,
                        });
                    }
                }
            }
            waiting
                .entry(fid)
                .or_default()
                .push(Waiting { at: Some(at), ts });
        }
    }
    // Places are of this chunk: those still waiting will be placed before their first.
    for list in waiting.values_mut() {
        for wt in list {
            wt.at = None;
        }
    }
    for e in &mut ev {
        e.sort_by_key(|f| f.place);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a table reads of a packet through [`PacketView`].
    fn view<'a>(v: &impl PacketView<'a>) -> String {
        format!(
            "{:?} {:?} {} {} {} {} {}",
            v.endpoints(),
            v.proto(),
            v.v6(),
            v.tcp_flags(),
            v.tcp_seq(),
            v.has_payload_or_icmp(),
            v.first_fragment()
        )
    }

    /// The flows a capture gives, as JSON-like debug lines, on `threads` tables, with the
    /// pool of threads or without.
    /// (On one thread, the engine's own loop, not the tables'.)
    fn flows(path: &std::path::Path, threads: usize, start_pool: bool) -> (Vec<String>, u64) {
        let cat = flowdoc_catalogue::Catalogue::embedded();
        let rf = Reference {
            catalogue: &cat,
            inventory: None,
        };
        let mut out = Vec::new();
        let paths = [path.to_path_buf()];
        let render = |lf: &LabelledFlow| format!("{:?} {:?}", lf.flow, lf.class);
        let mut sink = |_: &LabelledFlow, line: &String| out.push(line.clone());
        let s = if threads == 1 {
            crate::analyze_files_with(
                rf,
                &paths,
                Options::default(),
                1,
                &render,
                &mut sink,
                &mut |_, _, _| {},
            )
        } else {
            analyze_in(
                rf,
                &paths,
                Options::default(),
                threads,
                start_pool,
                &render,
                &mut sink,
                &mut |_, _, _| {},
            )
        };
        (out, s.packets)
    }

    /// The pool's threads start away from the calling thread's CPU but are not kept off
    /// it: once running, each may run on every CPU the calling thread may.
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)]
    fn the_pools_threads_may_run_on_every_cpu() {
        fn allowed() -> Vec<usize> {
            let set = Away::here().allowed.expect("this thread's CPUs");
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| {
                    // SAFETY: `c` is below the set's size.
                    unsafe { libc::CPU_ISSET(c, &set) }
                })
                .collect()
        }
        let mine = allowed();
        let pool = pool(3).expect("a pool");
        let theirs = Mutex::new(Vec::new());
        pool.scope(|s| {
            for _ in 0..3 {
                s.spawn(|_| {
                    // Long enough for every thread to take one.
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    lock(&theirs).push(allowed());
                });
            }
        });
        let theirs = theirs.into_inner().expect("not poisoned");
        assert_eq!(theirs.len(), 3);
        for cpus in theirs {
            assert_eq!(cpus, mine, "a pool thread is held to some of the CPUs");
        }
    }

    /// Without a pool of threads (it could not start), every job and every table's end run
    /// on the calling thread: one thread's flows, in one thread's order.
    #[test]
    fn without_a_pool_the_tables_give_one_threads_flows() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        // A file cut into ranges, and one read in order (gzip).
        for name in ["cluster.pcap", "midstream-ns-be.pcap.gz"] {
            let path = fixtures.join(name);
            let (one, packets) = flows(&path, 1, true);
            assert!(one.len() > 5, "{name}: {} flows", one.len());
            assert!(packets > 10, "{name}: {packets} packets");
            for threads in [2, 3] {
                assert_eq!(
                    flows(&path, threads, false),
                    (one.clone(), packets),
                    "{name}: {threads} tables"
                );
                assert_eq!(
                    flows(&path, threads, true),
                    (one.clone(), packets),
                    "{name}: {threads} threads"
                );
            }
        }
    }

    /// Every field of a packet comes back from its descriptor as it went in.
    #[test]
    fn a_descriptor_gives_back_the_packet_it_was_made_from() {
        let v4 = |a: [u8; 4]| {
            let mut x = [0u8; 16];
            x[12..].copy_from_slice(&a);
            x
        };
        let addrs = [
            (v4([10, 0, 0, 1]), v4([192, 168, 255, 254]), false),
            ([0xfe; 16], [0x20; 16], true),
            // IPv6 addresses whose first twelve bytes are zero fit in the descriptor; the V6
            // flag keeps their family.
            (v4([0, 0, 0, 1]), v4([0, 0, 0, 2]), true),
            (v4([1, 2, 3, 4]), [0x01; 16], true),
        ];
        let payload = [7u8; 3];
        let fid = FragmentId {
            src: [1; 16],
            dst: [2; 16],
            ip_proto: 17,
            id: 9,
        };
        let mut wide = Vec::new();
        let mut n = 0;
        for &(src, dst, v6) in &addrs {
            for proto in [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Icmpv6] {
                for tunnel in [
                    None,
                    Some(Tunnel::IpInIp),
                    Some(Tunnel::SixInFour),
                    Some(Tunnel::Gre),
                ] {
                    for vlan in [None, Some(0), Some(4095)] {
                        for icmp in [None, Some((0, 0)), Some((255, 3))] {
                            for first_fragment in [None, Some(fid)] {
                                let p = Packet {
                                    src,
                                    dst,
                                    v6,
                                    proto,
                                    sport: 5060 + n,
                                    dport: 65535 - n,
                                    tcp_flags: n as u8,
                                    tcp_seq: u32::MAX - u32::from(n),
                                    icmp,
                                    payload: &payload,
                                    tunnel,
                                    vlan,
                                    first_fragment,
                                };
                                let h = packet_hash(&p);
                                let d = Desc::new(&p, h, -5, 3, 1500, (0, 3), &mut wide);
                                assert_eq!(d.packet_hash(), h);
                                assert_eq!(d.first_fragment(), first_fragment.is_some());
                                let back = d.packet(&payload, first_fragment, &wide);
                                assert_eq!(format!("{back:?}"), format!("{p:?}"));
                                // The view a table folds gives the packet's answers, with
                                // and without payload bytes; its payload and datagram are
                                // looked up in the chunk's bytes and first fragments.
                                let other = FragmentId { id: 10, ..fid };
                                let firsts = match first_fragment {
                                    Some(f) => vec![(1, other, 0), (3, f, 0), (7, other, 1)],
                                    None => vec![(1, other, 0), (7, other, 1)],
                                };
                                for len in [3, 0] {
                                    let bytes = &payload[..len];
                                    let p = Packet {
                                        payload: bytes,
                                        ..p
                                    };
                                    let mut side = Vec::new();
                                    let at = (0, len as u32);
                                    let d = Desc::new(&p, h, -5, 3, 1500, at, &mut side);
                                    let chunk = ChunkView {
                                        bytes: &payload,
                                        firsts: &firsts,
                                        wide: &side,
                                    };
                                    let packed = Packed {
                                        d: &d,
                                        chunk: &chunk,
                                    };
                                    assert_eq!(view(&packed), view(&p));
                                    assert_eq!(format!("{:?}", packed.packet()), format!("{p:?}"));
                                }
                                n += 1;
                            }
                        }
                    }
                }
            }
        }
        // Only the pairs that need more than four bytes each went to the side list.
        assert_eq!(wide.len(), n as usize / 4 * 2);
    }
}

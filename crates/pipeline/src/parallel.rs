//! Several threads on one analysis, with the results of one thread.
//!
//! A file is read in epochs of a few megabytes, each in two phases:
//!
//! 1. **Read and dissect** (every thread): the epoch is cut into chunks of bytes that threads
//!    take in turn. A thread reads its chunk with `pread`, finds where its first record begins
//!    ([`PcapSplit`] guesses from a chain of record headers), dissects every record and files
//!    each packet under the flow table (shard) its symmetric hash picks, with the hash and the
//!    record's place. Before its first job the writing thread writes the flows the last
//!    epoch ended.
//!    The guesses are then checked in file order: each chunk must begin exactly where the one
//!    before ended, or it is walked again from there. Files that cannot be cut (pcapng, gzip,
//!    FIFOs) are read by one thread into the same chunks.
//! 2. **Fold** (one thread per flow table): each table takes its packets chunk by chunk in
//!    file order, so every flow sees its packets in the order one table would.
//!
//! The two phases of neighbouring epochs overlap: while the tables fold epoch `k` from one
//! set of chunks, the threads read epoch `k + 1` into the other set. The jobs of a round (the
//! tables, then the chunks) are taken from one queue, so a thread that is done with its table
//! reads instead of waiting for the slowest table, and a round ends at one wait, not two.
//!
//! The rest keeps one thread's results exactly: the table sweeps (idle and active timeouts)
//! happen at the packets where one thread's clock would sweep, found from each chunk's
//! running maxima of time; non-first IP fragments go to the table of their datagram's first
//! fragment, at their place; every flow that ends is tagged with the place of the record that
//! ended it, and the tables' flows are merged by that place (flows a sweep ends by first
//! packet, then key; the flows open at the end likewise).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use flowdoc_capture::{CaptureError, CaptureReader, PcapSplit, ReadMode, Record};
use flowdoc_dissect::{dissect, Addr, Dissected, FragmentId, Packet, Proto, Tunnel};
use flowdoc_flow::{packet_hash, Flow, FlowKey, TableStats};
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

/// The place of an event: chunk of the epoch, record in the chunk, kind.
fn place(chunk: usize, pos: u32, kind: u64) -> u64 {
    ((chunk as u64) << 40) | (u64::from(pos) << 2) | kind
}

/// The table (of `n`) that owns a packet's flow: from the hash's low half, which the tables'
/// own indexes do not use.
fn shard_of(hash: u64, n: usize) -> usize {
    (((hash & 0xffff_ffff) * n as u64) >> 32) as usize
}

/// One packet for one table, packed (88 bytes: phase 1 writes one per packet and phase 2
/// reads it back). Its payload stays in its chunk's buffer; a first fragment's datagram is in
/// the chunk's `firsts`.
#[derive(Debug)]
struct Desc {
    hash: u64,
    ts: i64,
    src: Addr,
    dst: Addr,
    tcp_seq: u32,
    pos: u32,
    len: u32,
    at: u32,
    n: u32,
    sport: u16,
    dport: u16,
    vlan: Option<u16>,
    icmp: Option<(u8, u8)>,
    proto: Proto,
    v6: bool,
    tcp_flags: u8,
    tunnel: Option<Tunnel>,
    first_fragment: bool,
}

impl Desc {
    fn packet<'b>(&self, payload: &'b [u8], first_fragment: Option<FragmentId>) -> Packet<'b> {
        Packet {
            src: self.src,
            dst: self.dst,
            v6: self.v6,
            proto: self.proto,
            sport: self.sport,
            dport: self.dport,
            tcp_flags: self.tcp_flags,
            tcp_seq: self.tcp_seq,
            icmp: self.icmp,
            payload,
            tunnel: self.tunnel,
            vlan: self.vlan,
            first_fragment,
        }
    }
}

/// A part of an epoch, read and dissected by one thread.
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
    /// Packets by table.
    shards: Vec<Vec<Desc>>,
    /// Non-first fragments: place, time, datagram.
    frags: Vec<(u32, i64, FragmentId)>,
    /// First fragments: place, datagram, table.
    firsts: Vec<(u32, FragmentId, usize)>,
    /// Packets later than every packet before them in the chunk (place, time): the only
    /// packets where the sweep clock can strike.
    maxima: Vec<(u32, i64)>,
    counts: Summary,
}

impl Chunk {
    fn reset(&mut self, n: usize) {
        self.first = None;
        self.next = 0;
        self.count = 0;
        self.error = None;
        self.shards.resize_with(n, Vec::new);
        self.shards.iter_mut().for_each(Vec::clear);
        self.frags.clear();
        self.firsts.clear();
        self.maxima.clear();
        self.counts = Summary::default();
    }

    /// Files one record; `payload_at` says where the packet's payload is kept in the buffer.
    fn record(&mut self, rec: &Record<'_>, n: usize, payload_at: impl FnOnce(&[u8]) -> (u32, u32)) {
        let pos = self.count;
        self.count += 1;
        let d = dissect(rec.link_type, rec.data);
        self.counts.tally(rec.ts_ns, &d);
        match &d {
            Dissected::Packet(p) => {
                let hash = packet_hash(p);
                let s = shard_of(hash, n);
                if self.maxima.last().is_none_or(|&(_, t)| rec.ts_ns > t) {
                    self.maxima.push((pos, rec.ts_ns));
                }
                if let Some(fid) = p.first_fragment {
                    self.firsts.push((pos, fid, s));
                }
                let (at, len) = payload_at(p.payload);
                self.shards[s].push(Desc {
                    hash,
                    ts: rec.ts_ns,
                    src: p.src,
                    dst: p.dst,
                    tcp_seq: p.tcp_seq,
                    pos,
                    len: rec.orig_len,
                    at,
                    n: len,
                    sport: p.sport,
                    dport: p.dport,
                    vlan: p.vlan,
                    icmp: p.icmp,
                    proto: p.proto,
                    v6: p.v6,
                    tcp_flags: p.tcp_flags,
                    tunnel: p.tunnel,
                    first_fragment: p.first_fragment.is_some(),
                });
            }
            Dissected::Fragment(fid) => self.frags.push((pos, rec.ts_ns, *fid)),
            Dissected::Skip(_) => {}
        }
    }
}

/// Walks one range of a pcap file into a chunk.
fn walk_chunk(split: &PcapSplit, c: &mut Chunk, start: u64, end: u64, exact: bool, n: usize) {
    let mut buf = std::mem::take(&mut c.buf);
    c.reset(n);
    let w = split.walk(start, end, exact, &mut buf, &mut |rec, at| {
        let base = rec.data.as_ptr() as usize;
        c.record(&rec, n, |pl| {
            let off = (pl.as_ptr() as usize).wrapping_sub(base);
            if pl.is_empty() || off > rec.data.len() {
                (0, 0)
            } else {
                ((at + off) as u32, pl.len() as u32)
            }
        });
    });
    c.buf = buf;
    c.base = start;
    c.first = w.first;
    c.next = w.next;
    c.error = w.error;
}

/// A flow that ended, with the place that ended it and what `render` made of it.
type Ended<R> = (u64, LabelledFlow, R);

/// A non-first fragment whose datagram's first fragment has not come yet: its place when it
/// is in the epoch being routed.
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
    /// Two sets of an epoch's chunks: while the tables fold one epoch from one set, the
    /// next epoch is read into the other.
    chunks: [Vec<Mutex<Chunk>>; 2],
    /// Flows ended by the last epoch, in order, for the sink.
    ready: Vec<Ended<R>>,
    summary: Summary,
    /// The other `n - 1` threads, started once for the whole run: each epoch's two phases
    /// hand them work instead of starting threads of their own (two per epoch, hundreds per
    /// gigabyte, each a stack to map, fault in and unmap, and a wake-up to wait for).
    pool: Option<rayon::ThreadPool>,
}

/// Hands flows to the sink.
fn drain<R>(ready: &mut Vec<Ended<R>>, sink: &mut dyn FnMut(&LabelledFlow, &R)) {
    for (_, lf, r) in ready.drain(..) {
        sink(&lf, &r);
    }
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
    let n = threads.max(1);
    // Each table's share of the cap, with room for the hash's uneven split: a capture that
    // one table holds without evicting is held by these too (a million flows over two
    // tables differ by about a thousand), and all of them together hold at most 9/8 of it.
    let cap = opts.flow.max_flows.max(1);
    let per_table = flowdoc_flow::FlowConfig {
        max_flows: (cap / n + cap / (8 * n)).clamp(1, cap),
        // The flows an eviction ends are held (with their lines) until the round is merged:
        // a sixteenth of the table at a time, not nine (a SYN flood of 2M flows peaked at
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
        chunks: [0, 1].map(|_| {
            (0..opts.split.chunks(n))
                .map(|_| Mutex::new(Chunk::default()))
                .collect()
        }),
        ready: Vec::new(),
        summary: Summary::begin(rf),
        // Without a pool (it could not start) the same work runs on this thread alone,
        // in the same order.
        pool: (n > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n - 1)
                    .thread_name(|i| format!("flowdoc-{}", i + 1))
                    .build()
                    .ok()
            })
            .flatten(),
    };
    for (i, p) in paths.iter().enumerate() {
        run.read_file(p, sink, &mut |pos, len| progress(i, pos, len));
    }
    run.finish(sink)
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
            Some(split) => self.read_split(&split, &mut fs, sink, progress),
            None => self.read_serial(path, &mut fs, sink, progress),
        }
        self.summary.files.push(fs);
    }

    /// A pcap file: every thread reads and dissects. The tables fold each epoch while the
    /// next one is read, on the same threads: one wait an epoch, not two, and a thread done
    /// with its table takes chunks instead of waiting for the other tables.
    fn read_split(
        &mut self,
        split: &PcapSplit,
        fs: &mut FileSummary,
        sink: &mut dyn FnMut(&LabelledFlow, &R),
        progress: &mut dyn FnMut(u64, u64),
    ) {
        fs.format = Some(split.format().name());
        fs.link_types = split.link_types();
        let len = split.len();
        let step = self.opts.split.chunk_bytes.max(1);
        let per_epoch = self.chunks[0].len() as u64;
        let ranges_from = |pos: u64| -> Vec<(u64, u64)> {
            (0..per_epoch)
                .map(|i| (pos + i * step, (pos + (i + 1) * step).min(len)))
                .take_while(|r| r.0 < len)
                .collect()
        };
        let n = self.n;
        let mut pos = split.data_start();
        let mut ranges = ranges_from(pos);
        let mut set = 0;
        // Nothing to fold yet: the first epoch is read into set 0.
        self.run_epoch(1, 0, None, Some((split, &ranges)), sink);
        while !ranges.is_empty() {
            // Each chunk must begin where the one before ended; a wrong guess is walked again.
            let mut expected = pos;
            let mut used = ranges.len();
            let mut failed = None;
            for (i, &(_, end)) in ranges.iter().enumerate() {
                let c = self.chunks[set][i]
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner);
                if expected >= end {
                    // A record from before covers the whole range.
                    c.reset(n);
                    c.next = expected;
                    continue;
                }
                if c.first != Some(expected) {
                    walk_chunk(split, c, expected, end, true, n);
                }
                let before = fs.records;
                fs.records += u64::from(c.count);
                if let Some(mut e) = c.error.take() {
                    e.renumber(before);
                    failed = Some(e);
                    used = i + 1;
                    break;
                }
                expected = c.next;
            }
            let next = match failed {
                None => ranges_from(expected),
                Some(_) => Vec::new(),
            };
            self.run_epoch(set, used, split.mapped(), Some((split, &next)), sink);
            split.done_with(pos, expected);
            pos = expected;
            progress(pos.min(len), len);
            if let Some(e) = failed {
                fs.error = Some(e.to_string());
                break;
            }
            ranges = next;
            set = 1 - set;
        }
        progress(len, len);
    }

    /// Any other file: this thread reads and dissects, the tables fold on all threads.
    fn read_serial(
        &mut self,
        path: &Path,
        fs: &mut FileSummary,
        sink: &mut dyn FnMut(&LabelledFlow, &R),
        progress: &mut dyn FnMut(u64, u64),
    ) {
        let mut reader = match CaptureReader::open(path, self.opts.read_mode) {
            Ok(r) => r,
            Err(e) => {
                fs.unreadable = e.is_unreadable();
                fs.error = Some(e.to_string());
                return;
            }
        };
        fs.format = Some(reader.format().name());
        let n = self.n;
        let step = self.opts.split.chunk_bytes.max(1);
        let budget = self.opts.flow.payload_bytes as usize;
        let mut failed = None;
        let mut end = false;
        while !end {
            let mut used = 0;
            while used < self.chunks[0].len() && !end {
                let c = self.chunks[0][used]
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner);
                c.reset(n);
                let mut buf = std::mem::take(&mut c.buf);
                buf.clear();
                let mut bytes = 0u64;
                while bytes < step {
                    match reader.next_record() {
                        Ok(Some(rec)) => {
                            bytes += rec.data.len() as u64 + 16;
                            c.record(&rec, n, |pl| {
                                let at = buf.len();
                                let k = pl.len().min(budget);
                                buf.extend_from_slice(&pl[..k]);
                                (at as u32, k as u32)
                            });
                        }
                        Ok(None) => end = true,
                        Err(e) => {
                            failed = Some(e);
                            end = true;
                        }
                    }
                    if end {
                        break;
                    }
                }
                c.buf = buf;
                fs.records += u64::from(c.count);
                used += 1;
            }
            self.run_epoch(0, used, None, None, sink);
            progress(reader.file_pos(), reader.file_len());
        }
        fs.link_types = reader.link_types();
        let st = reader.stats();
        self.summary.skipped_blocks += st.skipped_blocks + st.unknown_interface;
        fs.error = failed.map(|e| e.to_string());
    }

    /// One round on every thread: phase 2 over the first `used` chunks of set `set` (counts,
    /// sweeps and fragments here, then every table folds its packets), while phase 1 walks
    /// `read`'s ranges into the chunks of the other set. This thread first writes out the
    /// flows the last round ended; those this round's folds end become `ready`, in order.
    fn run_epoch(
        &mut self,
        set: usize,
        used: usize,
        mapped: Option<&[u8]>,
        read: Option<(&PcapSplit, &[(u64, u64)])>,
        sink: &mut dyn FnMut(&LabelledFlow, &R),
    ) {
        let n = self.n;
        let [set0, set1] = &mut self.chunks;
        let (fold_set, read_set) = if set == 0 {
            (set0, &*set1)
        } else {
            (set1, &*set0)
        };
        let chunks: Vec<&Chunk> = fold_set[..used]
            .iter_mut()
            .map(|m| &*m.get_mut().unwrap_or_else(PoisonError::into_inner))
            .collect();
        for c in &chunks {
            self.summary.absorb(&c.counts);
        }
        let mut sweeps = Vec::new();
        for (ci, c) in chunks.iter().enumerate() {
            for &(pos, ts) in &c.maxima {
                if self.clock.due(ts) {
                    sweeps.push((place(ci, pos, SWEEP), ts));
                }
            }
        }
        let frags = route_fragments(&mut self.routes, &mut self.waiting, &chunks, n);
        let (chunks, sweeps, render) = (&chunks, &sweeps, self.render);
        let mut outs: Vec<Vec<Ended<R>>> = (0..n).map(|_| Vec::new()).collect();
        // The tables first (the larger jobs), then the chunks; each thread takes the next.
        let tables: Vec<Mutex<_>> = if used > 0 {
            self.workers
                .iter_mut()
                .zip(frags.iter())
                .zip(outs.iter_mut())
                .map(Mutex::new)
                .collect()
        } else {
            Vec::new()
        };
        let ranges = read.map_or(&[][..], |r| r.1);
        let next = AtomicUsize::new(0);
        let job = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if let Some(t) = tables.get(i) {
                let mut t = t.lock().unwrap_or_else(PoisonError::into_inner);
                let ((w, f), out) = &mut *t;
                **out = fold_table(w, i, chunks, mapped, sweeps, f, render);
            } else if let (Some(&(start, end)), Some((split, _))) =
                (ranges.get(i - tables.len()), read)
            {
                let ci = i - tables.len();
                let mut c = read_set[ci].lock().unwrap_or_else(PoisonError::into_inner);
                walk_chunk(split, &mut c, start, end, ci == 0, n);
            } else {
                break;
            }
        };
        // The last round's flows, written by this thread before its first job; this round's
        // take their place below.
        let mut last = std::mem::take(&mut self.ready);
        let mut here = || {
            drain(&mut last, sink);
            job();
        };
        let jobs = tables.len() + ranges.len();
        match &self.pool {
            // A panic in a job comes back here when the scope ends.
            Some(pool) => pool.in_place_scope(|scope| {
                let job = &job;
                for _ in 1..n.min(jobs) {
                    scope.spawn(move |_| job());
                }
                here();
            }),
            None => here(),
        }
        drop(tables);
        // One move into a vector of the exact size, each table's freed as it is moved: a
        // table that evicts holds hundreds of thousands of ended flows here, and copies that
        // grow by doubling (and the tables' vectors kept to the end) held several times that.
        let mut all: Vec<Ended<R>> = Vec::with_capacity(outs.iter().map(Vec::len).sum());
        for o in outs {
            all.extend(o);
        }
        // Stable: the flows one packet ends come from one table, in its order; a sweep's
        // flows come from every table and go by first packet, then key.
        all.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                if a.0 & 3 == SWEEP {
                    (a.1.flow.first_ns, a.1.flow.key).cmp(&(b.1.flow.first_ns, b.1.flow.key))
                } else {
                    std::cmp::Ordering::Equal
                }
            })
        });
        self.ready = all;
    }

    /// Ends every open flow (the first table's on this thread, each other's on a thread of its
    /// own) and merges them by first packet.
    fn finish(mut self, sink: &mut dyn FnMut(&LabelledFlow, &R)) -> Summary {
        drain(&mut self.ready, sink);
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
        // them, the others' each on a thread of its own: one thread per core, as many as
        // the tables. Memory holds a few blocks per table, not every open flow's output,
        // and the blocks are still in cache when written.
        let (rf, render) = (self.rf, self.render);
        let make = |f: Flow| {
            let lf = label(rf, f);
            let r = render(&lf);
            (lf, r)
        };
        let make = &make;
        let mut table = TableStats::default();
        let mut workers = self.workers.iter_mut();
        let Some(own) = workers.next() else {
            return self.summary;
        };
        std::thread::scope(|scope| {
            let mut lanes = Vec::with_capacity(self.n);
            let mut handles = Vec::with_capacity(self.n);
            lanes.push(Lane {
                source: Source::Here(own.table.finish_sorted().into_iter()),
                block: Vec::new().into_iter().peekable(),
                spent: Vec::new(),
            });
            for w in workers {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(LabelledFlow, R)>>(4);
                // The flows and what `render` made of them come back once written, to be
                // freed by the thread that made them: glibc frees another thread's memory
                // slowly (under that arena's lock), and the merging thread is the one every
                // flow waits for.
                let (back, spent) = std::sync::mpsc::channel::<Vec<(LabelledFlow, R)>>();
                lanes.push(Lane {
                    source: Source::Thread {
                        rx: Some(rx),
                        back: Some(back),
                    },
                    block: Vec::new().into_iter().peekable(),
                    spent: Vec::new(),
                });
                handles.push(scope.spawn(move || {
                    let flows = w.table.finish_sorted();
                    let mut block = Vec::with_capacity(FINISH_BLOCK);
                    for f in flows {
                        block.push(make(f));
                        if block.len() == FINISH_BLOCK {
                            let full =
                                std::mem::replace(&mut block, Vec::with_capacity(FINISH_BLOCK));
                            if tx.send(full).is_err() {
                                break;
                            }
                            spent.try_iter().for_each(drop);
                        }
                    }
                    if !block.is_empty() {
                        // The merging thread only hangs up when it unwinds.
                        let _ = tx.send(block);
                    }
                    drop(tx);
                    // Until the merging thread has used this table's last block.
                    spent.iter().for_each(drop);
                    w.table.stats()
                }));
            }
            loop {
                let mut best: Option<(usize, (i64, FlowKey))> = None;
                for (i, lane) in lanes.iter_mut().enumerate() {
                    if let Some((lf, _)) = lane.head(make) {
                        let k = (lf.flow.first_ns, lf.flow.key);
                        if best.is_none_or(|(_, b)| k < b) {
                            best = Some((i, k));
                        }
                    }
                }
                let Some((i, _)) = best else { break };
                let lane = &mut lanes[i];
                if let Some((lf, r)) = lane.block.next() {
                    sink(&lf, &r);
                    lane.spent.push((lf, r));
                }
            }
            table.add(&own.table.stats());
            for h in handles {
                match h.join() {
                    Ok(st) => table.add(&st),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        self.summary.table = table;
        self.summary
    }
}

/// Where a table's flows come from at the end.
enum Source<R> {
    /// Made on this thread as the merge needs them.
    Here(std::vec::IntoIter<Flow>),
    /// Made by the table's own thread and handed over in blocks.
    Thread {
        rx: Option<std::sync::mpsc::Receiver<Vec<(LabelledFlow, R)>>>,
        back: Option<std::sync::mpsc::Sender<Vec<(LabelledFlow, R)>>>,
    },
}

/// One table's flows at the end.
struct Lane<R> {
    source: Source<R>,
    block: std::iter::Peekable<std::vec::IntoIter<(LabelledFlow, R)>>,
    /// What the sink is done with: freed here, or going back to the table's thread a
    /// block at a time.
    spent: Vec<(LabelledFlow, R)>,
}

impl<R> Lane<R> {
    /// The table's next flow, made here or waited for from its thread when the block in hand
    /// is used up; `None` once the table has no more.
    fn head(&mut self, make: &dyn Fn(Flow) -> (LabelledFlow, R)) -> Option<&(LabelledFlow, R)> {
        while self.block.peek().is_none() {
            match &mut self.source {
                Source::Here(flows) => {
                    self.spent.clear();
                    let block: Vec<_> = flows.by_ref().take(FINISH_BLOCK).map(make).collect();
                    if block.is_empty() {
                        return None;
                    }
                    self.block = block.into_iter().peekable();
                }
                Source::Thread { rx, back } => {
                    if !self.spent.is_empty() {
                        if let Some(back) = back {
                            // A table thread that is gone leaves it to be freed here.
                            let _ = back.send(std::mem::take(&mut self.spent));
                        }
                    }
                    match rx.as_ref()?.recv() {
                        Ok(b) => self.block = b.into_iter().peekable(),
                        Err(_) => {
                            *rx = None;
                            // Lets the table's thread end.
                            *back = None;
                        }
                    }
                }
            }
        }
        self.block.peek()
    }
}

/// One table's packets of an epoch, in file order, with the sweeps and its fragments at
/// their places. Returns the flows that ended, each with the place that ended it.
fn fold_table<R>(
    w: &mut Worker<'_>,
    s: usize,
    chunks: &[&Chunk],
    mapped: Option<&[u8]>,
    sweeps: &[(u64, i64)],
    frags: &[FragEvent],
    render: Render<'_, R>,
) -> Vec<Ended<R>> {
    let mut out = Vec::new();
    let (mut si, mut fi) = (0, 0);
    // Sweeps and fragments placed before `limit`.
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
            _ => break,
        }
    };
    for (ci, c) in chunks.iter().enumerate() {
        let descs = &c.shards[s];
        // Where this table's first fragments are looked up, in place order.
        let mut fc = 0;
        let bytes: &[u8] = match mapped {
            Some(m) => m.get(c.base as usize..).unwrap_or(&[]),
            None => &c.buf,
        };
        for (i, d) in descs.iter().enumerate() {
            if let Some(a) = descs.get(i + PREFETCH) {
                w.table.prefetch_slot(a.hash);
            }
            if let Some(b) = descs.get(i + PREFETCH / 2) {
                w.table.prefetch_flow(b.hash);
            }
            let at = place(ci, d.pos, RECORD);
            events_until(w, at, &mut out);
            let first = if d.first_fragment {
                while c.firsts.get(fc).is_some_and(|f| f.0 < d.pos) {
                    fc += 1;
                }
                c.firsts.get(fc).filter(|f| f.0 == d.pos).map(|f| f.1)
            } else {
                None
            };
            let payload = bytes
                .get(d.at as usize..(d.at as usize + d.n as usize))
                .unwrap_or(&[]);
            let p = d.packet(payload, first);
            w.fold(d.hash, d.ts, d.len, &p, &mut |lf| {
                let r = render(&lf);
                out.push((at, lf, r))
            });
        }
        events_until(w, place(ci + 1, 0, BEFORE), &mut out);
    }
    out
}

/// Sends each non-first fragment of an epoch to the table of its datagram's first fragment,
/// at its place (before the first one came, the table holds it as one table would).
fn route_fragments(
    routes: &mut HashMap<FragmentId, usize, FixedState>,
    waiting: &mut HashMap<FragmentId, Vec<Waiting>, FixedState>,
    chunks: &[&Chunk],
    n: usize,
) -> Vec<Vec<FragEvent>> {
    let mut ev: Vec<Vec<FragEvent>> = (0..n).map(|_| Vec::new()).collect();
    for (ci, c) in chunks.iter().enumerate() {
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
                        place: wt.at.unwrap_or(place(ci, pos, BEFORE)),
                        ts: wt.ts,
                        fid,
                    });
                }
            } else {
                let Some(&(pos, ts, fid)) = b.next() else {
                    break;
                };
                let at = place(ci, pos, RECORD);
                if let Some(&s) = routes.get(&fid) {
                    ev[s].push(FragEvent { place: at, ts, fid });
                    continue;
                }
                if waiting.len() >= MAX_ROUTES {
                    // Too many datagrams without their first: one table counts them.
                    for (fid, list) in waiting.drain() {
                        for wt in list {
                            ev[0].push(FragEvent {
                                place: wt.at.unwrap_or(place(ci, pos, BEFORE)),
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
    }
    // Places are of this epoch: those still waiting will be placed before their first.
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

//! The one loop from packets to labelled flows.
//!
//! [`Engine`] takes packets one at a time (from a file, a live interface or a benchmark),
//! dissects them, folds them into the flow table and, as flows end, classifies them against
//! the catalogue and hands [`LabelledFlow`]s to the caller's sink. [`analyze_files`] drives an
//! engine over capture files. Everything that labels traffic in flowdoc goes through here.
//!
//! ```
//! use flowdoc_catalogue::Catalogue;
//! use flowdoc_pipeline::{Engine, Options};
//! let cat = Catalogue::embedded();
//! let mut engine = Engine::new(&cat, Options::default());
//! let mut flows = Vec::new();
//! let summary = engine.finish(&mut |f| flows.push(f));
//! assert_eq!(summary.packets, 0);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flowdoc_capture::{Batch, CaptureError, CaptureReader, ReadMode};
pub use flowdoc_classify::Reference;
use flowdoc_classify::{classify_in, Classification};
pub use flowdoc_dissect::SkipReason;
use flowdoc_dissect::{dissect, dissect_into, Dissected, FragmentId, Packet};
use flowdoc_flow::{packet_hash, Flow, FlowConfig, FlowTable, PacketHash, PacketView, TableStats};

mod parallel;

pub use flowdoc_capture::Format;

/// How to read and split.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub read_mode: ReadMode,
    pub flow: FlowConfig,
    /// How a file is cut up for several threads.
    pub split: Split,
}

/// How a file is cut up for several threads: chunks of `chunk_bytes` (each read by any
/// thread, then folded by every flow table), at most `chunks_in_flight` of them (0: four per
/// thread) between being read and being written out. Small enough that the chunks in flight
/// stay in the processor's cache; the results do not depend on either.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub chunk_bytes: u64,
    pub chunks_in_flight: usize,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            chunk_bytes: 512 << 10,
            chunks_in_flight: 0,
        }
    }
}

impl Split {
    /// Chunks in flight for `threads` threads.
    fn chunks(&self, threads: usize) -> usize {
        match self.chunks_in_flight {
            0 => 4 * threads.max(1),
            n => n,
        }
    }
}

/// A flow with its verdict.
#[derive(Debug, Clone)]
pub struct LabelledFlow {
    pub flow: Flow,
    pub class: Classification,
}

/// What happened to one input file.
#[derive(Debug, Clone)]
pub struct FileSummary {
    pub path: PathBuf,
    pub format: Option<&'static str>,
    pub link_types: Vec<u16>,
    pub records: u64,
    /// Why reading stopped early or never started.
    pub error: Option<String>,
    /// True when the file could not be read at all.
    pub unreadable: bool,
}

/// Counts for the whole analysis.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub files: Vec<FileSummary>,
    /// Packet records read.
    pub packets: u64,
    /// Packets that went into a flow (including non-first fragments).
    pub flow_packets: u64,
    /// Packets skipped, by reason (`SkipReason::code` names them).
    pub skipped: BTreeMap<SkipReason, u64>,
    pub flows: u64,
    pub documented: u64,
    pub undocumented: u64,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    pub table: TableStats,
    /// pcapng blocks passed over and packets naming undeclared interfaces.
    pub skipped_blocks: u64,
    pub catalogue: String,
}

impl FileSummary {
    /// A file about to be read: nothing known yet.
    fn new(path: &Path) -> FileSummary {
        FileSummary {
            path: path.to_path_buf(),
            format: None,
            link_types: Vec::new(),
            records: 0,
            error: None,
            unreadable: false,
        }
    }
}

impl Summary {
    fn begin(rf: Reference<'_>) -> Summary {
        Summary {
            catalogue: rf.catalogue.source().to_string(),
            ..Summary::default()
        }
    }

    /// Counts one record.
    #[inline]
    fn tally(&mut self, ts_ns: i64, d: &Dissected<'_>) {
        self.tally_time(ts_ns);
        match d {
            Dissected::Packet(_) | Dissected::Fragment(_) => self.flow_packets += 1,
            Dissected::Skip(r) => *self.skipped.entry(*r).or_insert(0) += 1,
        }
    }

    /// Counts `records` records whose times span `lo..=hi`, `flow_packets` of which gave a
    /// flow a packet (their skips counted one by one): a batch's counts in one go.
    #[inline]
    fn tally_span(&mut self, records: u64, flow_packets: u64, lo: i64, hi: i64) {
        if records == 0 {
            return;
        }
        self.packets += records;
        self.flow_packets += flow_packets;
        self.first_ns = Some(self.first_ns.map_or(lo, |f| f.min(lo)));
        self.last_ns = Some(self.last_ns.map_or(hi, |l| l.max(hi)));
    }

    #[inline]
    fn tally_time(&mut self, ts_ns: i64) {
        self.packets += 1;
        if self.first_ns.is_none_or(|f| ts_ns < f) {
            self.first_ns = Some(ts_ns);
        }
        if self.last_ns.is_none_or(|l| ts_ns > l) {
            self.last_ns = Some(ts_ns);
        }
    }

    /// Adds the record counts of a part of the input counted on its own.
    fn absorb(&mut self, o: &Summary) {
        self.packets += o.packets;
        self.flow_packets += o.flow_packets;
        for (r, n) in &o.skipped {
            *self.skipped.entry(*r).or_insert(0) += n;
        }
        self.first_ns = match (self.first_ns, o.first_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ns = match (self.last_ns, o.last_ns) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
    /// "reason count" pairs for messages, e.g. `not-ip 18, truncated 2`.
    pub fn skipped_text(&self) -> String {
        let parts: Vec<String> = self
            .skipped
            .iter()
            .map(|(k, v)| format!("{} {v}", k.code()))
            .collect();
        parts.join(", ")
    }
    /// Every file was read to its end.
    pub fn complete(&self) -> bool {
        self.files.iter().all(|f| f.error.is_none())
    }
}

/// Packets in, labelled flows out, on one thread: the reading half (counts, dissection) in
/// front of the flow half ([`Worker`]). Several threads share the same two halves in
/// [`analyze_files`].
#[derive(Debug)]
pub struct Engine<'c> {
    worker: Worker<'c>,
    summary: Summary,
}

/// Records read, dissected and prefetched together.
const BATCH: usize = 32;

/// How often (in capture time) idle flows are swept out of the table.
const SWEEP_EVERY_NS: i64 = 10_000_000_000;

/// When the flow table is swept: at the first packet (in capture order) at least
/// [`SWEEP_EVERY_NS`] after the last sweep, when some timeout needs sweeps at all. One clock
/// for one table, or one for all tables of a sharded run (which sweep at the same packets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepClock {
    on: bool,
    next_ns: i64,
}

impl SweepClock {
    pub(crate) fn new(cfg: &FlowConfig) -> SweepClock {
        SweepClock {
            on: cfg.idle_timeout_ns.is_some()
                || cfg.closed_linger_ns.is_some()
                || cfg.active_timeout_ns.is_some(),
            next_ns: i64::MIN,
        }
    }

    /// Whether the table is swept after the packet at `ts_ns`. Only a packet later than every
    /// packet before it can be such a packet.
    #[inline]
    pub(crate) fn due(&mut self, ts_ns: i64) -> bool {
        if !self.on || ts_ns < self.next_ns {
            return false;
        }
        let first = self.next_ns == i64::MIN;
        self.next_ns = ts_ns.saturating_add(SWEEP_EVERY_NS);
        !first
    }
}

/// The flow half: a flow table and the classifier. One per thread when sharded.
#[derive(Debug)]
pub struct Worker<'c> {
    rf: Reference<'c>,
    table: FlowTable,
    clock: SweepClock,
}

impl<'c> Worker<'c> {
    pub fn new(rf: impl Into<Reference<'c>>, cfg: FlowConfig) -> Worker<'c> {
        Worker {
            rf: rf.into(),
            table: FlowTable::new(cfg),
            clock: SweepClock::new(&cfg),
        }
    }

    #[inline]
    pub fn packet(
        &mut self,
        ts_ns: i64,
        wire_len: u32,
        p: &Packet<'_>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        self.packet_hashed(self.table.hash_of(p), ts_ns, wire_len, p, sink);
    }

    /// [`Worker::packet`] with the packet's hash already computed (to prefetch its flow).
    #[inline]
    fn packet_hashed(
        &mut self,
        hash: PacketHash,
        ts_ns: i64,
        wire_len: u32,
        p: &Packet<'_>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        self.fold(hash, ts_ns, wire_len, p, sink);
        if self.clock.due(ts_ns) {
            self.sweep(ts_ns, sink);
        }
    }

    /// The packet into its flow, without looking at the sweep clock.
    #[inline]
    fn fold<'a, F: FnMut(LabelledFlow) + ?Sized>(
        &mut self,
        hash: PacketHash,
        ts_ns: i64,
        wire_len: u32,
        p: &impl PacketView<'a>,
        sink: &mut F,
    ) {
        let rf = self.rf;
        self.table
            .observe_hashed(hash, ts_ns, wire_len, p, &mut |flow| sink(label(rf, flow)));
    }

    /// Ends the flows the timeouts end at `now_ns`, in order of first packet.
    fn sweep(&mut self, now_ns: i64, sink: &mut dyn FnMut(LabelledFlow)) {
        let rf = self.rf;
        self.table.expire(now_ns, &mut |flow| sink(label(rf, flow)));
    }

    /// Ends the flows idle at `now_ns` (for a live source, whose packets may pause).
    pub fn expire(&mut self, now_ns: i64, sink: &mut dyn FnMut(LabelledFlow)) {
        if self.clock.on {
            self.sweep(now_ns, sink);
        }
    }

    #[inline]
    pub fn fragment(&mut self, ts_ns: i64, fid: FragmentId) {
        self.table.observe_fragment(ts_ns, fid);
    }

    /// Ends every open flow; returns what the table did.
    pub fn finish(&mut self, sink: &mut dyn FnMut(LabelledFlow)) -> TableStats {
        let rf = self.rf;
        self.table.finish(&mut |flow| sink(label(rf, flow)));
        self.table.stats()
    }
}

impl<'c> Engine<'c> {
    pub fn new(rf: impl Into<Reference<'c>>, opts: Options) -> Engine<'c> {
        let rf = rf.into();
        Engine {
            worker: Worker::new(rf, opts.flow),
            summary: Summary::begin(rf),
        }
    }

    /// Folds one captured packet in; flows that end go to `sink`.
    #[inline]
    pub fn push(
        &mut self,
        ts_ns: i64,
        link_type: u16,
        data: &[u8],
        orig_len: u32,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        let d = dissect(link_type, data);
        self.summary.tally(ts_ns, &d);
        self.fold_dissected(ts_ns, &d, orig_len, None, sink);
    }

    /// A batch of records from a file: all are dissected first and their flows' memory asked
    /// for, then folded in one by one (in order), so that the cache misses of a batch's flows
    /// overlap instead of each packet waiting for its own.
    fn push_batch(&mut self, batch: &Batch<'_>, sink: &mut dyn FnMut(LabelledFlow)) {
        let n = batch.len().min(BATCH);
        let mut ds = [(0i64, 0u32, Dissected::Skip(SkipReason::Empty)); BATCH];
        let mut hashes = [None; BATCH];
        let table = &self.worker.table;
        // The batch's counts, taken as it is dissected and added once.
        let (mut lo, mut hi, mut skips) = (i64::MAX, i64::MIN, 0);
        for (i, d) in ds.iter_mut().enumerate().take(n) {
            let r = batch.get(i);
            // Field by field: the dissection goes straight into its slot (a tuple built whole
            // was a temporary, copied in after).
            d.0 = r.ts_ns;
            d.1 = r.orig_len;
            lo = lo.min(r.ts_ns);
            hi = hi.max(r.ts_ns);
            dissect_into(r.link_type, r.data, &mut d.2);
            match &d.2 {
                Dissected::Packet(p) => {
                    let h = packet_hash(p);
                    table.prefetch_slot(h.hash);
                    hashes[i] = Some(h);
                }
                Dissected::Fragment(_) => {}
                Dissected::Skip(why) => {
                    skips += 1;
                    *self.summary.skipped.entry(*why).or_insert(0) += 1;
                }
            }
        }
        self.summary.tally_span(n as u64, n as u64 - skips, lo, hi);
        // The index slots asked for above have had the dissection of the batch to arrive.
        for h in hashes[..n].iter().flatten() {
            table.prefetch_flow(h.hash);
        }
        // By reference: a dissected packet is over a hundred bytes, not worth a copy.
        for ((ts_ns, orig_len, d), &hash) in ds[..n].iter().zip(&hashes) {
            self.fold_dissected(*ts_ns, d, *orig_len, hash, sink);
        }
    }

    /// One dissected record into its flow (counted by the caller); `hash` is its flow's hash
    /// when the batch computed it already.
    #[inline]
    fn fold_dissected(
        &mut self,
        ts_ns: i64,
        d: &Dissected<'_>,
        orig_len: u32,
        hash: Option<PacketHash>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        match d {
            Dissected::Packet(p) => {
                let hash = hash.unwrap_or_else(|| packet_hash(p));
                self.worker.packet_hashed(hash, ts_ns, orig_len, p, sink)
            }
            Dissected::Fragment(fid) => self.worker.fragment(ts_ns, *fid),
            Dissected::Skip(_) => {}
        }
    }

    /// Reads a whole file through the engine; its fate goes into the summary.
    pub fn read_file(
        &mut self,
        path: &Path,
        mode: ReadMode,
        sink: &mut dyn FnMut(LabelledFlow),
        progress: &mut dyn FnMut(u64, u64),
    ) {
        let mut fs = FileSummary::new(path);
        match CaptureReader::open(path, mode) {
            Err(e) => {
                fs.unreadable = e.is_unreadable();
                fs.error = Some(e.to_string());
            }
            Ok(mut reader) => {
                fs.format = Some(reader.format().name());
                let mut n: u64 = 0;
                let mut next_progress = 1 << 16;
                let err: Option<CaptureError> = loop {
                    match reader.next_batch(BATCH) {
                        Ok(Some(batch)) => {
                            n += batch.len() as u64;
                            self.push_batch(&batch, sink);
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                    if n >= next_progress {
                        next_progress = n + (1 << 16);
                        progress(reader.file_pos(), reader.file_len());
                    }
                };
                progress(reader.file_len(), reader.file_len());
                fs.records = n;
                fs.link_types = reader.link_types();
                let st = reader.stats();
                self.summary.skipped_blocks += st.skipped_blocks + st.unknown_interface;
                fs.error = err.map(|e| e.to_string());
            }
        }
        self.summary.files.push(fs);
    }

    /// Ends the flows idle at `now_ns` without waiting for a packet to sweep them (a live
    /// source's packets may pause).
    pub fn expire(&mut self, now_ns: i64, sink: &mut dyn FnMut(LabelledFlow)) {
        self.worker.expire(now_ns, sink);
    }

    /// Each open flow with its verdict so far.
    pub fn for_each_open(&self, f: &mut dyn FnMut(&Flow, &Classification)) {
        for flow in self.worker.table.open() {
            f(flow, &classify_in(self.worker.rf, flow));
        }
    }

    /// Flows open now.
    pub fn open_flows(&self) -> usize {
        self.worker.table.len()
    }

    /// What the flow table did so far (evictions, idle ends).
    pub fn table_stats(&self) -> TableStats {
        self.worker.table.stats()
    }

    /// The counts so far (files, packets, skips); flows are counted by the caller's sink.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Ends every open flow and returns the counts.
    pub fn finish(&mut self, sink: &mut dyn FnMut(LabelledFlow)) -> Summary {
        self.summary.table = self.worker.finish(sink);
        std::mem::take(&mut self.summary)
    }
}

fn label(rf: Reference<'_>, flow: Flow) -> LabelledFlow {
    let class = classify_in(rf, &flow);
    LabelledFlow { flow, class }
}

/// Analyses several files as one capture: flows that span rotated files stay one flow.
/// With `threads` above 1, each file is read by all threads at once (byte ranges of a pcap
/// file; other files are read by one thread and dissected by all) and flows are sharded over
/// that many flow tables by a symmetric hash: the flows, their order and the counts are
/// those of one thread (only a full table evicts differently: each holds its share of the cap).
pub fn analyze_files<'c>(
    rf: impl Into<Reference<'c>>,
    paths: &[PathBuf],
    opts: Options,
    threads: usize,
    sink: &mut dyn FnMut(&LabelledFlow),
    progress: &mut dyn FnMut(usize, u64, u64),
) -> Summary {
    analyze_files_with(
        rf,
        paths,
        opts,
        threads,
        &|_| (),
        &mut |lf, ()| sink(lf),
        progress,
    )
}

/// [`analyze_files`] with a `render` step that runs on the thread that ended the flow (e.g.
/// its output line), before the flow and what `render` made reach `sink` on this thread, in
/// order; at the end of input, a table's thread that falls behind leaves some of its flows
/// to be rendered on this thread, just before they reach `sink`. The work of `render` is
/// spread over the threads; the sink's is not. The sink only
/// borrows the flow and what `render` made: at the end of input both go back to the thread
/// that made them to be freed there (flows ended earlier are few at a time; freeing those
/// here measured the same).
pub fn analyze_files_with<'c, R: Send>(
    rf: impl Into<Reference<'c>>,
    paths: &[PathBuf],
    opts: Options,
    threads: usize,
    render: &(dyn Fn(&LabelledFlow) -> R + Sync),
    sink: &mut dyn FnMut(&LabelledFlow, &R),
    progress: &mut dyn FnMut(usize, u64, u64),
) -> Summary {
    let mut documented = 0;
    let mut undocumented = 0;
    let mut counting = |lf: &LabelledFlow, r: &R| {
        if lf.class.documented() {
            documented += 1;
        } else {
            undocumented += 1;
        }
        sink(lf, r);
    };
    let rf = rf.into();
    let mut summary = if threads <= 1 {
        let mut engine = Engine::new(rf, opts);
        let mut one = |lf: LabelledFlow| {
            let r = render(&lf);
            counting(&lf, &r)
        };
        for (i, p) in paths.iter().enumerate() {
            engine.read_file(p, opts.read_mode, &mut one, &mut |pos, len| {
                progress(i, pos, len)
            });
        }
        engine.finish(&mut one)
    } else {
        parallel::analyze(rf, paths, opts, threads, render, &mut counting, progress)
    };
    summary.documented = documented;
    summary.undocumented = undocumented;
    summary.flows = documented + undocumented;
    summary
}

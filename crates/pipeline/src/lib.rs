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
use flowdoc_dissect::{dissect, Dissected, FragmentId, Packet};
use flowdoc_flow::{Flow, FlowConfig, FlowTable, TableStats};

mod shard;

pub use flowdoc_capture::Format;

/// How to read and split.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub read_mode: ReadMode,
    pub flow: FlowConfig,
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

impl Summary {
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

/// Packets in, labelled flows out: the reading half (counts, dissection) in front of the flow
/// half, which is either here ([`Worker`]) or spread over threads by a symmetric hash.
#[derive(Debug)]
pub struct Engine<'c> {
    flows: Flows<'c>,
    summary: Summary,
}

#[derive(Debug)]
enum Flows<'c> {
    Local(Worker<'c>),
    Sharded(shard::Shards<'c>),
}

/// Records read, dissected and prefetched together.
const BATCH: usize = 16;

/// How often (in capture time) idle flows are swept out of the table.
const SWEEP_EVERY_NS: i64 = 10_000_000_000;

/// The flow half: a flow table and the classifier. One per thread when sharded.
#[derive(Debug)]
pub struct Worker<'c> {
    rf: Reference<'c>,
    table: FlowTable,
    /// Some timeout (idle, closed linger, active) needs the table swept now and then.
    sweeps: bool,
    next_sweep_ns: i64,
}

impl<'c> Worker<'c> {
    pub fn new(rf: impl Into<Reference<'c>>, cfg: FlowConfig) -> Worker<'c> {
        Worker {
            rf: rf.into(),
            table: FlowTable::new(cfg),
            sweeps: cfg.idle_timeout_ns.is_some()
                || cfg.closed_linger_ns.is_some()
                || cfg.active_timeout_ns.is_some(),
            next_sweep_ns: i64::MIN,
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
        hash: u64,
        ts_ns: i64,
        wire_len: u32,
        p: &Packet<'_>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        let rf = self.rf;
        let mut done = |flow: Flow| sink(label(rf, flow));
        self.table
            .observe_hashed(hash, ts_ns, wire_len, p, &mut done);
        if self.sweeps && ts_ns >= self.next_sweep_ns {
            if self.next_sweep_ns != i64::MIN {
                self.table.expire(ts_ns, &mut done);
            }
            self.next_sweep_ns = ts_ns.saturating_add(SWEEP_EVERY_NS);
        }
    }

    /// Ends the flows idle at `now_ns` (for a live source, whose packets may pause).
    pub fn expire(&mut self, now_ns: i64, sink: &mut dyn FnMut(LabelledFlow)) {
        if self.sweeps {
            let rf = self.rf;
            self.table.expire(now_ns, &mut |flow| sink(label(rf, flow)));
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
        Engine::with_flows(rf, Flows::Local(Worker::new(rf, opts.flow)))
    }

    fn with_flows(rf: Reference<'c>, flows: Flows<'c>) -> Engine<'c> {
        Engine {
            flows,
            summary: Summary {
                catalogue: rf.catalogue.source().to_string(),
                ..Summary::default()
            },
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
        self.push_dissected(ts_ns, dissect(link_type, data), orig_len, None, sink);
    }

    /// A batch of records from a file: all are dissected first and their flows' memory asked
    /// for, then folded in one by one (in order), so that the cache misses of a batch's flows
    /// overlap instead of each packet waiting for its own.
    fn push_batch(&mut self, batch: &Batch<'_>, sink: &mut dyn FnMut(LabelledFlow)) {
        let n = batch.len().min(BATCH);
        let mut ds = [(0i64, 0u32, Dissected::Skip(SkipReason::Empty)); BATCH];
        let mut hashes = [None; BATCH];
        for (i, d) in ds.iter_mut().enumerate().take(n) {
            let r = batch.get(i);
            *d = (r.ts_ns, r.orig_len, dissect(r.link_type, r.data));
            if let (Dissected::Packet(p), Flows::Local(w)) = (&d.2, &self.flows) {
                let h = w.table.hash_of(p);
                w.table.prefetch_slot(h);
                hashes[i] = Some(h);
            }
        }
        // The index slots asked for above have had the dissection of the batch to arrive.
        if let Flows::Local(w) = &self.flows {
            for h in hashes[..n].iter().flatten() {
                w.table.prefetch_flow(*h);
            }
        }
        for (&(ts_ns, orig_len, d), &hash) in ds[..n].iter().zip(&hashes) {
            self.push_dissected(ts_ns, d, orig_len, hash, sink);
        }
    }

    /// One dissected record; `hash` is its flow's hash when the batch computed it already.
    #[inline]
    fn push_dissected(
        &mut self,
        ts_ns: i64,
        d: Dissected<'_>,
        orig_len: u32,
        hash: Option<u64>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        let s = &mut self.summary;
        s.packets += 1;
        if s.first_ns.is_none_or(|f| ts_ns < f) {
            s.first_ns = Some(ts_ns);
        }
        if s.last_ns.is_none_or(|l| ts_ns > l) {
            s.last_ns = Some(ts_ns);
        }
        match d {
            Dissected::Packet(p) => {
                s.flow_packets += 1;
                match &mut self.flows {
                    Flows::Local(w) => {
                        let hash = hash.unwrap_or_else(|| w.table.hash_of(&p));
                        w.packet_hashed(hash, ts_ns, orig_len, &p, sink)
                    }
                    Flows::Sharded(sh) => sh.packet(ts_ns, orig_len, &p, sink),
                }
            }
            Dissected::Fragment(fid) => {
                s.flow_packets += 1;
                match &mut self.flows {
                    Flows::Local(w) => w.fragment(ts_ns, fid),
                    Flows::Sharded(sh) => sh.fragment(ts_ns, fid, sink),
                }
            }
            Dissected::Skip(r) => *s.skipped.entry(r).or_insert(0) += 1,
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
        let mut fs = FileSummary {
            path: path.to_path_buf(),
            format: None,
            link_types: Vec::new(),
            records: 0,
            error: None,
            unreadable: false,
        };
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
    /// source's packets may pause). With flow threads, idle flows are swept as packets come.
    pub fn expire(&mut self, now_ns: i64, sink: &mut dyn FnMut(LabelledFlow)) {
        if let Flows::Local(w) = &mut self.flows {
            w.expire(now_ns, sink);
        }
    }

    /// Each open flow with its verdict so far (one thread; the flow threads keep their own).
    pub fn for_each_open(&self, f: &mut dyn FnMut(&Flow, &Classification)) {
        if let Flows::Local(w) = &self.flows {
            for flow in w.table.open() {
                f(flow, &classify_in(w.rf, flow));
            }
        }
    }

    /// Flows open now (known on one thread; the flow threads keep their own).
    pub fn open_flows(&self) -> Option<usize> {
        match &self.flows {
            Flows::Local(w) => Some(w.table.len()),
            Flows::Sharded(_) => None,
        }
    }

    /// What the flow table did so far (evictions, idle ends); known on one thread, and for
    /// flow threads once they finish.
    pub fn table_stats(&self) -> TableStats {
        match &self.flows {
            Flows::Local(w) => w.table.stats(),
            Flows::Sharded(_) => self.summary.table,
        }
    }

    /// The counts so far (files, packets, skips); flows are counted by the caller's sink.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Ends every open flow and returns the counts.
    pub fn finish(&mut self, sink: &mut dyn FnMut(LabelledFlow)) -> Summary {
        self.summary.table = match &mut self.flows {
            Flows::Local(w) => w.finish(sink),
            Flows::Sharded(sh) => sh.finish(sink),
        };
        std::mem::take(&mut self.summary)
    }
}

fn label(rf: Reference<'_>, flow: Flow) -> LabelledFlow {
    let class = classify_in(rf, &flow);
    LabelledFlow { flow, class }
}

/// Analyses several files as one capture: flows that span rotated files stay one flow.
/// With `threads` above 1, flows are sharded by a symmetric hash of their key over that many
/// flow threads behind this reading thread: the flows are the same, their order is not.
pub fn analyze_files<'c>(
    rf: impl Into<Reference<'c>>,
    paths: &[PathBuf],
    opts: Options,
    threads: usize,
    sink: &mut dyn FnMut(LabelledFlow),
    progress: &mut dyn FnMut(usize, u64, u64),
) -> Summary {
    let mut documented = 0;
    let mut undocumented = 0;
    let mut counting = |lf: LabelledFlow| {
        if lf.class.documented() {
            documented += 1;
        } else {
            undocumented += 1;
        }
        sink(lf);
    };
    let mut run = |engine: &mut Engine<'_>| {
        for (i, p) in paths.iter().enumerate() {
            engine.read_file(p, opts.read_mode, &mut counting, &mut |pos, len| {
                progress(i, pos, len)
            });
        }
        engine.finish(&mut counting)
    };
    let rf = rf.into();
    let mut summary = if threads <= 1 {
        run(&mut Engine::new(rf, opts))
    } else {
        std::thread::scope(|scope| {
            let shards = shard::Shards::spawn(scope, rf, opts.flow, threads);
            run(&mut Engine::with_flows(rf, Flows::Sharded(shards)))
        })
    };
    summary.documented = documented;
    summary.undocumented = undocumented;
    summary.flows = documented + undocumented;
    summary
}

//! The flow half spread over threads: packets go to the worker that owns their flow, chosen
//! by a symmetric hash of the canonical key (so both directions meet), in batches over bounded
//! queues (so a slow worker slows the reader instead of growing memory). Labelled flows come
//! back over one channel and reach the caller's sink on the reading thread.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use crate::Reference;
use flowdoc_dissect::{FragmentId, Packet};
use flowdoc_flow::{Endpoint, FlowConfig, FlowKey, TableStats};
use foldhash::fast::FixedState;

use crate::{LabelledFlow, Worker};

/// Packets per message to a worker.
const BATCH: usize = 1024;
/// Batches queued per worker before the reader waits.
const QUEUE: usize = 8;
/// Bound on datagrams whose fragment routing is remembered.
const MAX_ROUTES: usize = 65_536;
/// Seed of the sharding hash, independent of the flow tables' own hash.
const SHARD_SEED: u64 = 0x5eed_f10d;

#[derive(Debug)]
enum Msg {
    Packet {
        ts: i64,
        len: u32,
        p: Packet<'static>,
        /// The payload's first bytes, in the batch's `bytes` at this range.
        at: u32,
        n: u32,
    },
    Fragment {
        ts: i64,
        fid: FragmentId,
    },
}

/// Messages to one worker, with the payload bytes they carry (copied once, up to the
/// identification budget: the reading thread's buffer is reused for the next records).
#[derive(Debug, Default)]
struct Batch {
    msgs: Vec<Msg>,
    bytes: Vec<u8>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            msgs: Vec::with_capacity(BATCH),
            bytes: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shards<'s> {
    inputs: Vec<SyncSender<Batch>>,
    batches: Vec<Batch>,
    /// Payload bytes copied per packet (the flow table's identification budget).
    payload_bytes: usize,
    output: Receiver<Vec<LabelledFlow>>,
    handles: Vec<ScopedJoinHandle<'s, TableStats>>,
    hasher: FixedState,
    /// Worker of each fragmented datagram whose first fragment was seen.
    routes: HashMap<FragmentId, usize, FixedState>,
    /// Later fragments that came before their first.
    waiting: HashMap<FragmentId, Vec<i64>, FixedState>,
}

/// The packet without its payload, which travels in the batch.
fn detach(p: &Packet<'_>) -> Packet<'static> {
    Packet {
        src: p.src,
        dst: p.dst,
        v6: p.v6,
        proto: p.proto,
        sport: p.sport,
        dport: p.dport,
        tcp_flags: p.tcp_flags,
        tcp_seq: p.tcp_seq,
        icmp: p.icmp,
        payload: &[],
        tunnel: p.tunnel,
        vlan: p.vlan,
        first_fragment: p.first_fragment,
    }
}

impl<'s> Shards<'s> {
    pub(crate) fn spawn<'e: 's>(
        scope: &'s Scope<'s, 'e>,
        rf: Reference<'e>,
        cfg: FlowConfig,
        n: usize,
    ) -> Shards<'s> {
        let n = n.max(1);
        let per_worker = FlowConfig {
            max_flows: (cfg.max_flows / n).max(1),
            ..cfg
        };
        let (otx, output) = channel::<Vec<LabelledFlow>>();
        let mut inputs = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = sync_channel::<Batch>(QUEUE);
            let otx = otx.clone();
            handles.push(scope.spawn(move || {
                let mut w = Worker::new(rf, per_worker);
                let mut out = Vec::new();
                for batch in rx {
                    for m in batch.msgs {
                        match m {
                            Msg::Packet { ts, len, p, at, n } => {
                                let (at, n) = (at as usize, n as usize);
                                let full = Packet {
                                    payload: &batch.bytes[at..at + n],
                                    ..p
                                };
                                w.packet(ts, len, &full, &mut |lf| out.push(lf))
                            }
                            Msg::Fragment { ts, fid } => w.fragment(ts, fid),
                        }
                    }
                    if !out.is_empty() && otx.send(std::mem::take(&mut out)).is_err() {
                        break;
                    }
                }
                let stats = w.finish(&mut |lf| out.push(lf));
                let _ = otx.send(out);
                stats
            }));
            inputs.push(tx);
        }
        Shards {
            inputs,
            batches: (0..n).map(|_| Batch::new()).collect(),
            payload_bytes: cfg.payload_bytes as usize,
            output,
            handles,
            hasher: FixedState::with_seed(SHARD_SEED),
            routes: HashMap::with_hasher(FixedState::default()),
            waiting: HashMap::with_hasher(FixedState::default()),
        }
    }

    fn shard_of(&self, key: &FlowKey) -> usize {
        let h = self.hasher.hash_one(key);
        (((h >> 32) * self.inputs.len() as u64) >> 32) as usize
    }

    fn drain(&mut self, sink: &mut dyn FnMut(LabelledFlow)) {
        while let Ok(v) = self.output.try_recv() {
            v.into_iter().for_each(&mut *sink);
        }
    }

    fn send(&mut self, w: usize, m: Msg, sink: &mut dyn FnMut(LabelledFlow)) {
        self.batches[w].msgs.push(m);
        if self.batches[w].msgs.len() >= BATCH {
            self.flush(w, sink);
        }
    }

    fn flush(&mut self, w: usize, sink: &mut dyn FnMut(LabelledFlow)) {
        let batch = std::mem::replace(&mut self.batches[w], Batch::new());
        self.drain(sink);
        // A worker that is gone has panicked; its join in `finish` reports it.
        let _ = self.inputs[w].send(batch);
    }

    pub(crate) fn packet(
        &mut self,
        ts: i64,
        len: u32,
        p: &Packet<'_>,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        let (key, _) = FlowKey::new(
            Endpoint {
                addr: p.src,
                port: p.sport,
            },
            Endpoint {
                addr: p.dst,
                port: p.dport,
            },
            p.proto,
            p.v6,
        );
        let w = self.shard_of(&key);
        let bytes = &mut self.batches[w].bytes;
        let at = bytes.len();
        let n = p.payload.len().min(self.payload_bytes);
        bytes.extend_from_slice(&p.payload[..n]);
        self.send(
            w,
            Msg::Packet {
                ts,
                len,
                p: detach(p),
                at: at as u32,
                n: n as u32,
            },
            sink,
        );
        if let Some(fid) = p.first_fragment {
            if self.routes.len() >= MAX_ROUTES {
                self.routes.clear();
            }
            self.routes.insert(fid, w);
            for ts in self.waiting.remove(&fid).unwrap_or_default() {
                self.send(w, Msg::Fragment { ts, fid }, sink);
            }
        }
    }

    pub(crate) fn fragment(
        &mut self,
        ts: i64,
        fid: FragmentId,
        sink: &mut dyn FnMut(LabelledFlow),
    ) {
        if let Some(&w) = self.routes.get(&fid) {
            self.send(w, Msg::Fragment { ts, fid }, sink);
            return;
        }
        if self.waiting.len() >= MAX_ROUTES {
            self.release_waiting(sink);
        }
        self.waiting.entry(fid).or_default().push(ts);
    }

    /// Fragments whose first never came go to some worker, which counts them as orphans.
    fn release_waiting(&mut self, sink: &mut dyn FnMut(LabelledFlow)) {
        let waiting: Vec<_> = self.waiting.drain().collect();
        for (fid, list) in waiting {
            for ts in list {
                self.send(0, Msg::Fragment { ts, fid }, sink);
            }
        }
    }

    pub(crate) fn finish(&mut self, sink: &mut dyn FnMut(LabelledFlow)) -> TableStats {
        self.release_waiting(sink);
        for w in 0..self.inputs.len() {
            self.flush(w, sink);
        }
        self.inputs.clear();
        let mut stats = TableStats::default();
        for h in self.handles.drain(..) {
            // Keep the output flowing while this worker finishes, so it never waits on us.
            while !h.is_finished() {
                if let Ok(v) = self
                    .output
                    .recv_timeout(std::time::Duration::from_millis(5))
                {
                    v.into_iter().for_each(&mut *sink);
                }
            }
            match h.join() {
                Ok(s) => stats.add(&s),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        self.drain(sink);
        stats
    }
}

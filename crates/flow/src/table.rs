use std::collections::HashMap;
use std::hash::BuildHasher;

use flowdoc_dissect::{FragmentId, Packet, Proto};
use foldhash::fast::FixedState;

use crate::index::Index;

use crate::payload::{self, DEFAULT_PAYLOAD_BYTES};
use crate::{DirStats, EndReason, Endpoint, Flow, FlowKey, Side};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// How the table splits and bounds flows.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// A flow with no packet for this long ends; the next packet starts a new one. `None`
    /// keeps flows for the whole input (tshark's conversations do that).
    pub idle_timeout_ns: Option<i64>,
    /// A new SYN after FIN from both sides or RST starts a new flow.
    pub split_on_reuse: bool,
    /// Most flows held at once; past it the table expires and evicts.
    pub max_flows: usize,
    /// First bytes of each direction kept to identify the payload; 0 turns identification off.
    pub payload_bytes: u32,
    /// A flow closed by FIN from both sides or RST ends after this long without a packet,
    /// before the idle timeout (live capture writes it out promptly). `None`: only the idle
    /// timeout ends it.
    pub closed_linger_ns: Option<i64>,
    /// A flow longer than this ends (and its next packet starts a new one), so that a
    /// connection that lasts for days is reported while it lasts. `None`: never.
    pub active_timeout_ns: Option<i64>,
    /// A full table evicts down to this many sixteenths of the cap (at least one flow). 7
    /// (the default): a flood pays the sort once per many new flows. The threads' tables keep
    /// 15: what one eviction ends is held until its round is merged, so it must stay small.
    pub evict_to_16ths: u8,
}

/// The default cap: a million flows, 128 bytes each in one dense array (about 140 MB with the
/// index when full; memory grows with the flows actually open, not with the cap).
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ns: Some(300 * 1_000_000_000),
            split_on_reuse: true,
            max_flows: DEFAULT_MAX_FLOWS,
            payload_bytes: DEFAULT_PAYLOAD_BYTES,
            closed_linger_ns: None,
            active_timeout_ns: None,
            evict_to_16ths: 7,
        }
    }
}

/// What the table did besides holding flows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    pub flows_started: u64,
    pub ended_idle: u64,
    pub ended_reused: u64,
    /// Closed flows ended after their linger (live capture).
    pub ended_closed: u64,
    /// Flows ended by the active timeout.
    pub ended_active: u64,
    pub evicted: u64,
    /// Non-first fragments whose first fragment was never seen.
    pub orphan_fragments: u64,
    /// Fragment bookkeeping dropped because too many datagrams were open at once.
    pub fragment_overflow: u64,
}

impl TableStats {
    /// Adds another table's counts (one table per thread).
    pub fn add(&mut self, o: &TableStats) {
        self.flows_started += o.flows_started;
        self.ended_idle += o.ended_idle;
        self.ended_reused += o.ended_reused;
        self.ended_closed += o.ended_closed;
        self.ended_active += o.ended_active;
        self.evicted += o.evicted;
        self.orphan_fragments += o.orphan_fragments;
        self.fragment_overflow += o.fragment_overflow;
    }
}

/// Bound on datagrams whose fragments are being attributed at once.
const MAX_OPEN_DATAGRAMS: usize = 65_536;

/// The bounded two-way flow table.
///
/// Flows live in one dense array (`slab`, 128 bytes each, no holes: a removed flow's place
/// takes the last flow); a small hash index maps a key to its place. Per packet that is one
/// probe of the index (4 bytes a flow, so it stays in cache far longer than whole flows
/// would) and one flow. Memory follows the flows open, not the cap.
#[derive(Debug)]
pub struct FlowTable {
    cfg: FlowConfig,
    /// Places in `slab`, by the hash of the flow's key.
    index: Index,
    slab: Slab,
    /// First fragments seen: the datagram's flow and the sending side.
    datagrams: HashMap<FragmentId, (FlowKey, Side), FixedState>,
    /// Later fragments that came before their first: counted when it arrives.
    pending: HashMap<FragmentId, u32, FixedState>,
    stats: TableStats,
    /// Payload capture buffers ready for reuse.
    spare: payload::Spare,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> FlowTable {
        let cfg = FlowConfig {
            max_flows: cfg.max_flows.max(1),
            ..cfg
        };
        FlowTable {
            cfg,
            index: Index::default(),
            slab: Slab::default(),
            datagrams: HashMap::with_hasher(FixedState::default()),
            pending: HashMap::with_hasher(FixedState::default()),
            stats: TableStats::default(),
            spare: payload::Spare::default(),
        }
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.slab.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.flows.is_empty()
    }

    /// The flows open now, in no order.
    pub fn open(&self) -> impl Iterator<Item = &Flow> {
        self.slab.flows.iter()
    }

    /// The place of the flow with this key.
    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        let flows = &self.slab.flows;
        let slot = self.index.find(hash, |i| flows[i].key == *key)?;
        Some(self.index.place(slot))
    }

    /// Takes the flow at `at` out; the last flow moves into its place.
    fn take(&mut self, hash: u64, at: usize) -> Flow {
        if let Some(slot) = self.index.find(hash, |i| i == at) {
            self.index.remove(slot);
        }
        let last = self.slab.flows.len() - 1;
        if at != last {
            let moved = key_hash(&self.slab.flows[last].key);
            if let Some(slot) = self.index.find(moved, |i| i == last) {
                self.index.set(slot, at);
            }
        }
        self.slab.flows.swap_remove(at)
    }

    /// The hash this packet's flow is found by, for [`FlowTable::prefetch_slot`] and
    /// [`FlowTable::prefetch_flow`].
    #[inline]
    pub fn hash_of(&self, p: &Packet<'_>) -> PacketHash {
        packet_hash(p)
    }

    /// Starts loading the index slot a packet with this hash will probe. With
    /// [`FlowTable::prefetch_flow`] a little later, a caller that reads ahead overlaps the
    /// memory latency of several packets. Hints: nothing changes.
    #[inline]
    pub fn prefetch_slot(&self, hash: u64) {
        prefetch_line(self.index.home_slot(hash));
    }

    /// Starts loading the flow the index names for this hash (a wrong guess, another key
    /// with the same 32-bit tag, only wastes the load).
    #[inline]
    pub fn prefetch_flow(&self, hash: u64) {
        if let Some(f) = self
            .index
            .guess(hash)
            .and_then(|at| self.slab.flows.get(at))
        {
            prefetch_line(f);
            prefetch_line(&f.dir);
        }
    }

    /// Folds one packet in. Flows that end because of it go to `done`.
    pub fn observe(
        &mut self,
        ts_ns: i64,
        wire_len: u32,
        p: &Packet<'_>,
        done: &mut impl FnMut(Flow),
    ) {
        self.observe_hashed(self.hash_of(p), ts_ns, wire_len, p, done);
    }

    /// [`FlowTable::observe`] with the packet's [`FlowTable::hash_of`] (`h` must be this
    /// packet's), for a caller that already computed it to prefetch. Always inlined: the
    /// parallel fold, where the compiler kept it a call, handed each packet over through
    /// memory to be read back wider.
    #[inline(always)]
    pub fn observe_hashed<'a>(
        &mut self,
        h: PacketHash,
        ts_ns: i64,
        wire_len: u32,
        p: &impl PacketView<'a>,
        done: &mut impl FnMut(Flow),
    ) {
        let PacketHash { hash, side } = h;
        let key = key_of_side(p, side);
        debug_assert_eq!(
            (key, side),
            packet_key(&p.packet()),
            "another packet's hash"
        );
        let syn = p.proto() == Proto::Tcp && p.tcp_flags() & (SYN | ACK) == SYN;
        if let Some(at) = self.find(hash, &key) {
            let flow = &mut self.slab.flows[at];
            let idle = self
                .cfg
                .idle_timeout_ns
                .is_some_and(|t| ts_ns - flow.last_ns > t);
            let reused = self.cfg.split_on_reuse && syn && flow.closed;
            if !(idle || reused) {
                update(flow, side, ts_ns, wire_len, p);
                if wants_payload(&self.cfg, flow, p) {
                    let full = p.packet();
                    payload::on_packet(flow, side, &full, self.cfg.payload_bytes, &mut self.spare);
                }
                if p.first_fragment() {
                    self.note_first_fragment(&p.packet(), key, side);
                }
                return;
            }
            let mut old = self.take(hash, at);
            if idle {
                old.end = EndReason::Idle;
                self.stats.ended_idle += 1;
            } else {
                old.end = EndReason::Reused;
                self.stats.ended_reused += 1;
            }
            self.end(old, done);
        }
        self.start(hash, key, side, ts_ns, wire_len, &p.packet(), done);
    }

    /// A packet's new flow (the whole packet made: one packet a flow, not every packet).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        hash: u64,
        key: FlowKey,
        side: Side,
        ts_ns: i64,
        wire_len: u32,
        p: &Packet<'_>,
        done: &mut impl FnMut(Flow),
    ) {
        if self.len() >= self.cfg.max_flows {
            self.make_room(ts_ns, done);
        }
        let mut flow = new_flow(key, side, ts_ns, p);
        update(&mut flow, side, ts_ns, wire_len, p);
        if wants_payload(&self.cfg, &flow, p) {
            payload::on_packet(&mut flow, side, p, self.cfg.payload_bytes, &mut self.spare);
        }
        self.stats.flows_started += 1;
        let at = self.slab.push(flow, self.cfg.max_flows);
        self.index.insert(hash, at);
        if p.first_fragment.is_some() {
            self.note_first_fragment(p, key, side);
        }
    }

    /// A flow leaves the table: its identification is settled, then it goes to the sink.
    fn end(&mut self, mut f: Flow, done: &mut impl FnMut(Flow)) {
        payload::settle(&mut f, self.cfg.payload_bytes, &mut self.spare);
        done(f);
    }

    /// Called for the first fragment of a fragmented datagram only (rare: kept out of line).
    #[cold]
    fn note_first_fragment(&mut self, p: &Packet<'_>, key: FlowKey, side: Side) {
        let Some(fid) = p.first_fragment else { return };
        if self.datagrams.len() >= MAX_OPEN_DATAGRAMS {
            self.stats.fragment_overflow += self.datagrams.len() as u64;
            self.datagrams.clear();
        }
        self.datagrams.insert(fid, (key, side));
        if let Some(n) = self.pending.remove(&fid) {
            if let Some(f) = self.get_mut(&key) {
                f.dir[side.index()].fragments = f.dir[side.index()].fragments.saturating_add(n);
            }
        }
    }

    fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow> {
        let at = self.find(key_hash(key), key)?;
        Some(&mut self.slab.flows[at])
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Flow> {
        let hash = key_hash(key);
        let at = self.find(hash, key)?;
        Some(self.take(hash, at))
    }

    /// Counts a non-first fragment to the flow of its datagram.
    pub fn observe_fragment(&mut self, ts_ns: i64, fid: FragmentId) {
        if let Some(&(key, side)) = self.datagrams.get(&fid) {
            if let Some(f) = self.get_mut(&key) {
                f.dir[side.index()].fragments = f.dir[side.index()].fragments.saturating_add(1);
                f.last_ns = f.last_ns.max(ts_ns);
                return;
            }
        }
        if self.pending.len() >= MAX_OPEN_DATAGRAMS {
            self.stats.orphan_fragments +=
                self.pending.values().map(|&n| u64::from(n)).sum::<u64>();
            self.pending.clear();
        }
        let n = self.pending.entry(fid).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Ends every flow idle at `now_ns`, and closed flows past their linger, in order of first
    /// packet (then key). Call it now and then (live capture, long files).
    pub fn expire(&mut self, now_ns: i64, done: &mut impl FnMut(Flow)) {
        let (idle, linger, active) = (
            self.cfg.idle_timeout_ns,
            self.cfg.closed_linger_ns,
            self.cfg.active_timeout_ns,
        );
        if idle.is_none() && linger.is_none() && active.is_none() {
            return;
        }
        let mut stale: Vec<(i64, FlowKey, EndReason)> = self
            .slab
            .flows
            .iter()
            .filter_map(|f| {
                let quiet = now_ns - f.last_ns;
                let why = if idle.is_some_and(|t| quiet > t) {
                    EndReason::Idle
                } else if f.closed && linger.is_some_and(|l| quiet > l) {
                    EndReason::Closed
                } else if active.is_some_and(|a| now_ns - f.first_ns > a) {
                    EndReason::Active
                } else {
                    return None;
                };
                Some((f.first_ns, f.key, why))
            })
            .collect();
        // In order of first packet, as `finish` ends them: an order that does not depend on
        // where flows sit in the table, so that tables on several threads end the same flows
        // in the same order as one table.
        stale.sort_unstable_by_key(|&(first, key, _)| (first, key));
        for (_, k, why) in stale {
            if let Some(mut f) = self.remove(&k) {
                f.end = why;
                match why {
                    EndReason::Idle => self.stats.ended_idle += 1,
                    EndReason::Active => self.stats.ended_active += 1,
                    _ => self.stats.ended_closed += 1,
                }
                self.end(f, done);
            }
        }
    }

    /// Frees room: idle flows first, then the least recently seen, down to
    /// [`FlowConfig::evict_to_16ths`] of the cap.
    fn make_room(&mut self, now_ns: i64, done: &mut impl FnMut(Flow)) {
        self.expire(now_ns, done);
        if self.len() < self.cfg.max_flows {
            return;
        }
        let keep = self.cfg.max_flows * usize::from(self.cfg.evict_to_16ths.min(16)) / 16;
        let n = self.len().saturating_sub(keep).max(1);
        let mut by_age: Vec<(i64, FlowKey)> = self.open().map(|f| (f.last_ns, f.key)).collect();
        by_age.select_nth_unstable(n - 1);
        by_age.truncate(n);
        by_age.sort_unstable();
        for (_, k) in by_age {
            if let Some(mut f) = self.remove(&k) {
                f.end = EndReason::Evicted;
                self.stats.evicted += 1;
                self.end(f, done);
            }
        }
        self.index.shrink();
    }

    /// Ends every flow still open, in order of first packet, and the fragment bookkeeping.
    pub fn finish(&mut self, done: &mut impl FnMut(Flow)) {
        self.finish_sorted().for_each(done);
    }

    /// [`FlowTable::finish`] as an iterator over the table's own vector (sorted in place: no
    /// copy).
    pub fn finish_sorted(&mut self) -> Finished {
        self.index.clear();
        let mut all = std::mem::take(&mut self.slab.flows);
        all.sort_unstable_by_key(|f| (f.first_ns, f.key));
        for f in &mut all {
            payload::settle(f, self.cfg.payload_bytes, &mut self.spare);
        }
        self.stats.orphan_fragments += self.pending.drain().map(|(_, n)| u64::from(n)).sum::<u64>();
        self.datagrams.clear();
        Finished {
            flows: all.into_iter(),
        }
    }
}

/// The flows a table ended with, in order of first packet. Labelling and writing a flow read
/// its payload verdict and detail: two places on the heap, in no order, each a cache miss
/// when it is its turn. The iterator asks for them a few flows ahead instead (the verdict
/// [`Finished::VERDICT_AHEAD`] flows ahead, then the detail it points to nearer), so the misses
/// overlap the work on the flows before.
#[derive(Debug)]
pub struct Finished {
    flows: std::vec::IntoIter<Flow>,
}

impl Finished {
    const VERDICT_AHEAD: usize = 16;
    const DETAIL_AHEAD: usize = 8;
}

impl Iterator for Finished {
    type Item = Flow;

    #[inline]
    fn next(&mut self) -> Option<Flow> {
        let ahead = self.flows.as_slice();
        if let Some(state) = ahead
            .get(Self::VERDICT_AHEAD)
            .and_then(|f| f.payload.as_deref())
        {
            prefetch_line(state);
        }
        if let Some(b) = ahead
            .get(Self::DETAIL_AHEAD)
            .and_then(Flow::identified)
            .and_then(|id| id.detail.as_ref())
            .and_then(|d| d.as_bytes().first())
        {
            prefetch_line(b);
        }
        self.flows.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.flows.size_hint()
    }
}

impl ExactSizeIterator for Finished {}

/// What finding a packet's flow starts from: the hash its flow is found by in every
/// [`FlowTable`] (they share one fixed seed), and the side of the flow's key that sent it.
/// Worked out once, ahead of the table (to pick a table and to prefetch), and handed to
/// [`FlowTable::observe_hashed`], which then builds the key without comparing the endpoints
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHash {
    pub hash: u64,
    /// The sender's side, as [`FlowKey::new`] orders the endpoints.
    pub side: Side,
}

/// The packet's [`PacketHash`].
#[inline(always)]
pub fn packet_hash(p: &Packet<'_>) -> PacketHash {
    let (key, side) = packet_key(p);
    PacketHash {
        hash: key_hash(&key),
        side,
    }
}

/// The hash a key is found by in every [`FlowTable`] (`FixedState::default().hash_one(key)`),
/// always inlined: the two-thread walk, a large function, kept `hash_one` a call for every
/// packet.
#[inline(always)]
fn key_hash(key: &FlowKey) -> u64 {
    let mut h = FixedState::default().build_hasher();
    std::hash::Hash::hash(key, &mut h);
    std::hash::Hasher::finish(&h)
}

/// The packet's flow key, its sender being `side` (as [`packet_key`] says).
#[inline]
fn key_of_side<'a>(p: &impl PacketView<'a>, side: Side) -> FlowKey {
    let (src, dst) = p.endpoints();
    FlowKey::sent_by(src, dst, side, p.proto(), p.v6())
}

/// The packet's flow key and the side that sent it.
#[inline]
fn packet_key(p: &Packet<'_>) -> (FlowKey, Side) {
    let (src, dst) = endpoints(p);
    FlowKey::new(src, dst, p.proto, p.v6)
}

/// The packet's source and destination.
#[inline]
fn endpoints(p: &Packet<'_>) -> (Endpoint, Endpoint) {
    let src = Endpoint {
        addr: p.src,
        port: p.sport,
    };
    let dst = Endpoint {
        addr: p.dst,
        port: p.dport,
    };
    (src, dst)
}

/// What folding a packet into its flow reads of it. A dissected [`Packet`] is one. A caller
/// that keeps its packets packed (the threads' per-table records) gives a view of its own
/// instead of unpacking each into a `Packet`, some 120 bytes written and read back on every
/// packet: the fields every packet needs are read where they lie, and the whole packet is
/// made only on the paths a flow takes a few times (its first packet, payload
/// identification, a first fragment).
pub trait PacketView<'a> {
    /// Source and destination.
    fn endpoints(&self) -> (Endpoint, Endpoint);
    fn proto(&self) -> Proto;
    fn v6(&self) -> bool;
    fn tcp_flags(&self) -> u8;
    fn tcp_seq(&self) -> u32;
    /// Payload bytes or an ICMP type and code: something for payload identification.
    fn has_payload_or_icmp(&self) -> bool;
    /// The first fragment of a fragmented datagram.
    fn first_fragment(&self) -> bool;
    /// The whole packet.
    fn packet(&self) -> Packet<'a>;
}

impl<'a> PacketView<'a> for Packet<'a> {
    #[inline(always)]
    fn endpoints(&self) -> (Endpoint, Endpoint) {
        endpoints(self)
    }
    #[inline(always)]
    fn proto(&self) -> Proto {
        self.proto
    }
    #[inline(always)]
    fn v6(&self) -> bool {
        self.v6
    }
    #[inline(always)]
    fn tcp_flags(&self) -> u8 {
        self.tcp_flags
    }
    #[inline(always)]
    fn tcp_seq(&self) -> u32 {
        self.tcp_seq
    }
    #[inline(always)]
    fn has_payload_or_icmp(&self) -> bool {
        !self.payload.is_empty() || self.icmp.is_some()
    }
    #[inline(always)]
    fn first_fragment(&self) -> bool {
        self.first_fragment.is_some()
    }
    #[inline(always)]
    fn packet(&self) -> Packet<'a> {
        *self
    }
}

/// Asks the CPU to load the cache line that holds `r`.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_line<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing the program sees and never faults; the address is
        // that of a live reference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// The flows, dense. It grows by doubling up to the cap, and asks the kernel for huge pages
/// once it is large: a packet's flow is a random place in it, and with 4 KiB pages most of
/// those places also miss the TLB.
#[derive(Debug, Default)]
struct Slab {
    flows: Vec<Flow>,
}

/// Most flows whose room is reserved at once (128 MiB of address space): the default cap.
const RESERVE: usize = 1 << 20;

impl Slab {
    /// Appends a flow and returns its place.
    #[inline]
    fn push(&mut self, flow: Flow, cap: usize) -> usize {
        if self.flows.len() == self.flows.capacity() {
            self.grow(cap);
        }
        self.flows.push(flow);
        self.flows.len() - 1
    }

    /// Room for more flows. The first time, room for the cap (up to [`RESERVE`]) is reserved
    /// at once: address space only, which the kernel backs page by page as flows are written
    /// (on huge pages where it can), so the array is never copied and its memory grows with
    /// the flows, not the cap. Doubling is the fallback, past that or if the reservation fails.
    #[cold]
    fn grow(&mut self, cap: usize) {
        let cap = cap.max(1024);
        if self.flows.capacity() == 0 && self.flows.try_reserve_exact(cap.min(RESERVE)).is_ok() {
            huge_pages(&self.flows);
            return;
        }
        let want = (self.flows.capacity() * 2).clamp(1024, cap);
        self.flows
            .reserve_exact(want.saturating_sub(self.flows.len()).max(1));
        huge_pages(&self.flows);
    }
}

/// Asks for transparent huge pages on the whole 2 MiB pages inside the vector's buffer (when
/// the kernel is set to `madvise`, the usual default; a no-op where it is off or `always`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn huge_pages(v: &Vec<Flow>) {
    const HUGE: usize = 2 << 20;
    let bytes = v.capacity() * std::mem::size_of::<Flow>();
    if bytes < 2 * HUGE {
        return;
    }
    let start = v.as_ptr() as usize;
    let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
    if hi > lo {
        // SAFETY: advice only, on whole pages inside memory this vector owns; it changes
        // how the kernel backs the pages, never their contents. Failure is harmless.
        unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn huge_pages(_: &Vec<Flow>) {}

/// The one test every packet of a decided flow pays.
#[inline(always)]
fn wants_payload<'a>(cfg: &FlowConfig, flow: &Flow, p: &impl PacketView<'a>) -> bool {
    !flow.payload_done && cfg.payload_bytes > 0 && p.has_payload_or_icmp()
}

fn new_flow(key: FlowKey, side: Side, ts_ns: i64, p: &Packet<'_>) -> Flow {
    Flow {
        key,
        dir: [DirStats::default(); 2],
        first_sender: side,
        syn_from: None,
        syn_ack_from: None,
        first_ns: ts_ns,
        last_ns: ts_ns,
        tunnel: p.tunnel,
        vlan: p.vlan,
        end: EndReason::EndOfInput,
        closed: false,
        fin: [false; 2],
        payload: None,
        payload_done: false,
        payload_seen: false,
        syn_seq: [0; 2],
    }
}

#[inline]
fn update<'a>(flow: &mut Flow, side: Side, ts_ns: i64, wire_len: u32, p: &impl PacketView<'a>) {
    let d = &mut flow.dir[side.index()];
    d.packets += 1;
    d.bytes += u64::from(wire_len);
    if ts_ns > flow.last_ns {
        flow.last_ns = ts_ns;
    }
    if ts_ns < flow.first_ns {
        flow.first_ns = ts_ns;
    }
    // Flags only from TCP, by a mask rather than a branch: TCP and UDP packets come mixed,
    // and without flags none of the tests below holds.
    let flags = p.tcp_flags() & 0u8.wrapping_sub(u8::from(p.proto() == Proto::Tcp));
    d.tcp_flags |= flags;
    if flags & (SYN | ACK) == SYN && flow.syn_from.is_none() {
        flow.syn_from = Some(side);
        flow.syn_seq[side.index()] = p.tcp_seq() as u16;
    } else if flags & (SYN | ACK) == SYN | ACK && flow.syn_ack_from.is_none() {
        flow.syn_ack_from = Some(side);
        flow.syn_seq[side.index()] = p.tcp_seq() as u16;
    }
    if flags & FIN != 0 {
        flow.fin[side.index()] = true;
    }
    if flags & RST != 0 || (flow.fin[0] && flow.fin[1]) {
        flow.closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowdoc_dissect::Packet;

    fn ip(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[12..].copy_from_slice(&[10, 0, 0, last]);
        a
    }

    fn tcp(src: u8, sport: u16, dst: u8, dport: u16, flags: u8) -> Packet<'static> {
        Packet {
            src: ip(src),
            dst: ip(dst),
            v6: false,
            proto: Proto::Tcp,
            sport,
            dport,
            tcp_flags: flags,
            tcp_seq: 0,
            icmp: None,
            payload: &[],
            tunnel: None,
            vlan: None,
            first_fragment: None,
        }
    }

    fn run(cfg: FlowConfig, pkts: &[(i64, Packet<'static>)]) -> (Vec<Flow>, TableStats) {
        let mut t = FlowTable::new(cfg);
        let mut out = Vec::new();
        for (ts, p) in pkts {
            t.observe(*ts, 60, p, &mut |f| out.push(f));
        }
        t.finish(&mut |f| out.push(f));
        (out, t.stats())
    }

    #[test]
    fn a_flow_fits_two_cache_lines() {
        assert_eq!(std::mem::size_of::<Flow>(), 128);
    }

    #[test]
    fn both_directions_make_one_flow_with_per_side_counts() {
        let (flows, _) = run(
            FlowConfig::default(),
            &[
                (1, tcp(1, 40000, 2, 5269, SYN)),
                (2, tcp(2, 5269, 1, 40000, SYN | ACK)),
                (3, tcp(1, 40000, 2, 5269, ACK)),
            ],
        );
        assert_eq!(flows.len(), 1);
        let f = &flows[0];
        let client = if f.key.a.port == 40000 {
            Side::A
        } else {
            Side::B
        };
        assert_eq!(f.side(client).packets, 2);
        assert_eq!(f.side(client.other()).packets, 1);
        assert_eq!(f.syn_from, Some(client));
        assert_eq!(f.syn_ack_from, Some(client.other()));
        assert_eq!(f.bytes(), 180);
    }

    #[test]
    fn a_new_syn_after_fin_both_ways_is_a_new_flow() {
        let pkts = [
            (1, tcp(1, 40000, 2, 5060, SYN)),
            (2, tcp(1, 40000, 2, 5060, FIN | ACK)),
            (3, tcp(2, 5060, 1, 40000, FIN | ACK)),
            (4, tcp(1, 40000, 2, 5060, SYN)),
        ];
        let (flows, stats) = run(FlowConfig::default(), &pkts);
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].end, EndReason::Reused);
        assert_eq!(stats.ended_reused, 1);
        let (flows, _) = run(
            FlowConfig {
                split_on_reuse: false,
                ..FlowConfig::default()
            },
            &pkts,
        );
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn idle_gap_splits_and_none_keeps_one_flow() {
        let sec = 1_000_000_000;
        let pkts = [
            (0, tcp(1, 40000, 2, 5222, ACK)),
            (400 * sec, tcp(1, 40000, 2, 5222, ACK)),
        ];
        let (flows, stats) = run(FlowConfig::default(), &pkts);
        assert_eq!((flows.len(), stats.ended_idle), (2, 1));
        let (flows, _) = run(
            FlowConfig {
                idle_timeout_ns: None,
                ..FlowConfig::default()
            },
            &pkts,
        );
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_oldest_and_hands_them_out() {
        let cfg = FlowConfig {
            max_flows: 16,
            idle_timeout_ns: None,
            ..FlowConfig::default()
        };
        let pkts: Vec<_> = (0..40u16)
            .map(|i| (i64::from(i), tcp(1, 1000 + i, 2, 80, SYN)))
            .collect();
        let (flows, stats) = run(cfg, &pkts);
        assert_eq!(flows.len(), 40, "no flow is lost");
        assert!(stats.evicted >= 24, "{stats:?}");
        assert_eq!(flows[0].end, EndReason::Evicted);
        assert_eq!(flows[0].key.a.port.min(flows[0].key.b.port), 80);
        assert_eq!(flows.iter().map(|f| f.packets()).sum::<u64>(), 40);
    }

    #[test]
    fn a_full_table_evicts_down_to_its_share_of_the_cap() {
        // The 17th flow finds the table full: down to 7/16 of 16 (9 evicted), or to 15/16 (1).
        let pkts: Vec<_> = (0..17u16)
            .map(|i| (i64::from(i), tcp(1, 1000 + i, 2, 80, SYN)))
            .collect();
        for (keep, evicted) in [(7, 9), (15, 1), (16, 1), (0, 16)] {
            let cfg = FlowConfig {
                max_flows: 16,
                idle_timeout_ns: None,
                evict_to_16ths: keep,
                ..FlowConfig::default()
            };
            let (flows, stats) = run(cfg, &pkts);
            assert_eq!(
                (stats.evicted, flows.len()),
                (evicted, 17),
                "keep {keep}/16"
            );
        }
    }

    #[test]
    fn later_fragments_count_to_the_first_fragments_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let fid = FragmentId {
            src: ip(1),
            dst: ip(2),
            ip_proto: 17,
            id: 7,
        };
        let mut first = tcp(1, 5353, 2, 53, 0);
        first.proto = Proto::Udp;
        first.first_fragment = Some(fid);
        t.observe_fragment(0, fid);
        t.observe(1, 1500, &first, &mut |_| {});
        t.observe_fragment(2, fid);
        // Another datagram of the same flow: its first fragment finds the flow open.
        let second = FragmentId { id: 8, ..fid };
        first.first_fragment = Some(second);
        t.observe(3, 1500, &first, &mut |_| {});
        t.observe_fragment(4, second);
        let mut out = Vec::new();
        t.finish(&mut |f| out.push(f));
        assert_eq!(out[0].packets(), 2);
        assert_eq!(out[0].dir.iter().map(|d| d.fragments).sum::<u32>(), 3);
        assert_eq!(t.stats().orphan_fragments, 0);
    }

    /// A data segment of `data` from 10.0.0.1:40000 to 10.0.0.2:8443 at `seq`.
    fn seg(seq: u32, data: &'static [u8]) -> Packet<'static> {
        let mut p = tcp(1, 40000, 2, 8443, 0x08 | ACK);
        p.tcp_seq = seq;
        p.payload = data;
        p
    }

    /// The flow after these packets, while still in the table.
    fn open_flow(pkts: &[Packet<'static>]) -> Flow {
        let mut t = FlowTable::new(FlowConfig::default());
        for (i, p) in pkts.iter().enumerate() {
            t.observe(i as i64, 60, p, &mut |_| panic!("no flow ends"));
        }
        let f = t.open().next().expect("one flow").clone();
        f
    }

    const NOISE: &[u8] = &[0x5a; 300];

    #[test]
    fn bytes_that_start_the_stream_are_judged_at_once() {
        let mut syn = tcp(1, 40000, 2, 8443, SYN);
        syn.tcp_seq = 1000;
        let mut syn_ack = tcp(2, 8443, 1, 40000, SYN | ACK);
        syn_ack.tcp_seq = 7000;
        // The first data byte follows the SYN: nothing can come before it.
        let f = open_flow(&[syn, syn_ack, seg(1001, NOISE)]);
        assert!(f.payload_done, "decided on the first segment");
        assert!(f.carried_payload() && f.app().is_none());
        // Without the handshake the same segment may be a late one: wait for more.
        let f = open_flow(&[seg(1001, NOISE)]);
        assert!(!f.payload_done);
        // After the handshake, a segment that does not start the stream waits too, and the
        // earlier segment, when it comes, is what identifies the flow.
        let f = open_flow(&[syn, syn_ack, seg(1101, NOISE)]);
        assert!(!f.payload_done);
        let pkts = [
            syn,
            syn_ack,
            seg(1017, NOISE),
            seg(1001, b"GET / HTTP/1.1\r\nHo"),
        ];
        let (flows, _) = run(FlowConfig::default(), &pkts.map(|p| (0, p)));
        assert_eq!(flows[0].app(), Some(crate::App::Http));
    }

    #[test]
    fn a_long_flow_is_reported_at_the_active_timeout_and_continues() {
        let s = 1_000_000_000;
        let mut t = FlowTable::new(FlowConfig {
            active_timeout_ns: Some(2 * s),
            ..FlowConfig::default()
        });
        let mut out = Vec::new();
        let p = tcp(1, 40000, 2, 5222, ACK);
        t.observe(0, 60, &p, &mut |f| out.push(f));
        t.observe(s, 60, &p, &mut |f| out.push(f));
        t.expire(s + s / 2, &mut |f| out.push(f));
        assert!(out.is_empty(), "not yet");
        t.expire(3 * s, &mut |f| out.push(f));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].end, out[0].packets()), (EndReason::Active, 2));
        t.observe(4 * s, 60, &p, &mut |f| out.push(f));
        t.finish(&mut |f| out.push(f));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].packets(), 1);
        assert_eq!(t.stats().ended_active, 1);
    }
}

//! The first bytes of each direction of a flow, kept until the flow's protocol is identified.
//!
//! TCP segments are put in sequence order (split, retransmitted, overlapping or reordered
//! segments all land in place; a few out-of-order segments wait for the gap to fill); UDP keeps
//! each side's first datagram. At most `payload_bytes` per direction are kept, and the bytes
//! are freed as soon as [`flowdoc_identify::identify`] decides: from then on the flow's packets
//! cost one flag test here.

use flowdoc_dissect::{Packet, Proto};
use flowdoc_identify::{identify, identify_icmp, Identified, Input, Transport, Verdict};

use crate::{Flow, Side};

/// Bytes of each direction kept for identification unless configured otherwise.
pub const DEFAULT_PAYLOAD_BYTES: u32 = 4096;

/// Out-of-order segments held per direction while a gap is open.
const MAX_HELD: usize = 8;

/// Payload packets after which identification decides with what it has: retransmissions,
/// gaps that never fill, or a protocol that keeps asking for more cannot keep a flow on the
/// slow path.
const MAX_SEGMENTS: u32 = 12;

/// A flow's payload identification: capturing, or decided.
#[derive(Debug, Clone)]
pub(crate) enum PayloadState {
    Capturing(Box<Capture>),
    Done(Identified),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    dir: [Stream; 2],
    /// Payload-carrying packets seen.
    segments: u32,
}

/// Capture buffers of decided flows, cleared and kept for the next flows: in a steady state a
/// flow's first bytes cost no allocation (the buffers keep their capacity, at most
/// `payload_bytes` per direction).
#[derive(Debug, Default)]
#[allow(clippy::vec_box)] // the boxes themselves are what is reused: a flow holds one
pub(crate) struct Spare(Vec<Box<Capture>>);

/// Most buffers kept spare.
const SPARE: usize = 64;

impl Spare {
    fn take(&mut self) -> Box<Capture> {
        self.0.pop().unwrap_or_default()
    }

    fn give(&mut self, mut cap: Box<Capture>) {
        if self.0.len() < SPARE {
            cap.segments = 0;
            cap.dir.iter_mut().for_each(Stream::clear);
            self.0.push(cap);
        }
    }
}

/// One direction's first bytes.
#[derive(Debug, Clone, Default)]
struct Stream {
    started: bool,
    /// Sequence number of `data[0]` (TCP).
    base: u32,
    data: Vec<u8>,
    /// Segments after a gap (or before the first byte): (sequence, bytes).
    held: Vec<(u32, Vec<u8>)>,
}

impl Stream {
    /// Empty again, keeping the buffer's capacity.
    fn clear(&mut self) {
        self.started = false;
        self.base = 0;
        self.data.clear();
        self.held.clear();
    }

    fn full(&self, limit: usize) -> bool {
        self.data.len() >= limit
    }

    /// Puts a TCP segment in place; true when the in-order bytes changed.
    fn tcp(&mut self, seq: u32, p: &[u8], limit: usize) -> bool {
        if !self.started {
            self.started = true;
            self.base = seq;
        }
        if !self.place(seq, p, limit) {
            return false;
        }
        // The gap may be filled now.
        while let Some(i) = self
            .held
            .iter()
            .position(|(s, d)| self.touches(*s, d.len()))
        {
            let (s, d) = self.held.swap_remove(i);
            self.place(s, &d, limit);
        }
        true
    }

    /// Offset of `seq` from the first byte kept (negative: before it).
    fn rel(&self, seq: u32) -> i64 {
        i64::from(seq.wrapping_sub(self.base) as i32)
    }

    /// The segment overlaps or abuts the bytes kept.
    fn touches(&self, seq: u32, len: usize) -> bool {
        let rel = self.rel(seq);
        rel <= self.data.len() as i64 && rel + len as i64 >= 0
    }

    fn place(&mut self, seq: u32, p: &[u8], limit: usize) -> bool {
        let rel = self.rel(seq);
        let len = p.len() as i64;
        let end = self.data.len() as i64;
        if !self.touches(seq, p.len()) {
            // A gap: keep the segment for later if it falls inside the window.
            if rel < limit as i64 && rel + len > -(limit as i64) && self.held.len() < MAX_HELD {
                self.held.push((seq, p[..p.len().min(limit)].to_vec()));
            }
            return false;
        }
        let mut changed = false;
        if rel < 0 {
            // Bytes before the first kept: a reordered earlier segment.
            let before = (-rel) as usize;
            let mut v = Vec::with_capacity((before + self.data.len()).min(limit));
            v.extend_from_slice(&p[..before]);
            v.extend_from_slice(&self.data);
            v.truncate(limit);
            self.data = v;
            self.base = seq;
            changed = true;
        }
        let rel = self.rel(seq);
        let end = end.max(self.data.len() as i64);
        if rel + len > end && self.data.len() < limit {
            let from = (end - rel) as usize;
            let room = limit - self.data.len();
            let tail = &p[from..];
            self.data.extend_from_slice(&tail[..tail.len().min(room)]);
            changed = true;
        }
        changed
    }

    /// Keeps a UDP side's first datagram (a one-byte NAT keepalive does not count).
    fn udp(&mut self, p: &[u8], limit: usize) -> bool {
        if self.started || p.len() <= 1 {
            return false;
        }
        self.started = true;
        self.data.extend_from_slice(&p[..p.len().min(limit)]);
        true
    }
}

/// Folds one packet's payload into its flow. Called only while the flow is undecided.
#[inline(never)]
pub(crate) fn on_packet(
    flow: &mut Flow,
    side: Side,
    p: &Packet<'_>,
    limit: u32,
    spare: &mut Spare,
) {
    if let Some((t, c)) = p.icmp {
        flow.payload = Some(Box::new(PayloadState::Done(identify_icmp(t, c))));
        flow.payload_done = true;
        return;
    }
    flow.payload_seen = true;
    let limit = limit as usize;
    let i = side.index();
    // A side's first bytes are judged where they lie in the packet, beside what the other
    // side holds, and copied only when the recognisers want more: most flows that one packet
    // decides never allocate, and a handshake that the answer decides (TLS) never copies it.
    let (fresh, segments, other_full) = match flow.payload.as_deref() {
        None => (true, 1, false),
        Some(PayloadState::Capturing(cap)) => (
            !cap.dir[i].started,
            cap.segments.saturating_add(1),
            cap.dir[1 - i].full(limit),
        ),
        Some(PayloadState::Done(_)) => (false, 0, false),
    };
    let judged = fresh && (p.proto == Proto::Tcp || p.payload.len() > 1);
    if judged {
        let here = &p.payload[..p.payload.len().min(limit)];
        // What `decide` would be told once the bytes were copied.
        let last = segments >= MAX_SEGMENTS || (other_full && here.len() >= limit);
        let (mut data, mut base): ([&[u8]; 2], _) = match flow.payload.as_deref() {
            Some(PayloadState::Capturing(cap)) => (
                [&cap.dir[0].data, &cap.dir[1].data],
                [cap.dir[0].base, cap.dir[1].base],
            ),
            _ => ([&[], &[]], [p.tcp_seq; 2]),
        };
        data[i] = here;
        base[i] = p.tcp_seq;
        if let Verdict::Done(id) = judge(flow, data, base, segments, last) {
            settle_with(flow, id, spare);
            return;
        }
    }
    let state = flow
        .payload
        .get_or_insert_with(|| Box::new(PayloadState::Capturing(spare.take())));
    let PayloadState::Capturing(cap) = &mut **state else {
        flow.payload_done = true;
        return;
    };
    cap.segments = cap.segments.saturating_add(1);
    let s = &mut cap.dir[i];
    let changed = match p.proto {
        Proto::Tcp => s.tcp(p.tcp_seq, p.payload, limit),
        Proto::Udp => s.udp(p.payload, limit),
        Proto::Icmp | Proto::Icmpv6 => false,
    };
    if cap.segments >= MAX_SEGMENTS {
        decide(flow, limit, true, spare);
        flow.payload_done = true;
    } else if changed && !judged {
        // (A side's first bytes were judged above, as they are now.)
        decide(flow, limit, false, spare);
    }
}

/// Decides what is still undecided: the flow is ending.
pub(crate) fn settle(flow: &mut Flow, limit: u32, spare: &mut Spare) {
    if !flow.payload_done {
        decide(flow, limit as usize, true, spare);
        flow.payload_done = true;
    }
}

/// Low 16 bits of the sequence number of a side's first data byte, when its SYN was seen.
fn stream_start(flow: &Flow, side: Side) -> Option<u16> {
    (flow.syn_from == Some(side) || flow.syn_ack_from == Some(side))
        .then(|| flow.syn_seq[side.index()].wrapping_add(1))
}

/// Runs the recognisers on what was captured; `last`: nothing more will come, so they decide.
fn decide(flow: &mut Flow, limit: usize, last: bool, spare: &mut Spare) {
    let Some(PayloadState::Capturing(cap)) = flow.payload.as_deref() else {
        return;
    };
    let data = [&cap.dir[0].data[..], &cap.dir[1].data[..]];
    let base = [cap.dir[0].base, cap.dir[1].base];
    let last = last || cap.dir.iter().all(|d| d.full(limit));
    if let Verdict::Done(id) = judge(flow, data, base, cap.segments, last) {
        settle_with(flow, id, spare);
    }
}

/// Runs the recognisers on each side's first bytes; `base`: the TCP sequence number of each
/// side's first byte.
fn judge(flow: &Flow, data: [&[u8]; 2], base: [u32; 2], segments: u32, last: bool) -> Verdict {
    let transport = match flow.key.proto {
        Proto::Tcp => Transport::Tcp,
        _ => Transport::Udp,
    };
    let input = Input {
        transport,
        ports: [flow.key.a.port, flow.key.b.port],
        data,
        client: flow.syn_from.unwrap_or(flow.first_sender).index(),
        segments,
        last,
        from_start: transport == Transport::Tcp
            && data.iter().any(|d| !d.is_empty())
            && [Side::A, Side::B].into_iter().all(|side| {
                let i = side.index();
                data[i].is_empty() || stream_start(flow, side) == Some(base[i] as u16)
            }),
    };
    identify(&input)
}

/// The verdict is in: the captured bytes go back to the spares, the answer stays in the same
/// box (nothing when nothing was recognised).
fn settle_with(flow: &mut Flow, id: Identified, spare: &mut Spare) {
    let keep = id.app.is_some() || id.detail.is_some();
    let done = PayloadState::Done(id);
    flow.payload = match flow.payload.take() {
        Some(mut state) => {
            if let PayloadState::Capturing(cap) = std::mem::replace(&mut *state, done) {
                spare.give(cap);
            }
            keep.then_some(state)
        }
        None => keep.then(|| Box::new(done)),
    };
    flow.payload_done = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(segs: &[(u32, &[u8])], limit: usize) -> Vec<u8> {
        let mut s = Stream::default();
        for (seq, d) in segs {
            s.tcp(*seq, d, limit);
        }
        s.data
    }

    #[test]
    fn split_segments_join_in_order() {
        assert_eq!(
            stream(&[(100, b"GET "), (104, b"/ HTTP/1.1")], 64),
            b"GET / HTTP/1.1"
        );
    }

    #[test]
    fn retransmissions_and_overlaps_are_not_doubled() {
        let got = stream(&[(1, b"abcd"), (1, b"abcd"), (3, b"cdef"), (5, b"ef")], 64);
        assert_eq!(got, b"abcdef");
    }

    #[test]
    fn reordered_segments_wait_for_the_gap() {
        assert_eq!(
            stream(&[(10, b"ab"), (14, b"ef"), (12, b"cd")], 64),
            b"abcdef"
        );
        // The second segment first: the first one is put before it.
        assert_eq!(stream(&[(14, b"ef"), (10, b"abcd")], 64), b"abcdef");
        // A gap before the first kept byte, filled later.
        assert_eq!(
            stream(&[(20, b"kl"), (10, b"ab"), (12, b"cdefghij")], 64),
            b"abcdefghijkl"
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let got = stream(&[(u32::MAX - 1, b"ab"), (0, b"cd")], 64);
        assert_eq!(got, b"abcd");
    }

    #[test]
    fn the_budget_bounds_every_path() {
        let big = [b'x'; 100];
        assert_eq!(stream(&[(0, &big)], 10).len(), 10);
        assert_eq!(stream(&[(50, &big), (0, &big)], 10).len(), 10);
        let mut s = Stream::default();
        for i in 0..100u32 {
            s.tcp(1000 + i * 1000, b"zz", 4096);
        }
        assert!(s.held.len() <= MAX_HELD);
    }
}

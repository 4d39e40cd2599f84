//! The two-way flow table.
//!
//! Packets from [`flowdoc_dissect`] are folded into [`Flow`]s keyed by a canonical,
//! direction-free [`FlowKey`] (the 5-tuple; ICMP by addresses and echo identifier). Each flow
//! keeps per-direction packets, bytes and timestamps, TCP flags, and the evidence the
//! classifier needs to name the initiator (who sent the SYN, who the SYN-ACK). A port reused
//! after FIN/RST, or traffic after the idle timeout, starts a new flow. The table has a cap:
//! when full it expires idle flows, then evicts the least recently seen; every flow that leaves
//! the table is handed to the caller's sink, so nothing is lost, and the leaving is counted.
//!
//! The first bytes of each direction are kept (bounded, TCP put in order) until the payload's
//! protocol is identified, then freed; see [`Flow::identified`].
//!
//! It does not know the catalogue: naming the initiator by documented ports is `classify`'s job.

mod index;
mod payload;
mod table;

pub use flowdoc_identify::{App, Detail, Identified, PackedDetail, Value};
pub use payload::DEFAULT_PAYLOAD_BYTES;
pub use table::{
    packet_hash, Finished, FlowConfig, FlowTable, PacketHash, PacketView, TableStats,
    DEFAULT_MAX_FLOWS,
};

use payload::PayloadState;

use flowdoc_dissect::{Addr, Proto, Tunnel};

/// One side of a flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: Addr,
    /// Port, or the echo identifier for ICMP (0 for other ICMP messages).
    pub port: u16,
}

impl Endpoint {
    /// The address as a std type (IPv4 when the flow is IPv4).
    pub fn ip(&self, v6: bool) -> std::net::IpAddr {
        if v6 {
            std::net::IpAddr::V6(std::net::Ipv6Addr::from(self.addr))
        } else {
            let a = self.addr;
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(a[12], a[13], a[14], a[15]))
        }
    }
}

/// A direction-free flow key: `a` is the lower endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub a: Endpoint,
    pub b: Endpoint,
    pub proto: Proto,
    pub v6: bool,
}

impl std::hash::Hash for FlowKey {
    /// Three wide writes instead of a dozen small ones: this runs once per packet.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_ne_bytes(self.a.addr));
        state.write_u128(u128::from_ne_bytes(self.b.addr));
        state.write_u64(
            u64::from(self.a.port)
                | u64::from(self.b.port) << 16
                | u64::from(self.proto.ip_number()) << 32
                | u64::from(self.v6) << 40,
        );
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether `src` is side `a`.
    #[inline]
    pub fn new(src: Endpoint, dst: Endpoint, proto: Proto, v6: bool) -> (FlowKey, Side) {
        // `src <= dst` as two integer compares: bytes in order compare as a big-endian number.
        let order = |e: &Endpoint| (u128::from_be_bytes(e.addr), e.port);
        // Either answer is as likely as the other, packet after packet: a branch here was
        // mispredicted half the time (callgrind's branch model: 0.5 per packet), a select
        // costs the same every time.
        let side = std::hint::select_unpredictable(order(&src) <= order(&dst), Side::A, Side::B);
        (FlowKey::sent_by(src, dst, side, proto, v6), side)
    }

    /// The key of a packet from `src` to `dst` whose sender is side `sender`, as
    /// [`FlowKey::new`] worked it out (for a caller that kept the side, not the key).
    #[inline]
    pub fn sent_by(src: Endpoint, dst: Endpoint, sender: Side, proto: Proto, v6: bool) -> FlowKey {
        // A select, as above: either side is as likely.
        let (a, b) = std::hint::select_unpredictable(sender == Side::A, (src, dst), (dst, src));
        FlowKey { a, b, proto, v6 }
    }

    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::A => self.a,
            Side::B => self.b,
        }
    }
}

/// Which endpoint of a [`FlowKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// What one side sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    pub packets: u64,
    /// Bytes on the wire (the frames' original lengths).
    pub bytes: u64,
    /// Extra IP fragments (after the first) of this side's datagrams.
    pub fragments: u32,
    /// TCP flags seen from this side, OR-ed.
    pub tcp_flags: u8,
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Still open when the input ended.
    EndOfInput,
    /// No packet for longer than the idle timeout.
    Idle,
    /// The same 5-tuple started a new connection after FIN or RST.
    Reused,
    /// Pushed out because the table was full.
    Evicted,
    /// Closed (FIN from both sides, or RST) and quiet for the linger time (live capture).
    Closed,
    /// Open longer than the active timeout: reported now, continued as a new flow.
    Active,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::EndOfInput => "end-of-input",
            EndReason::Idle => "idle",
            EndReason::Reused => "port-reused",
            EndReason::Evicted => "evicted",
            EndReason::Closed => "closed",
            EndReason::Active => "active-timeout",
        }
    }
}

/// A flow: a key plus what was seen in each direction.
///
/// Laid out as two cache lines, the key and the per-packet state in the first, so that a
/// packet of a flow that is not in cache costs as few misses as possible.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub struct Flow {
    pub key: FlowKey,
    pub end: EndReason,
    pub tunnel: Option<Tunnel>,
    pub last_ns: i64,
    pub first_ns: i64,
    /// Side that sent the first packet seen.
    pub first_sender: Side,
    /// Side that sent a SYN without ACK, if seen.
    pub syn_from: Option<Side>,
    /// Side that sent a SYN-ACK, if seen.
    pub syn_ack_from: Option<Side>,
    /// Set once a FIN was seen from both sides, or a RST.
    closed: bool,
    fin: [bool; 2],
    /// Identification is decided: later packets skip it.
    payload_done: bool,
    /// Some packet carried payload (an unidentified flow is then opaque, not empty).
    payload_seen: bool,
    /// Per side, indexed by [`Side::index`].
    pub dir: [DirStats; 2],
    /// Payload identification: first bytes while undecided, then the verdict (none when the
    /// flow carried no payload or nothing was recognised).
    payload: Option<Box<PayloadState>>,
    pub vlan: Option<u16>,
    /// Low 16 bits of each side's initial sequence number, valid for the side that sent the
    /// SYN (`syn_from`) or the SYN-ACK (`syn_ack_from`): whether a side's first data segment
    /// starts its stream. 16 bits keep the flow in two cache lines; a false "start" needs the
    /// first 64 KiB of a stream to be missing from the capture after its SYN was seen.
    syn_seq: [u16; 2],
}

impl Flow {
    pub fn packets(&self) -> u64 {
        self.dir[0].packets + self.dir[1].packets
    }
    pub fn bytes(&self) -> u64 {
        self.dir[0].bytes + self.dir[1].bytes
    }
    pub fn side(&self, side: Side) -> &DirStats {
        &self.dir[side.index()]
    }
    /// What the payload was identified as; `None` when it carried none or nothing matched.
    pub fn identified(&self) -> Option<&Identified> {
        match self.payload.as_deref() {
            Some(PayloadState::Done(id)) => Some(id),
            _ => None,
        }
    }
    /// Some packet of the flow carried payload (with identification on).
    pub fn carried_payload(&self) -> bool {
        self.payload_seen
    }
    /// The identified protocol.
    pub fn app(&self) -> Option<App> {
        self.identified().and_then(|id| id.app)
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(addr, port)| Endpoint { addr, port })
    }

    proptest! {
        #[test]
        fn a_flow_key_is_the_same_from_either_direction(src in endpoint(), dst in endpoint(), v6 in any::<bool>()) {
            let (k1, s1) = FlowKey::new(src, dst, Proto::Tcp, v6);
            let (k2, s2) = FlowKey::new(dst, src, Proto::Tcp, v6);
            prop_assert_eq!(k1, k2);
            prop_assert_eq!(k1.endpoint(s1), src);
            prop_assert_eq!(k2.endpoint(s2), dst);
            if src != dst {
                prop_assert_ne!(s1, s2);
            }
        }

        /// Side `a` is the smaller endpoint in `Endpoint`'s own order (the order reports sort
        /// by), addresses that share their first bytes included.
        #[test]
        fn side_a_is_the_smaller_endpoint(src in endpoint(), dst in endpoint(), cut in 0usize..16) {
            let mut near = dst;
            near.addr[..cut].copy_from_slice(&src.addr[..cut]);
            for dst in [dst, near, Endpoint { port: dst.port, ..src }] {
                let (k, _) = FlowKey::new(src, dst, Proto::Udp, true);
                prop_assert_eq!(k.a, src.min(dst));
                prop_assert_eq!(k.b, src.max(dst));
            }
        }
    }
}

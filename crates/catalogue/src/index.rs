//! O(1) port lookup: per transport, a bit per port and the rank of its bit into a flat list of
//! row ids.

use crate::{Row, RowId, SourcePort, Transport};

/// Rows by listener port (and, for rows that fix only the sender's port, by source port).
#[derive(Debug, Clone, Default)]
pub struct PortIndex {
    listener: [Csr; 2],
    fixed_source: [Csr; 2],
    icmp: Vec<RowId>,
}

/// Rows by port, for the few ports that have any: one bit per port says whether it has rows,
/// and the number of such ports below it (`ranks` per 64 ports, then a popcount) indexes
/// `offsets`: its rows are `ids[offsets[r]..offsets[r + 1]]`. About 12 KB a table, so that
/// the lookups of a flow's ports (mostly ephemeral ones, with no rows) stay in the cache; a
/// plain table of 65,537 offsets was 256 KB a table, and random ports missed it: at the end
/// of a run with 50,000 open flows, classifying spent 60% of its time on that one load.
#[derive(Debug, Clone, Default)]
struct Csr {
    bits: Vec<u64>,
    ranks: Vec<u32>,
    offsets: Vec<u32>,
    ids: Vec<RowId>,
}

impl Csr {
    fn build(pairs: &mut [(u16, RowId)]) -> Csr {
        pairs.sort_unstable();
        let mut bits = vec![0u64; 1 << 10];
        let mut offsets = Vec::new();
        for (i, &(port, _)) in pairs.iter().enumerate() {
            if i == 0 || pairs[i - 1].0 != port {
                bits[usize::from(port >> 6)] |= 1 << (port & 63);
                offsets.push(i as u32);
            }
        }
        offsets.push(pairs.len() as u32);
        let mut below = 0;
        let ranks = bits
            .iter()
            .map(|w| {
                let r = below;
                below += w.count_ones();
                r
            })
            .collect();
        Csr {
            bits,
            ranks,
            offsets,
            ids: pairs.iter().map(|&(_, id)| id).collect(),
        }
    }

    #[inline]
    fn get(&self, port: u16) -> &[RowId] {
        let (w, bit) = (usize::from(port >> 6), port & 63);
        let (Some(&word), Some(&rank)) = (self.bits.get(w), self.ranks.get(w)) else {
            return &[];
        };
        if word >> bit & 1 == 0 {
            return &[];
        }
        let r = (rank + (word & ((1 << bit) - 1)).count_ones()) as usize;
        match (self.offsets.get(r), self.offsets.get(r + 1)) {
            (Some(&a), Some(&b)) => self.ids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

fn slot(t: Transport) -> Option<usize> {
    match t {
        Transport::Tcp => Some(0),
        Transport::Udp => Some(1),
        Transport::Icmp => None,
    }
}

impl PortIndex {
    pub(crate) fn build(rows: &[Row]) -> PortIndex {
        let mut listener: [Vec<(u16, RowId)>; 2] = Default::default();
        let mut fixed: [Vec<(u16, RowId)>; 2] = Default::default();
        let mut icmp = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let id = RowId::try_from(i).unwrap_or(RowId::MAX);
            for &t in &row.transports {
                let Some(s) = slot(t) else {
                    icmp.push(id);
                    continue;
                };
                for &p in &row.ports {
                    listener[s].push((p, id));
                }
                if let (true, SourcePort::Fixed(sp)) = (row.ports.is_empty(), row.source_port) {
                    fixed[s].push((sp, id));
                }
            }
        }
        let [mut lt, mut lu] = listener;
        let [mut ft, mut fu] = fixed;
        PortIndex {
            listener: [Csr::build(&mut lt), Csr::build(&mut lu)],
            fixed_source: [Csr::build(&mut ft), Csr::build(&mut fu)],
            icmp,
        }
    }

    /// Rows whose listener port is `port` on `transport` (all ICMP rows for [`Transport::Icmp`]).
    pub fn by_listener(&self, transport: Transport, port: u16) -> &[RowId] {
        match slot(transport) {
            Some(s) => self.listener[s].get(port),
            None => &self.icmp,
        }
    }

    /// Rows with no listener port that fix the sender's port to `port` (e.g. table 12's 61441).
    pub fn by_fixed_source(&self, transport: Transport, port: u16) -> &[RowId] {
        match slot(transport) {
            Some(s) => self.fixed_source[s].get(port),
            None => &[],
        }
    }

    /// Whether any row lists `port` as a listener port on `transport`.
    pub fn is_listener(&self, transport: Transport, port: u16) -> bool {
        !self.by_listener(transport, port).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every port gives exactly the rows filed under it, in order, as a scan of the pairs
        /// does: ports with rows next to ports without, in every 64-port word.
        #[test]
        fn each_port_gives_its_rows(
            pairs in proptest::collection::vec((any::<u16>(), 0..50 as RowId), 0..200),
            probes in proptest::collection::vec(any::<u16>(), 64),
        ) {
            let mut filed = pairs.clone();
            let csr = Csr::build(&mut filed);
            let near = pairs.iter().flat_map(|&(p, _)| [p, p.wrapping_add(1)]);
            for port in near.chain(probes) {
                let want: Vec<RowId> = filed.iter().filter(|&&(p, _)| p == port).map(|&(_, id)| id).collect();
                prop_assert_eq!(csr.get(port), &want[..], "port {}", port);
            }
        }
    }

    #[test]
    fn the_edges_of_the_port_range() {
        let mut pairs = vec![(0, 1), (63, 2), (64, 3), (65_535, 4), (65_535, 5)];
        let csr = Csr::build(&mut pairs);
        assert_eq!(csr.get(0), &[1]);
        assert_eq!(csr.get(63), &[2]);
        assert_eq!(csr.get(64), &[3]);
        assert_eq!(csr.get(65_535), &[4, 5]);
        assert!(csr.get(1).is_empty() && csr.get(65_534).is_empty());
        assert!(Csr::default().get(80).is_empty());
    }
}

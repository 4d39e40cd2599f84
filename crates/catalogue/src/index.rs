//! O(1) port lookup: one 65,536-slot offset table per transport into a flat list of row ids.

use crate::{Row, RowId, SourcePort, Transport};

/// Rows by listener port (and, for rows that fix only the sender's port, by source port).
#[derive(Debug, Clone, Default)]
pub struct PortIndex {
    listener: [Csr; 2],
    fixed_source: [Csr; 2],
    icmp: Vec<RowId>,
}

/// Compressed rows: `ids[offsets[p]..offsets[p + 1]]` are the rows for port `p`.
#[derive(Debug, Clone, Default)]
struct Csr {
    offsets: Vec<u32>,
    ids: Vec<RowId>,
}

impl Csr {
    fn build(pairs: &mut [(u16, RowId)]) -> Csr {
        pairs.sort_unstable();
        let mut offsets = vec![0u32; 65_537];
        for &(port, _) in pairs.iter() {
            offsets[usize::from(port) + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        Csr {
            offsets,
            ids: pairs.iter().map(|&(_, id)| id).collect(),
        }
    }

    fn get(&self, port: u16) -> &[RowId] {
        let p = usize::from(port);
        match (self.offsets.get(p), self.offsets.get(p + 1)) {
            (Some(&a), Some(&b)) => &self.ids[a as usize..b as usize],
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

//! Deterministic captures for tests, demos and benchmarks.
//!
//! [`packet`] builds IP packets (etherparse's `PacketBuilder`) and wraps them in link headers
//! and tunnels; [`write`] lays them out as pcap (µs or ns, either byte order) or pcapng
//! (several interfaces, EPB/SPB/OPB, unknown blocks); [`fixtures`] is the set checked in under
//! `fixtures/`, one scenario per file, and [`bench`] the large benchmark capture. The same
//! inputs always give the same bytes: there is no clock and no randomness but a seeded PRNG.

pub mod bench;
pub mod fixtures;
pub mod messages;
pub mod packet;
pub mod write;

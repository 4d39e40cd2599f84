//! The compliance package: what a security team needs before a firewall is opened.
//!
//! [`Compliance`] aggregates labelled flows (the same ones every other output gets) into the
//! openings the capture shows to be needed, each justified by the guide's rows, the
//! undocumented flows to review, and the findings; [`Compliance::finish`] adds the capture's
//! provenance and gives a [`ComplianceReport`], written as JSON, Markdown or a self-contained
//! HTML page, and the input of the firewall rules ([`crate::rules`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;

use flowdoc_catalogue::{Catalogue, RowId};
use flowdoc_classify::Finding;
use flowdoc_dissect::Proto;
use flowdoc_pipeline::{LabelledFlow, Reference, Summary};
use foldhash::fast::FixedState;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use crate::app::{app_name, escape};
use crate::rfc3339;

/// Most undocumented groups listed; the rest are counted.
const MAX_UNDOCUMENTED: usize = 10_000;
/// Examples kept per finding.
const EXAMPLES: usize = 5;
/// Hosts and services in the matrix (the busiest).
const MATRIX: usize = 30;

/// One side of an opening: an inventory name, or an address the inventory does not know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// The inventory's name, or the address.
    pub label: String,
    /// Whether the inventory names it.
    pub known: bool,
    /// What a rule matches for it: the host's addresses or the network, as CIDRs.
    pub addresses: Vec<String>,
    /// Its inventory roles.
    pub roles: Vec<String>,
}

/// A catalogue row cited for an opening.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    pub id: String,
    pub table: u8,
    pub label: String,
}

/// A documented opening the capture shows to be in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    pub source: Party,
    pub destination: Party,
    /// "tcp", "udp" or "icmp".
    pub transport: String,
    /// The destination port; null for ICMP.
    pub port: Option<u16>,
    /// The guide's rows that justify it.
    pub rows: Vec<Citation>,
    pub flows: u64,
    pub bytes: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// Finding codes seen on its flows.
    pub findings: Vec<String>,
}

/// Undocumented traffic between two parties on one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undocumented {
    pub source: Party,
    pub destination: Party,
    pub transport: String,
    pub port: Option<u16>,
    /// What the payload looked like ("http", "opaque", "-" for none).
    pub looks_like: Vec<String>,
    pub flows: u64,
    pub bytes: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub findings: Vec<String>,
}

/// One finding code with its meaning and examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingSummary {
    pub code: String,
    pub explanation: String,
    pub flows: u64,
    pub examples: Vec<String>,
}

/// Flows and bytes documented by one table of the guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableUse {
    pub table: u8,
    pub title: String,
    pub flows: u64,
    pub bytes: u64,
}

/// Flows per host (rows) and documented service (columns), the busiest of each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub hosts: Vec<String>,
    pub services: Vec<String>,
    /// `cells[h][s]`: flows of host `h` (either side) on service `s`.
    pub cells: Vec<Vec<u64>>,
}

/// The headline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    pub flows: u64,
    pub documented: u64,
    pub undocumented: u64,
    /// Flows with each finding code.
    pub findings: BTreeMap<String, u64>,
    pub openings: u64,
    /// Packets that could not be put in a flow.
    pub packets_skipped: u64,
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    pub path: String,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
    pub format: Option<String>,
    pub records: u64,
    pub error: Option<String>,
}

/// The inventory used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryUsed {
    pub path: String,
    pub name: Option<String>,
    pub sha256: Option<String>,
    pub hosts: usize,
    pub networks: usize,
}

/// Where the evidence comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub files: Vec<InputFile>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub catalogue: String,
    pub catalogue_version: String,
    pub inventory: Option<InventoryUsed>,
    pub flowdoc: String,
}

/// The whole package, as the JSON output writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceReport {
    pub verdict: Verdict,
    pub provenance: Provenance,
    pub tables: Vec<TableUse>,
    pub matrix: Matrix,
    pub openings: Vec<Opening>,
    pub undocumented: Vec<Undocumented>,
    /// Undocumented groups beyond the listed ones (counted, not listed).
    pub undocumented_not_listed: u64,
    pub findings: Vec<FindingSummary>,
}

#[derive(Debug, Default)]
struct Agg {
    flows: u64,
    bytes: u64,
    first_ns: i64,
    last_ns: i64,
    findings: BTreeSet<Finding>,
}

impl Agg {
    fn add(&mut self, lf: &LabelledFlow) {
        if self.flows == 0 || lf.flow.first_ns < self.first_ns {
            self.first_ns = lf.flow.first_ns;
        }
        if self.flows == 0 || lf.flow.last_ns > self.last_ns {
            self.last_ns = lf.flow.last_ns;
        }
        self.flows += 1;
        self.bytes += lf.flow.bytes();
        self.findings.extend(lf.class.findings.iter().copied());
    }

    fn codes(&self) -> Vec<String> {
        self.findings.iter().map(|f| f.code().to_string()).collect()
    }
}

type Key = (Party, Party, Proto, Option<u16>);

/// A party's number: each party met is numbered once, so two flows' parties are the same when
/// their numbers are. Groups are found by numbers, not by parties (each a few strings, made
/// from the address and compared for every flow: 3.5 us a flow on 50,000 flows).
type PartyId = u32;
/// A group's [`Key`] by party numbers.
type IdKey = (PartyId, PartyId, Proto, Option<u16>);
/// A service of the matrix: transport, port and the first matched row (its name is made when
/// the report is).
type ServiceKey = (Proto, Option<u16>, Option<RowId>);
type Map<K, V> = HashMap<K, V, FixedState>;

/// Aggregates labelled flows into a [`ComplianceReport`]; memory is bounded by the groups.
#[derive(Debug)]
pub struct Compliance<'a> {
    rf: Reference<'a>,
    /// The parties of the groups, numbered, and the number of each address met in them.
    parties: Map<Party, PartyId>,
    by_address: Map<IpAddr, PartyId>,
    openings: Map<IdKey, (BTreeSet<RowId>, Agg)>,
    undocumented: Map<IdKey, (BTreeSet<&'static str>, Agg)>,
    undocumented_not_listed: u64,
    findings: BTreeMap<Finding, (u64, Vec<String>)>,
    tables: BTreeMap<u8, (u64, u64)>,
    matrix: Map<(PartyId, ServiceKey), u64>,
    verdict: Verdict,
}

impl<'a> Compliance<'a> {
    pub fn new(rf: impl Into<Reference<'a>>) -> Compliance<'a> {
        Compliance {
            rf: rf.into(),
            parties: Map::default(),
            by_address: Map::default(),
            openings: Map::default(),
            undocumented: Map::default(),
            undocumented_not_listed: 0,
            findings: BTreeMap::new(),
            tables: BTreeMap::new(),
            matrix: Map::default(),
            verdict: Verdict::default(),
        }
    }

    fn party(&self, ip: IpAddr) -> Party {
        match self.rf.inventory.and_then(|inv| inv.lookup(ip)) {
            Some(w) => Party {
                label: w.name.to_string(),
                known: true,
                addresses: w.cidrs().iter().map(IpNet::to_string).collect(),
                roles: w.roles.iter().map(|r| r.as_str().to_string()).collect(),
            },
            None => Party {
                label: ip.to_string(),
                known: false,
                addresses: vec![IpNet::from(ip).to_string()],
                roles: Vec::new(),
            },
        }
    }

    /// The number of the party at `ip`, numbered now if it is new.
    fn number(&mut self, ip: IpAddr) -> PartyId {
        if let Some(&id) = self.by_address.get(&ip) {
            return id;
        }
        let next = self.parties.len() as PartyId;
        let id = *self.parties.entry(self.party(ip)).or_insert(next);
        self.by_address.insert(ip, id);
        id
    }

    /// The number of the party at `ip` if it has one, without numbering it.
    fn numbered(&self, ip: IpAddr) -> Option<PartyId> {
        match self.by_address.get(&ip) {
            Some(&id) => Some(id),
            None => self.parties.get(&self.party(ip)).copied(),
        }
    }

    pub fn add(&mut self, lf: &LabelledFlow) {
        let f = &lf.flow;
        let c = &lf.class;
        let init = f.key.endpoint(c.initiator);
        let resp = f.key.endpoint(c.initiator.other());
        let port = matches!(f.key.proto, Proto::Tcp | Proto::Udp).then_some(resp.port);
        let (from, to) = (init.ip(f.key.v6), resp.ip(f.key.v6));
        self.verdict.flows += 1;
        let cat = self.rf.catalogue;
        if c.documented() {
            self.verdict.documented += 1;
            let mut tables: SmallVec<[u8; 8]> =
                c.matches.iter().map(|&r| cat.row(r).table).collect();
            tables.sort_unstable();
            tables.dedup();
            for t in tables {
                let e = self.tables.entry(t).or_default();
                e.0 += 1;
                e.1 += f.bytes();
            }
            let key = (self.number(from), self.number(to), f.key.proto, port);
            let service = (f.key.proto, port, c.matches.first().copied());
            for host in [key.0, key.1] {
                *self.matrix.entry((host, service)).or_default() += 1;
            }
            let e = self.openings.entry(key).or_default();
            e.0.extend(c.matches.iter().copied());
            e.1.add(lf);
        } else {
            self.verdict.undocumented += 1;
            // Past the listed groups a flow is only counted unless its group is listed, and
            // its parties are not numbered (memory stays bounded by the groups).
            let key = if self.undocumented.len() < MAX_UNDOCUMENTED {
                Some((self.number(from), self.number(to), f.key.proto, port))
            } else {
                self.numbered(from)
                    .zip(self.numbered(to))
                    .map(|(a, b)| (a, b, f.key.proto, port))
                    .filter(|k| self.undocumented.contains_key(k))
            };
            match key {
                Some(key) => {
                    let e = self.undocumented.entry(key).or_default();
                    e.0.insert(app_name(f));
                    e.1.add(lf);
                }
                None => self.undocumented_not_listed += 1,
            }
        }
        for &fd in &c.findings {
            let wanted = self.findings.get(&fd).is_none_or(|e| e.1.len() < EXAMPLES);
            let example = wanted.then(|| {
                let rows: Vec<&str> = c.matches.iter().map(|&r| cat.row(r).id.as_str()).collect();
                let mut ex = format!(
                    "{} -> {} {}",
                    self.party(from).label,
                    self.party(to).label,
                    port_text(f.key.proto, port)
                );
                if !rows.is_empty() {
                    ex.push_str(&format!(" ({})", rows.join(", ")));
                }
                if let Some(id) = f.identified().filter(|id| id.app.is_some()) {
                    ex.push_str(": ");
                    ex.push_str(&crate::app::summary(id));
                }
                escape(&ex)
            });
            let e = self.findings.entry(fd).or_default();
            e.0 += 1;
            e.1.extend(example);
        }
    }

    /// The report: the aggregates, the run's counts, and where the evidence came from (each
    /// capture's SHA-256 read here, with [`sha256_file`]).
    pub fn finish(self, summary: &Summary, inventory_path: Option<&Path>) -> ComplianceReport {
        self.finish_hashed(summary, inventory_path, &mut |p| sha256_file(p).ok())
    }

    /// [`Compliance::finish`] with each capture's SHA-256 from `sha256` (`None`: the file
    /// could not be read), e.g. made on another thread while the flows were analysed.
    pub fn finish_hashed(
        self,
        summary: &Summary,
        inventory_path: Option<&Path>,
        sha256: &mut dyn FnMut(&Path) -> Option<String>,
    ) -> ComplianceReport {
        let cat = self.rf.catalogue;
        let mut verdict = self.verdict;
        verdict.openings = self.openings.len() as u64;
        verdict.packets_skipped = summary.skipped_total();
        verdict.findings = self
            .findings
            .iter()
            .map(|(fd, (flows, _))| (fd.code().to_string(), *flows))
            .collect();
        // The parties by number; the groups are put in order by them, then each group's
        // parties copied once into it.
        let mut parties: Vec<Option<Party>> = vec![None; self.parties.len()];
        for (p, id) in self.parties {
            parties[id as usize] = Some(p);
        }
        let nobody = Party {
            label: String::new(),
            known: false,
            addresses: Vec::new(),
            roles: Vec::new(),
        };
        let party = |id: PartyId| parties[id as usize].as_ref().unwrap_or(&nobody);
        let keyed = |(a, b, proto, port): IdKey| (party(a), party(b), proto, port);
        // Each service's name once, each cell by the names (a name may stand for several
        // parties or services).
        let mut services: Map<ServiceKey, String> = Map::default();
        for &(_, service) in self.matrix.keys() {
            services.entry(service).or_insert_with(|| {
                let (proto, port, first) = service;
                service_name(cat, proto, port, first.as_slice())
            });
        }
        let cells = || {
            self.matrix.iter().map(|(&(host, service), &n)| {
                let name = services.get(&service).map_or("", String::as_str);
                (party(host).label.as_str(), name, n)
            })
        };
        let matrix = matrix(cells(), cells());
        let openings = in_order(self.openings, &keyed)
            .into_iter()
            .map(|((source, destination, proto, port), (rows, a))| Opening {
                source,
                destination,
                transport: proto.as_str().to_string(),
                port,
                rows: rows
                    .iter()
                    .map(|&r| {
                        let row = cat.row(r);
                        Citation {
                            id: row.id.clone(),
                            table: row.table,
                            label: row.label.clone(),
                        }
                    })
                    .collect(),
                flows: a.flows,
                bytes: a.bytes,
                first_seen: rfc3339(a.first_ns),
                last_seen: rfc3339(a.last_ns),
                findings: a.codes(),
            })
            .collect();
        let mut undocumented: Vec<Undocumented> = in_order(self.undocumented, &keyed)
            .into_iter()
            .map(
                |((source, destination, proto, port), (apps, a))| Undocumented {
                    source,
                    destination,
                    transport: proto.as_str().to_string(),
                    port,
                    looks_like: apps.iter().map(|s| s.to_string()).collect(),
                    flows: a.flows,
                    bytes: a.bytes,
                    first_seen: rfc3339(a.first_ns),
                    last_seen: rfc3339(a.last_ns),
                    findings: a.codes(),
                },
            )
            .collect();
        // The busiest first: what a reviewer looks at first.
        undocumented.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.flows.cmp(&a.flows)));
        let findings = self
            .findings
            .into_iter()
            .map(|(fd, (flows, examples))| FindingSummary {
                code: fd.code().to_string(),
                explanation: fd.explain().to_string(),
                flows,
                examples,
            })
            .collect();
        let tables = self
            .tables
            .into_iter()
            .map(|(t, (flows, bytes))| TableUse {
                table: t,
                title: cat.table(t).map(|x| x.title.clone()).unwrap_or_default(),
                flows,
                bytes,
            })
            .collect();
        ComplianceReport {
            verdict,
            provenance: provenance(cat, summary, self.rf, inventory_path, sha256),
            tables,
            matrix,
            openings,
            undocumented,
            undocumented_not_listed: self.undocumented_not_listed,
            findings,
        }
    }
}

/// Groups by their parties, in order (the groups are found by number; the report lists them
/// by party), each with its parties.
fn in_order<'p, G>(
    m: Map<IdKey, G>,
    keyed: &dyn Fn(IdKey) -> (&'p Party, &'p Party, Proto, Option<u16>),
) -> Vec<(Key, G)> {
    let mut v: Vec<_> = m.into_iter().map(|(k, g)| (keyed(k), g)).collect();
    v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    v.into_iter()
        .map(|((a, b, proto, port), g)| ((a.clone(), b.clone(), proto, port), g))
        .collect()
}

fn port_text(proto: Proto, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{p}/{}", proto.as_str()),
        None => proto.as_str().to_string(),
    }
}

/// "5222/tcp XCP client access (XMPP)": the port and the first row's label.
fn service_name(cat: &Catalogue, proto: Proto, port: Option<u16>, rows: &[RowId]) -> String {
    let label = rows
        .first()
        .map(|&r| cat.row(r).label.as_str())
        .unwrap_or("");
    format!("{} {label}", port_text(proto, port))
}

/// The busiest hosts and services and their flows, from (host, service, flows) cells, given
/// twice: once to find the busiest, once to fill their cells (the same cell may come several
/// times: its flows are added).
fn matrix<'n>(
    cells: impl Iterator<Item = (&'n str, &'n str, u64)>,
    again: impl Iterator<Item = (&'n str, &'n str, u64)>,
) -> Matrix {
    let mut by_host: Map<&str, u64> = Map::default();
    let mut by_service: Map<&str, u64> = Map::default();
    for (h, s, n) in cells {
        *by_host.entry(h).or_default() += n;
        *by_service.entry(s).or_default() += n;
    }
    let top = |m: Map<&'n str, u64>| {
        let mut v: Vec<(&str, u64)> = m.into_iter().collect();
        v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(MATRIX);
        let mut names: Vec<&str> = v.into_iter().map(|(n, _)| n).collect();
        names.sort_unstable();
        names
    };
    let (hosts, services) = (top(by_host), top(by_service));
    let place = |names: &[&'n str]| -> Map<&'n str, usize> {
        names.iter().enumerate().map(|(i, &n)| (n, i)).collect()
    };
    let (row, column) = (place(&hosts), place(&services));
    let mut table = vec![vec![0u64; services.len()]; hosts.len()];
    for (h, s, n) in again {
        if let (Some(&r), Some(&c)) = (row.get(h), column.get(s)) {
            table[r][c] += n;
        }
    }
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
    Matrix {
        hosts: owned(hosts),
        services: owned(services),
        cells: table,
    }
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn provenance(
    cat: &Catalogue,
    s: &Summary,
    rf: Reference<'_>,
    inventory_path: Option<&Path>,
    sha256: &mut dyn FnMut(&Path) -> Option<String>,
) -> Provenance {
    Provenance {
        files: s
            .files
            .iter()
            .map(|f| InputFile {
                path: f.path.display().to_string(),
                sha256: sha256(&f.path),
                bytes: std::fs::metadata(&f.path).ok().map(|m| m.len()),
                format: f.format.map(str::to_string),
                records: f.records,
                error: f.error.clone(),
            })
            .collect(),
        first_seen: s.first_ns.map(rfc3339),
        last_seen: s.last_ns.map(rfc3339),
        catalogue: cat.source().to_string(),
        catalogue_version: cat.version().to_string(),
        inventory: rf.inventory.map(|inv| InventoryUsed {
            path: inventory_path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| inv.source.clone()),
            name: inv.name.clone(),
            sha256: inventory_path.and_then(|p| sha256_file(p).ok()),
            hosts: inv.hosts.len(),
            networks: inv.networks.len(),
        }),
        flowdoc: env!("CARGO_PKG_VERSION").to_string(),
    }
}

impl ComplianceReport {
    /// Pretty JSON, newline-terminated.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// [`ComplianceReport::to_json`] written to `w` as it is made, without the whole text in
    /// memory (on a large capture it is the largest of the three files: 200 MB for a
    /// 300,000-flow scan).
    pub fn write_json(&self, w: &mut dyn io::Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, self)?;
        w.write_all(b"\n")
    }

    /// Headline lines shared by Markdown and HTML: what a reviewer must see first.
    pub(crate) fn headline(&self) -> Vec<(String, u64, &'static str)> {
        let v = &self.verdict;
        let count = |code: &str| v.findings.get(code).copied().unwrap_or(0);
        vec![
            ("flows".into(), v.flows, "ok"),
            ("documented".into(), v.documented, "ok"),
            ("undocumented".into(), v.undocumented, bad(v.undocumented)),
            (
                "role-mismatch".into(),
                count("role-mismatch"),
                bad(count("role-mismatch")),
            ),
            (
                "localhost-only-on-wire".into(),
                count("localhost-only-on-wire"),
                bad(count("localhost-only-on-wire")),
            ),
            (
                "other findings".into(),
                v.findings
                    .iter()
                    .filter(|(k, _)| *k != "role-mismatch" && *k != "localhost-only-on-wire")
                    .map(|(_, n)| n)
                    .sum(),
                "warn",
            ),
        ]
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        let v = &self.verdict;
        o.push_str("# flowdoc compliance report\n\n");
        o.push_str(&format!(
            "**Verdict:** {} flows, {} documented by the IM and Presence port guide, {} undocumented; {} flows with findings; {} openings needed.\n\n",
            v.flows,
            v.documented,
            v.undocumented,
            v.findings.values().sum::<u64>(),
            v.openings
        ));
        o.push_str("| check | flows |\n| --- | ---: |\n");
        for (name, n, _) in self.headline() {
            o.push_str(&format!("| {name} | {n} |\n"));
        }
        o.push_str("\n## Findings\n\n");
        if self.findings.is_empty() {
            o.push_str("None.\n");
        }
        for f in &self.findings {
            o.push_str(&format!(
                "- **{}** ({} flows): {}.\n",
                f.code, f.flows, f.explanation
            ));
            for e in &f.examples {
                o.push_str(&format!("  - `{}`\n", md_code(e)));
            }
        }
        o.push_str("\n## Openings needed (documented flows)\n\n");
        o.push_str("| source | destination | transport | port | guide rows | flows | bytes | first seen | last seen | findings |\n");
        o.push_str("| --- | --- | --- | ---: | --- | ---: | ---: | --- | --- | --- |\n");
        for p in &self.openings {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md(&party_text(&p.source)),
                md(&party_text(&p.destination)),
                p.transport,
                opt(p.port),
                md(&citations(&p.rows)),
                p.flows,
                p.bytes,
                p.first_seen,
                p.last_seen,
                p.findings.join(", ")
            ));
        }
        o.push_str("\n## Undocumented flows to review\n\n");
        if self.undocumented.is_empty() {
            o.push_str("None.\n");
        } else {
            o.push_str("| source | destination | transport | port | looks like | flows | bytes | first seen | last seen | findings |\n");
            o.push_str("| --- | --- | --- | ---: | --- | ---: | ---: | --- | --- | --- |\n");
            for u in &self.undocumented {
                o.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    md(&party_text(&u.source)),
                    md(&party_text(&u.destination)),
                    u.transport,
                    opt(u.port),
                    u.looks_like.join(", "),
                    u.flows,
                    u.bytes,
                    u.first_seen,
                    u.last_seen,
                    u.findings.join(", ")
                ));
            }
        }
        if self.undocumented_not_listed > 0 {
            o.push_str(&format!(
                "\n{} more undocumented flows are counted but not listed.\n",
                self.undocumented_not_listed
            ));
        }
        o.push_str("\n## Flows per guide table\n\n| table | title | flows | bytes | share |\n| ---: | --- | ---: | ---: | --- |\n");
        let max = self
            .tables
            .iter()
            .map(|t| t.flows)
            .max()
            .unwrap_or(1)
            .max(1);
        for t in &self.tables {
            let bar = "█".repeat(((t.flows * 20).div_ceil(max)) as usize);
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                t.table,
                md(&t.title),
                t.flows,
                t.bytes,
                bar
            ));
        }
        o.push_str("\n## Provenance\n\n");
        let p = &self.provenance;
        for f in &p.files {
            o.push_str(&format!(
                "- capture `{}`: {} records, {} bytes, sha256 `{}`{}\n",
                md_code(&f.path),
                f.records,
                f.bytes.map_or("?".into(), |b| b.to_string()),
                f.sha256.as_deref().unwrap_or("unreadable"),
                f.error
                    .as_ref()
                    .map(|e| format!(" (error: {})", md(e)))
                    .unwrap_or_default()
            ));
        }
        o.push_str(&format!(
            "- time span: {} .. {}\n- catalogue: {} ({})\n",
            p.first_seen.as_deref().unwrap_or("-"),
            p.last_seen.as_deref().unwrap_or("-"),
            md(&p.catalogue),
            md(&p.catalogue_version)
        ));
        match &p.inventory {
            Some(i) => o.push_str(&format!(
                "- inventory: `{}` ({}; {} hosts, {} networks), sha256 `{}`\n",
                md_code(&i.path),
                md(i.name.as_deref().unwrap_or("unnamed")),
                i.hosts,
                i.networks,
                i.sha256.as_deref().unwrap_or("-")
            )),
            None => o.push_str("- inventory: none (no role checks; hosts shown by address)\n"),
        }
        o.push_str(&format!("- flowdoc {}\n", p.flowdoc));
        o
    }
}

fn bad(n: u64) -> &'static str {
    if n > 0 {
        "bad"
    } else {
        "ok"
    }
}

fn opt(p: Option<u16>) -> String {
    p.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
}

/// "imp-1 (10.0.0.1/32)" or "10.0.0.9".
pub(crate) fn party_text(p: &Party) -> String {
    if p.known {
        format!("{} ({})", p.label, p.addresses.join(", "))
    } else {
        p.label.clone()
    }
}

pub(crate) fn citations(rows: &[Citation]) -> String {
    rows.iter()
        .map(|c| format!("{} {}", c.id, c.label))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Text for a Markdown table cell.
fn md(s: &str) -> String {
    escape(s).replace('|', "\\|")
}

/// Text for Markdown inline code.
fn md_code(s: &str) -> String {
    escape(s).replace('`', "'")
}

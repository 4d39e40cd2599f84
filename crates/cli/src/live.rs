//! `flowdoc live`: packets from an interface (libpcap, with the `live` feature) or a capture
//! file at its recorded pace, through the same pipeline as `analyze`. Flows that end are
//! written to `--jsonl` as they finish (rotated by size or time); a summary is shown every
//! interval (a refreshing block on a terminal, JSON lines otherwise); SIGINT or SIGTERM ends
//! every open flow, closes the files whole and prints the report `analyze` prints.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowdoc_capture::write::{self, PcapOptions};
use flowdoc_live::{Counters, Event, Replay};
use flowdoc_pipeline::{Engine, LabelledFlow, Options, Reference};
use flowdoc_report::{FlowRecord, RenderOptions, TableReport};
use std::sync::Mutex;

use flowdoc_serve::{ServeConfig, Shared, RECENT_FLOWS};

use super::{color_wanted, load_catalogue, load_inventory, CommonArgs, Failure};

#[derive(clap::Args, Debug)]
pub(crate) struct LiveArgs {
    /// Interface to capture on (built with the `live` feature: libpcap).
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: Option<String>,
    /// List the interfaces libpcap can open, and exit.
    #[arg(long)]
    list_interfaces: bool,
    /// Play this capture file at its recorded pace instead of capturing (demos and tests).
    #[arg(long, value_name = "FILE", conflicts_with = "interface")]
    replay: Option<PathBuf>,
    /// Replay this many times faster than recorded.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    speed: f64,
    /// BPF filter, as tcpdump takes it (interfaces only).
    #[arg(long, value_name = "BPF")]
    filter: Option<String>,
    /// Bytes kept of each packet (interfaces only).
    #[arg(long, default_value_t = 65_535, value_name = "BYTES")]
    snaplen: i32,
    /// The kernel's buffer for the capture, in megabytes: what absorbs a burst while flowdoc
    /// catches up (interfaces only; tcpdump's -B).
    #[arg(long, default_value_t = 64, value_name = "MB",
          value_parser = clap::value_parser!(u32).range(1..=2047))]
    buffer_mb: u32,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    no_promisc: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Write each flow as it ends to this JSON Lines file.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Start a new JSONL file when the current one reaches this many kilobytes (0: never);
    /// closed files are FILE.1, FILE.2, ...
    #[arg(long, default_value_t = 0, value_name = "KB")]
    rotate_kb: u64,
    /// Start a new JSONL file after this many seconds (0: never).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    rotate_secs: u64,
    /// Also write every packet to this pcap file, as a ring: past --pcap-mb it becomes
    /// FILE.1 (FILE.1 becomes FILE.2, ...), and the oldest beyond --pcap-files is deleted.
    #[arg(long, value_name = "FILE")]
    write_pcap: Option<PathBuf>,
    /// Size of one file of the pcap ring, in megabytes.
    #[arg(long, default_value_t = 100, value_name = "MB")]
    pcap_mb: u64,
    /// Files kept in the pcap ring (the one being written included).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pcap_files: u32,
    /// Seconds between summaries.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    interval: f64,
    /// Serve the live view over HTTPS here (a port alone binds loopback: `8443`, `:8443`).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    serve: Option<String>,
    /// The HTTPS server's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The HTTPS server's private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Require clients to present a certificate signed by this CA (PEM).
    #[arg(long, value_name = "FILE", requires = "serve")]
    client_ca: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// No colour in the final report.
    #[arg(long)]
    no_color: bool,
    /// Width of the final report's tables.
    #[arg(long, value_name = "COLS")]
    width: Option<u16>,
}

/// The JSON Lines output, rotated by size or age; every file is closed whole.
struct Jsonl {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    opened: Instant,
    rotate_bytes: u64,
    rotate_every: Option<Duration>,
    /// Closed files so far.
    closed: u32,
}

impl Jsonl {
    fn create(path: &Path, rotate_bytes: u64, rotate_every: Option<Duration>) -> io::Result<Jsonl> {
        Ok(Jsonl {
            path: path.to_path_buf(),
            out: BufWriter::new(File::create(path)?),
            written: 0,
            opened: Instant::now(),
            rotate_bytes,
            rotate_every,
            closed: 0,
        })
    }

    fn write(&mut self, rec: &FlowRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.written += line.len() as u64;
        if self.rotate_bytes > 0 && self.written >= self.rotate_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Rotates when the current file is old enough (called on the summary timer).
    fn tick(&mut self) -> io::Result<()> {
        if self.written > 0
            && self
                .rotate_every
                .is_some_and(|d| self.opened.elapsed() >= d)
        {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        self.closed += 1;
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{}", self.closed));
        std::fs::rename(&self.path, PathBuf::from(name))?;
        self.out = BufWriter::new(File::create(&self.path)?);
        self.written = 0;
        self.opened = Instant::now();
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

/// The packets as they came, in a ring of pcap files (microsecond timestamps, one link type:
/// the first packet's).
struct PcapRing {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    link_type: Option<u16>,
    written: u64,
    max_bytes: u64,
    files: u32,
    /// Packets not kept because their link type is not the ring's.
    other_link: u64,
}

impl PcapRing {
    fn new(path: &Path, max_bytes: u64, files: u32) -> PcapRing {
        PcapRing {
            path: path.to_path_buf(),
            out: None,
            link_type: None,
            written: 0,
            max_bytes: max_bytes.max(1 << 16),
            files: files.max(1),
            other_link: 0,
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn open(&mut self, link_type: u16) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(&self.path)?);
        let header = write::pcap_header(&PcapOptions::link(link_type));
        out.write_all(&header)?;
        self.written = header.len() as u64;
        self.out = Some(out);
        Ok(())
    }

    fn write(&mut self, link_type: u16, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let lt = *self.link_type.get_or_insert(link_type);
        if lt != link_type {
            // One link type per pcap file: packets of another are counted, not kept.
            self.other_link += 1;
            return Ok(());
        }
        if self.out.is_none() {
            self.open(lt)?;
        }
        if self.written >= self.max_bytes {
            self.rotate()?;
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let o = PcapOptions::link(lt);
        out.write_all(&write::record_header(
            &o,
            ts_ns,
            caplen,
            orig_len.max(caplen),
        ))?;
        out.write_all(data)?;
        self.written += 16 + data.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close()?;
        // FILE.(n-1) is the oldest kept; shift every file one place.
        let _ = std::fs::remove_file(self.numbered(self.files.saturating_sub(1).max(1)));
        for n in (1..self.files.saturating_sub(1)).rev() {
            let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
        }
        if self.files > 1 {
            std::fs::rename(&self.path, self.numbered(1))?;
        }
        let lt = self.link_type.unwrap_or(1);
        self.open(lt)
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(mut out) = self.out.take() {
            out.flush()?;
            out.get_ref().sync_all()?;
        }
        Ok(())
    }
}

/// What the summaries count.
#[derive(Default)]
struct Tally {
    flows: u64,
    documented: u64,
    undocumented: u64,
    labels: BTreeMap<String, u64>,
    findings: BTreeMap<&'static str, u64>,
    last_undocumented: Option<String>,
}

/// Where ended flows go: the final report, the summaries' counts, the JSONL file.
struct Outputs<'a> {
    rf: Reference<'a>,
    report: TableReport,
    tally: Tally,
    jsonl: Option<Jsonl>,
    /// The first write error, naming its file.
    write_err: Option<String>,
    /// The HTTPS view's state, when serving.
    shared: Option<Arc<Mutex<Shared>>>,
}

impl Outputs<'_> {
    fn add(&mut self, lf: LabelledFlow) {
        let (rf, t) = (self.rf, &mut self.tally);
        self.report.add_in(rf.inventory, &lf);
        t.flows += 1;
        if lf.class.documented() {
            t.documented += 1;
            if let Some(&r) = lf.class.matches.first() {
                let row = rf.catalogue.row(r);
                *t.labels
                    .entry(format!("{} {}", row.id, row.label))
                    .or_default() += 1;
            }
        } else {
            t.undocumented += 1;
            let f = &lf.flow;
            let (i, r) = (
                f.key.endpoint(lf.class.initiator),
                f.key.endpoint(lf.class.initiator.other()),
            );
            t.last_undocumented = Some(format!(
                "{} -> {} {}/{}",
                flowdoc_report::host_label(rf.inventory, i.ip(f.key.v6)),
                flowdoc_report::host_label(rf.inventory, r.ip(f.key.v6)),
                r.port,
                f.key.proto.as_str()
            ));
        }
        for fd in &lf.class.findings {
            *t.findings.entry(fd.code()).or_default() += 1;
        }
        if self.jsonl.is_none() && self.shared.is_none() {
            return;
        }
        let rec = FlowRecord::new(rf, &lf);
        if let (Some(j), None) = (&mut self.jsonl, &self.write_err) {
            if let Err(e) = j.write(&rec) {
                self.write_err = Some(format!("{}: write error: {e}", j.path.display()));
            }
        }
        if let Some(sh) = &self.shared {
            if let (Ok(mut st), Ok(json)) = (sh.lock(), serde_json::to_string(&rec)) {
                if st.flows.len() >= RECENT_FLOWS {
                    st.flows.pop_front();
                }
                st.flows.push_back(json);
            }
        }
    }
}

pub(crate) fn live(args: LiveArgs) -> Result<u8, Failure> {
    if args.list_interfaces {
        return list_interfaces();
    }
    let cat = load_catalogue(&args.common.catalogue)?;
    let inv = load_inventory(&args.common.inventory)?;
    let rf = Reference {
        catalogue: &cat,
        inventory: inv.as_ref(),
    };
    let poll = Duration::from_millis(100);
    let mut source = Source::open(&args, poll)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| Failure {
            code: 2,
            message: format!("cannot handle signals: {e}"),
        })?;
    }
    let jsonl = match &args.jsonl {
        Some(p) => Some(
            Jsonl::create(
                p,
                args.rotate_kb.saturating_mul(1 << 10),
                (args.rotate_secs > 0).then(|| Duration::from_secs(args.rotate_secs)),
            )
            .map_err(|e| Failure {
                code: 2,
                message: format!("{}: cannot create: {e}", p.display()),
            })?,
        ),
        None => None,
    };
    let opts = Options {
        flow: flowdoc_flow::FlowConfig {
            // Closed connections are written out two seconds after their last packet.
            closed_linger_ns: Some(2_000_000_000),
            ..args.common.flow_config()
        },
        ..Options::default()
    };
    let shared = match &args.serve {
        Some(addr) => {
            let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
                return Err(Failure {
                    code: 2,
                    message: "--serve needs --tls-cert and --tls-key".into(),
                });
            };
            let shared = Arc::new(Mutex::new(Shared {
                summary: "{}".into(),
                ..Shared::default()
            }));
            let cfg = ServeConfig {
                addr: addr.clone(),
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.client_ca.clone(),
            };
            let at = flowdoc_serve::start(&cfg, Arc::clone(&shared))
                .map_err(|message| Failure { code: 2, message })?;
            eprintln!(
                "flowdoc: serving https://{at}/{}",
                if cfg.client_ca.is_some() {
                    " (client certificate required)"
                } else {
                    ""
                }
            );
            Some(shared)
        }
        None => None,
    };
    let mut ring = args
        .write_pcap
        .as_deref()
        .map(|p| PcapRing::new(p, args.pcap_mb.saturating_mul(1 << 20), args.pcap_files));
    let mut engine = Engine::new(rf, opts);
    let mut outs = Outputs {
        rf,
        report: TableReport::new(),
        tally: Tally::default(),
        jsonl,
        write_err: None,
        shared,
    };

    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.interval.max(0.05));
    let mut next_summary = started + interval;
    let mut view = View::new(io::stdout().is_terminal());
    let mut packets: u64 = 0;
    let mut last_packets: u64 = 0;
    let mut last_ts: Option<(i64, Instant)> = None;
    let mut read_error = None;
    loop {
        if stop.load(Ordering::Relaxed)
            || args
                .duration
                .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
            || args.count.is_some_and(|c| packets >= c)
        {
            break;
        }
        match source.next() {
            Ok(Event::Packet { link_type, frame }) => {
                packets += 1;
                if let Some(r) = &mut ring {
                    if let Err(e) = r.write(link_type, frame.ts_ns, frame.data, frame.orig_len) {
                        outs.write_err.get_or_insert_with(|| {
                            format!("{}: write error: {e}", r.path.display())
                        });
                    }
                }
                last_ts = Some((frame.ts_ns, Instant::now()));
                engine.push(
                    frame.ts_ns,
                    link_type,
                    frame.data,
                    frame.orig_len,
                    &mut |lf| outs.add(lf),
                );
            }
            Ok(Event::Idle) => {}
            Ok(Event::End) => break,
            Err(e) => {
                read_error = Some(e.to_string());
                break;
            }
        }
        if Instant::now() >= next_summary {
            // Capture time goes on while the wire is quiet: idle flows end on time.
            if let Some((ts, at)) = last_ts {
                let now =
                    ts.saturating_add(i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX));
                engine.expire(now, &mut |lf| outs.add(lf));
            }
            if let Some(j) = &mut outs.jsonl {
                if let Err(e) = j.tick() {
                    outs.write_err
                        .get_or_insert_with(|| format!("{}: write error: {e}", j.path.display()));
                }
            }
            let secs = interval.as_secs_f64();
            let mut open_labels: BTreeMap<String, u64> = BTreeMap::new();
            let mut open_undocumented = 0;
            engine.for_each_open(&mut |_, class| match class.matches.first() {
                Some(&r) => {
                    let row = cat.row(r);
                    *open_labels
                        .entry(format!("{} {}", row.id, row.label))
                        .or_default() += 1;
                }
                None => open_undocumented += 1,
            });
            let status = Status {
                open_labels,
                open_undocumented,
                elapsed: started.elapsed(),
                packets,
                pps: (packets - last_packets) as f64 / secs,
                open: engine.open_flows(),
                tally: &outs.tally,
                pcap: source.counters(),
                evicted: engine.table_stats().evicted,
                skipped: engine.summary().skipped_total(),
            };
            view.show(&status);
            if let Some(sh) = &outs.shared {
                if let Ok(mut st) = sh.lock() {
                    st.summary = status.json().to_string();
                    st.metrics = status.metrics();
                }
            }
            last_packets = packets;
            next_summary = Instant::now() + interval;
        }
    }
    // The clean stop: every open flow ends and is written, the files close whole.
    let mut summary = engine.finish(&mut |lf| outs.add(lf));
    let Outputs {
        report,
        tally,
        jsonl,
        mut write_err,
        ..
    } = outs;
    summary.flows = tally.flows;
    summary.documented = tally.documented;
    summary.undocumented = tally.undocumented;
    view.clear();
    if let Some(mut r) = ring {
        if r.other_link > 0 {
            eprintln!(
                "flowdoc: {}: {} packets of another link type than the first were not kept",
                r.path.display(),
                r.other_link
            );
        }
        if let Err(e) = r.close() {
            write_err.get_or_insert_with(|| format!("{}: write error: {e}", r.path.display()));
        }
    }
    let pcap = source.counters();
    if let Some(j) = jsonl {
        let path = j.path.clone();
        if let Err(e) = j.finish() {
            write_err.get_or_insert_with(|| format!("{}: write error: {e}", path.display()));
        }
    }
    if let Some(message) = write_err {
        return Err(Failure { code: 2, message });
    }
    let term = io::stdout().is_terminal();
    let ro = RenderOptions {
        color: color_wanted(args.no_color, term),
        width: args.width.or(if term { None } else { Some(120) }),
        max_undocumented: 50,
    };
    let mut out = io::stdout().lock();
    let text = report.render(&cat, &summary, &ro);
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if let Some(c) = pcap {
        eprintln!(
            "flowdoc: libpcap received {} packets, dropped {} (buffer full), {} by the interface",
            c.received, c.dropped, c.if_dropped
        );
    }
    if let Some(e) = read_error {
        eprintln!("flowdoc: {e}");
        return Ok(3);
    }
    Ok(0)
}

/// Where packets come from.
enum Source {
    Replay(Box<Replay>),
    #[cfg(feature = "live")]
    Live(flowdoc_live::Live),
}

impl Source {
    fn open(args: &LiveArgs, poll: Duration) -> Result<Source, Failure> {
        let fail = |message: String| Failure { code: 2, message };
        if let Some(p) = &args.replay {
            return Replay::open(p, args.speed, poll)
                .map(|r| Source::Replay(Box::new(r)))
                .map_err(|e| fail(e.to_string()));
        }
        let Some(iface) = &args.interface else {
            return Err(fail("give an interface (-i IFACE) or --replay FILE".into()));
        };
        open_interface(args, iface, poll)
    }

    fn next(&mut self) -> Result<Event<'_>, flowdoc_live::LiveError> {
        match self {
            Source::Replay(r) => r.next_event(),
            #[cfg(feature = "live")]
            Source::Live(l) => l.next_event(),
        }
    }

    /// libpcap's counters (none for a replay).
    fn counters(&mut self) -> Option<Counters> {
        match self {
            Source::Replay(_) => None,
            #[cfg(feature = "live")]
            Source::Live(l) => Some(l.counters()),
        }
    }
}

#[cfg(feature = "live")]
fn open_interface(args: &LiveArgs, iface: &str, poll: Duration) -> Result<Source, Failure> {
    let cfg = flowdoc_live::LiveConfig {
        interface: iface.to_string(),
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        poll,
        // At most 2047 MiB: fits libpcap's int.
        buffer_bytes: i32::try_from(u64::from(args.buffer_mb) << 20).unwrap_or(i32::MAX),
    };
    flowdoc_live::Live::open(&cfg)
        .map(Source::Live)
        .map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })
}

#[cfg(not(feature = "live"))]
fn open_interface(_: &LiveArgs, iface: &str, _: Duration) -> Result<Source, Failure> {
    Err(Failure {
        code: 2,
        message: format!(
            "{iface}: this flowdoc was built without live capture; build it with `--features live` (needs libpcap-dev), or use --replay FILE"
        ),
    })
}

#[cfg(feature = "live")]
fn list_interfaces() -> Result<u8, Failure> {
    let list = flowdoc_live::interfaces().map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })?;
    for i in list {
        println!(
            "{}\t{}\t{}",
            i.name,
            i.addresses.join(","),
            i.description.unwrap_or_default()
        );
    }
    Ok(0)
}

#[cfg(not(feature = "live"))]
fn list_interfaces() -> Result<u8, Failure> {
    Err(Failure {
        code: 2,
        message: "this flowdoc was built without live capture; build it with `--features live` (needs libpcap-dev)".into(),
    })
}

struct Status<'a> {
    /// Open flows by the first guide row that documents them ("talking now").
    open_labels: BTreeMap<String, u64>,
    open_undocumented: u64,
    elapsed: Duration,
    packets: u64,
    pps: f64,
    open: usize,
    tally: &'a Tally,
    pcap: Option<Counters>,
    evicted: u64,
    skipped: u64,
}

impl Status<'_> {
    /// The summary as JSON: the JSON lines and the HTTPS view's `/api/summary`.
    fn json(&self) -> serde_json::Value {
        let t = self.tally;
        let pcap = self.pcap.unwrap_or_default();
        serde_json::json!({
            "elapsed_s": self.elapsed.as_secs_f64(),
            "packets": self.packets,
            "packets_per_s": self.pps,
            "flows_open": self.open,
            "open_labels": self.open_labels,
            "open_undocumented": self.open_undocumented,
            "flows_ended": t.flows,
            "documented": t.documented,
            "undocumented": t.undocumented,
            "labels": t.labels,
            "findings": t.findings,
            "pcap": {"received": pcap.received, "dropped": pcap.dropped, "if_dropped": pcap.if_dropped},
            "evicted": self.evicted,
            "skipped": self.skipped,
        })
    }

    /// Prometheus exposition text.
    fn metrics(&self) -> String {
        let t = self.tally;
        let pcap = self.pcap.unwrap_or_default();
        let mut m = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, values: &[(String, u64)]| {
            m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in values {
                m.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        metric(
            "flowdoc_packets_total",
            "counter",
            "Packets captured.",
            &[(String::new(), self.packets)],
        );
        metric(
            "flowdoc_flows_open",
            "gauge",
            "Flows in the flow table.",
            &[(String::new(), self.open as u64)],
        );
        metric(
            "flowdoc_flows_ended_total",
            "counter",
            "Flows ended, by status.",
            &[
                ("{status=\"documented\"}".into(), t.documented),
                ("{status=\"undocumented\"}".into(), t.undocumented),
            ],
        );
        let findings: Vec<(String, u64)> = t
            .findings
            .iter()
            .map(|(c, n)| (format!("{{code=\"{c}\"}}"), *n))
            .collect();
        metric(
            "flowdoc_findings_total",
            "counter",
            "Ended flows with each finding.",
            &findings,
        );
        metric(
            "flowdoc_pcap_dropped_total",
            "counter",
            "Packets libpcap dropped (buffer full).",
            &[(String::new(), pcap.dropped)],
        );
        metric(
            "flowdoc_pcap_if_dropped_total",
            "counter",
            "Packets the interface dropped.",
            &[(String::new(), pcap.if_dropped)],
        );
        metric(
            "flowdoc_flows_evicted_total",
            "counter",
            "Flows evicted from a full flow table.",
            &[(String::new(), self.evicted)],
        );
        metric(
            "flowdoc_packets_skipped_total",
            "counter",
            "Packets that could not be put in a flow.",
            &[(String::new(), self.skipped)],
        );
        m
    }
}

/// The five busiest labels, "T22.1 XCP client access (XMPP) 12, ...".
fn top_of(m: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(5)
        .map(|(l, n)| format!("{l} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The periodic summary: a block redrawn in place on a terminal, JSON lines otherwise.
struct View {
    terminal: bool,
    lines: usize,
}

impl View {
    fn new(terminal: bool) -> View {
        View { terminal, lines: 0 }
    }

    fn show(&mut self, s: &Status<'_>) {
        let t = s.tally;
        let mut top: Vec<(&String, &u64)> = t.labels.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        top.truncate(5);
        let pcap = s.pcap.unwrap_or_default();
        let mut out = io::stdout().lock();
        if self.terminal {
            let mut block = vec![
                format!(
                    "flowdoc live  {:>6.0}s  packets {}  ({:.0}/s)  flows open {}  ended {}: {} documented, {} undocumented",
                    s.elapsed.as_secs_f64(),
                    s.packets,
                    s.pps,
                    s.open,
                    t.flows,
                    t.documented,
                    t.undocumented
                ),
                format!(
                    "  drops: libpcap {} (interface {}), flow table evictions {}, skipped packets {}",
                    pcap.dropped, pcap.if_dropped, s.evicted, s.skipped
                ),
                format!(
                    "  talking now: {} undocumented, {}",
                    s.open_undocumented,
                    top_of(&s.open_labels)
                ),
                format!(
                    "  ended, by label: {}",
                    top.iter()
                        .map(|(l, n)| format!("{l} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "  findings: {}",
                    t.findings
                        .iter()
                        .map(|(c, n)| format!("{c} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ];
            if let Some(u) = &t.last_undocumented {
                block.push(format!(
                    "  last undocumented: {}",
                    flowdoc_report::escape(u)
                ));
            }
            let mut text = String::new();
            if self.lines > 0 {
                text.push_str(&format!("\x1b[{}A\x1b[J", self.lines));
            }
            for l in &block {
                text.push_str(l);
                text.push('\n');
            }
            self.lines = block.len();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        } else {
            let _ = writeln!(out, "{}", s.json()).and_then(|_| out.flush());
        }
    }

    /// Removes the block before the final report.
    fn clear(&mut self) {
        if self.terminal && self.lines > 0 {
            let mut out = io::stdout().lock();
            let _ = write!(out, "\x1b[{}A\x1b[J", self.lines).and_then(|_| out.flush());
            self.lines = 0;
        }
    }
}

//! `flowdoc`: label the flows of a capture with the Cisco IM and Presence port guide.
//!
//! This binary only wires the crates together: arguments, colour, output files, exit codes
//! and error printing. Exit codes: 0 done; 1 `--fail-on` matched; 2 usage error or input
//! that could not be read; 3 done, but some input ended early or was corrupt.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod live;
use flowdoc_capture::{expand_inputs, ReadMode};
use flowdoc_catalogue::{Catalogue, CatalogueError, SourcePort};
use flowdoc_inventory::Inventory;
use flowdoc_pipeline::{analyze_files_with, LabelledFlow, Options, Reference, Summary};
use flowdoc_report::compliance::sha256_file;
use flowdoc_report::policy::{Check, PolicyFormat};
use flowdoc_report::rules::RuleFormat;
use flowdoc_report::{
    Compliance, ComplianceReport, CsvWriter, FlowRecord, JsonLines, RenderOptions, TableReport,
};

#[derive(Parser, Debug)]
#[command(
    name = "flowdoc",
    version,
    about = "Label the flows of packet captures with the Cisco IM and Presence port guide",
    after_help = "Exit codes: 0 done; 1 --fail-on matched (analyze) or documented flows the policy \
                  would block (check); 2 usage error or unreadable input; 3 done, but an input ended early or was corrupt (what was read is reported)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct CatalogueArgs {
    /// Use this catalogue file instead of the shipped one.
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// Apply site changes from this overlay file (repeatable), e.g. LDAP on 3269.
    #[arg(long, value_name = "FILE")]
    overlay: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Label every flow of one or more captures (files or folders; .gz read transparently).
    Analyze(AnalyzeArgs),
    /// Show the port catalogue, optionally filtered.
    Catalogue(CatalogueCmd),
    /// Write the compliance report of captures: HTML (self-contained), Markdown and JSON.
    Report(ReportArgs),
    /// Write firewall allow rules for the documented flows of captures, citing the guide.
    Rules(RulesArgs),
    /// Check a firewall policy against captures: documented flows it would block (exit 1),
    /// rules no flow used, undocumented flows it lets through.
    Check(CheckArgs),
    /// Label traffic as it happens: an interface (libpcap; `live` feature) or a capture file
    /// at its recorded pace; flows to --jsonl as they end; Ctrl-C prints the final report.
    Live(live::LiveArgs),
}

/// The reference and the flow table's settings: what every command that labels flows shares.
#[derive(clap::Args, Debug)]
struct CommonArgs {
    #[command(flatten)]
    catalogue: CatalogueArgs,
    /// The site's hosts and networks with their roles (TOML): names in every output, and the
    /// role-mismatch finding.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// Seconds without a packet after which a flow ends (0: never).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,
    /// Keep one flow per 5-tuple even when a new SYN follows FIN or RST.
    #[arg(long)]
    no_split_on_reuse: bool,
    /// Seconds after which a flow still open is reported and continued as a new one
    /// (end_reason "active-timeout"; 0: never). For live capture of connections that last days.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    active_timeout: u64,
    /// Most flows held at once; older ones are evicted (and still reported).
    #[arg(long, default_value_t = flowdoc_flow::DEFAULT_MAX_FLOWS, value_name = "N")]
    max_flows: usize,
    /// Bytes of each direction of a flow kept to identify its protocol (0: no payload checks).
    #[arg(long, default_value_t = flowdoc_flow::DEFAULT_PAYLOAD_BYTES, value_name = "BYTES")]
    payload_bytes: u32,
}

/// A number of seconds from the command line as nanoseconds; 0 means never.
fn secs_ns(secs: u64) -> Option<i64> {
    (secs > 0).then(|| i64::try_from(secs).map_or(i64::MAX, |s| s.saturating_mul(1_000_000_000)))
}

impl CommonArgs {
    fn flow_config(&self) -> flowdoc_flow::FlowConfig {
        flowdoc_flow::FlowConfig {
            idle_timeout_ns: secs_ns(self.idle_timeout),
            split_on_reuse: !self.no_split_on_reuse,
            max_flows: self.max_flows,
            payload_bytes: self.payload_bytes,
            closed_linger_ns: None,
            active_timeout_ns: secs_ns(self.active_timeout),
            ..flowdoc_flow::FlowConfig::default()
        }
    }
}

/// What every command that reads capture files shares.
#[derive(clap::Args, Debug)]
struct RunArgs {
    #[arg(required = true, value_name = "CAPTURE")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Threads (default: one per core; 1: everything on one thread). Each file is read by
    /// all of them at once (gzip and pipes: decompressed by one, dissected by all) and flows
    /// are sharded over them by a symmetric hash: the same flows in the same order as one
    /// thread.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Read files through a memory map instead of the default buffered reads.
    #[arg(long)]
    mmap: bool,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    #[command(flatten)]
    run: RunArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the results here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 1 when any flow of this kind is found.
    #[arg(long, value_enum, value_name = "WHAT")]
    fail_on: Vec<FailOn>,
    /// No colour, even on a terminal (NO_COLOR is honoured too).
    #[arg(long)]
    no_color: bool,
    /// Table width in columns (default: the terminal's, or 120).
    #[arg(long, value_name = "COLS")]
    width: Option<u16>,
    /// Most undocumented rows in the table report.
    #[arg(long, default_value_t = 50, value_name = "N")]
    max_undocumented: usize,
}

#[derive(clap::Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Folder for report.html, report.md and report.json (created if missing).
    #[arg(long, short, value_name = "DIR", default_value = "flowdoc-report")]
    output: PathBuf,
}

#[derive(clap::Args, Debug)]
struct RulesArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The firewall's language.
    #[arg(long, value_enum)]
    format: RulesFormat,
    /// Write the rules here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The firewall's rules now: the CSV of `flowdoc rules`, or the nftables or ASA
    /// access-list subset it writes.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The policy's format (default: .csv by name, ASA when it has access-list lines, else
    /// nftables).
    #[arg(long, value_enum, value_name = "FORMAT")]
    policy_format: Option<PolicyFmt>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyFmt {
    Csv,
    Nftables,
    Asa,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RulesFormat {
    Asa,
    Ios,
    Nftables,
    Iptables,
    Csv,
}

#[derive(clap::Args, Debug)]
struct CatalogueCmd {
    #[command(flatten)]
    catalogue: CatalogueArgs,
    /// Only rows documenting this port.
    #[arg(long)]
    port: Option<u16>,
    /// Only rows of this table of the guide.
    #[arg(long)]
    table: Option<u8>,
    /// Only rows whose label, roles, protocol or remark contain this text (any case).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    #[arg(long, value_enum, default_value_t = CatFormat::Table)]
    format: CatFormat,
    #[arg(long, value_name = "COLS")]
    width: Option<u16>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum CatFormat {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FailOn {
    Undocumented,
    Finding,
}

/// An error for the user: printed once, with the exit code it deserves.
struct Failure {
    code: u8,
    message: String,
}

impl From<CatalogueError> for Failure {
    fn from(e: CatalogueError) -> Self {
        Failure {
            code: 2,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze(args),
        Command::Catalogue(args) => catalogue(args),
        Command::Report(args) => report(args),
        Command::Rules(args) => rules(args),
        Command::Check(args) => check(args),
        Command::Live(args) => live::live(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("flowdoc: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

fn load_catalogue(args: &CatalogueArgs) -> Result<Catalogue, Failure> {
    let mut cat = match &args.catalogue {
        Some(p) => Catalogue::load(p)?,
        None => Catalogue::embedded(),
    };
    for o in &args.overlay {
        cat.apply_overlay_file(o)?;
    }
    Ok(cat)
}

fn load_inventory(path: &Option<PathBuf>) -> Result<Option<Inventory>, Failure> {
    path.as_deref()
        .map(Inventory::load)
        .transpose()
        .map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })
}

fn color_wanted(no_color: bool, to_terminal: bool) -> bool {
    !no_color && to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Where results go: stdout, a regular file written whole through a temporary name, or
/// something that is not a regular file (a device such as /dev/null, a FIFO) written as it is:
/// renaming over it would replace it. The sink's buffer is its own, so that a line can be made
/// straight into it ([`Sink::put`]) instead of in a buffer of its own and copied in.
struct Sink {
    buf: Vec<u8>,
    to: To,
}

enum To {
    Stdout(io::Stdout),
    Device(std::fs::File),
    File {
        tmp: PathBuf,
        dest: PathBuf,
        out: std::fs::File,
    },
}

/// The output buffer of every sink: a JSON line is about 700 bytes, and fewer, larger writes
/// cost less (8 KiB measured 3% slower on `-o FILE`).
const SINK_BUFFER: usize = 1 << 16;

impl Sink {
    fn open(output: &Option<PathBuf>) -> Result<Sink, Failure> {
        let to = match output {
            None => To::Stdout(io::stdout()),
            Some(dest) if std::fs::metadata(dest).is_ok_and(|m| !m.file_type().is_file()) => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .map_err(|e| Failure {
                        code: 2,
                        message: format!("{}: cannot open: {e}", dest.display()),
                    })?;
                To::Device(f)
            }
            Some(dest) => {
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = dest.with_file_name(format!(".{name}.flowdoc-tmp"));
                let f = std::fs::File::create(&tmp).map_err(|e| Failure {
                    code: 2,
                    message: format!("{}: cannot create: {e}", tmp.display()),
                })?;
                To::File {
                    tmp,
                    dest: dest.clone(),
                    out: f,
                }
            }
        };
        Ok(Sink {
            // Room for the last line past the mark.
            buf: Vec::with_capacity(SINK_BUFFER + 4096),
            to,
        })
    }

    /// Appends what `make` writes (a whole line) to the output, and writes the buffer out
    /// once it holds [`SINK_BUFFER`] bytes.
    fn put(&mut self, make: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        make(&mut self.buf);
        if self.buf.len() >= SINK_BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the buffer out whole and empties it.
    fn write_out(&mut self) -> io::Result<()> {
        let r = self.to.writer().write_all(&self.buf);
        self.buf.clear();
        r
    }

    /// Leaves any earlier file at the destination as it was.
    fn abandon(self) {
        if let To::File { tmp, out, .. } = self.to {
            drop(out);
            let _ = std::fs::remove_file(tmp);
        }
    }

    fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        if let To::File { tmp, dest, out } = self.to {
            out.sync_all()?;
            std::fs::rename(&tmp, &dest)?;
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put(|b| b.extend_from_slice(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.write_out()?;
        }
        self.to.writer().flush()
    }
}

impl To {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            To::Stdout(o) => o,
            To::Device(o) | To::File { out: o, .. } => o,
        }
    }
}

fn write_failure(e: io::Error, output: &Option<PathBuf>) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // `flowdoc analyze x.pcap | head` is a quiet success.
        return Failure {
            code: 0,
            message: String::new(),
        };
    }
    let place = output
        .as_ref()
        .map_or("stdout".to_string(), |p| p.display().to_string());
    Failure {
        code: 2,
        message: format!("{place}: write error: {e}"),
    }
}

/// Captures, reference and options, ready to run.
struct Run {
    cat: Catalogue,
    inv: Option<Inventory>,
    files: Vec<PathBuf>,
    opts: Options,
    /// Threads of the analysis.
    threads: usize,
    /// Whether work beside the analysis (hashing the captures, writing files) may take
    /// threads of its own: unless one thread was asked for, on a machine of several cores.
    side_threads: bool,
}

impl Run {
    fn prepare(args: &RunArgs) -> Result<Run, Failure> {
        let cat = load_catalogue(&args.common.catalogue)?;
        let inv = load_inventory(&args.common.inventory)?;
        let files = expand_inputs(&args.inputs).map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })?;
        if files.is_empty() {
            return Err(Failure {
                code: 2,
                message: "no capture files found in the given folders".into(),
            });
        }
        let opts = Options {
            read_mode: if args.mmap {
                ReadMode::Mmap
            } else {
                ReadMode::Buffered
            },
            flow: args.common.flow_config(),
            ..Options::default()
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let asked = args.threads.filter(|&n| n > 0);
        Ok(Run {
            cat,
            inv,
            files,
            opts,
            threads: asked.unwrap_or(cores),
            side_threads: asked.unwrap_or(cores) > 1 && cores > 1,
        })
    }

    fn reference(&self) -> Reference<'_> {
        Reference {
            catalogue: &self.cat,
            inventory: self.inv.as_ref(),
        }
    }

    /// The one analysis every command runs: each labelled flow goes to `on_flow`.
    fn execute(&self, on_flow: &mut dyn FnMut(&LabelledFlow)) -> Summary {
        self.execute_with(&|_| (), &mut |lf, &()| on_flow(lf))
    }

    /// [`Run::execute`] with a `render` step (an output line, say) done by the thread that
    /// ended the flow, so that it is spread over the threads.
    fn execute_with<R: Send>(
        &self,
        render: &(dyn Fn(&LabelledFlow) -> R + Sync),
        on_flow: &mut dyn FnMut(&LabelledFlow, &R),
    ) -> Summary {
        let progress_on = io::stderr().is_terminal();
        let nfiles = self.files.len();
        let mut progress = |i: usize, pos: u64, len: u64| {
            if progress_on && len > (64 << 20) {
                let pct = pos.saturating_mul(100).checked_div(len).unwrap_or(100);
                eprint!(
                    "\rflowdoc: reading file {}/{}: {:3}%",
                    i + 1,
                    nfiles,
                    pct.min(100)
                );
                if pos >= len {
                    eprint!("\r\x1b[K");
                }
            }
        };
        analyze_files_with(
            self.reference(),
            &self.files,
            self.opts,
            self.threads,
            render,
            on_flow,
            &mut progress,
        )
    }
}

/// Errors and warnings about the inputs, after the results: unreadable files are a usage
/// error (2), inputs that ended early give 3.
fn input_outcome(summary: &Summary, format_is_table: bool) -> Result<u8, Failure> {
    for f in &summary.files {
        if let Some(e) = &f.error {
            eprintln!("flowdoc: {e}");
        }
        for &lt in f
            .link_types
            .iter()
            .filter(|&&lt| !flowdoc_dissect::link::is_supported(lt))
        {
            eprintln!(
                "flowdoc: {}: link type {lt} is not one flowdoc reads; its packets are counted as skipped (unknown-link-type-{lt})",
                f.path.display()
            );
        }
    }
    if !format_is_table && summary.skipped_total() > 0 {
        eprintln!(
            "flowdoc: {} packets skipped: {}",
            summary.skipped_total(),
            summary.skipped_text()
        );
    }
    if summary.table.evicted > 0 {
        eprintln!(
            "flowdoc: the flow table was full: {} flows were evicted early (end_reason \"evicted\"; raise --max-flows to keep more)",
            summary.table.evicted
        );
    }
    let unreadable = summary.files.iter().filter(|f| f.unreadable).count();
    if unreadable > 0 {
        return Err(Failure {
            code: 2,
            message: format!("{unreadable} input(s) could not be read"),
        });
    }
    if !summary.complete() {
        eprintln!("flowdoc: the input was not whole: the report covers what could be read");
        return Ok(3);
    }
    Ok(0)
}

/// A flow's output, made ahead of writing.
enum Rendered {
    Nothing,
    /// A JSON line or a CSV row, as the format wants.
    Line(Line),
}

/// A line made on a table's thread (several threads). Once written, the line comes back to
/// that thread to be dropped, and its buffer goes to the thread's pool for the next line: a
/// line of a few hundred bytes otherwise cost a `malloc` and a `free` under the arena's lock
/// (too large for glibc's per-thread cache), on the thread the end of input waits for.
struct Line(Vec<u8>);

/// Most buffers a thread keeps: a few blocks' worth.
const LINE_POOL: usize = 512;
/// Largest buffer kept (a line is about 750 bytes; a rare long one is not held on to).
const LINE_KEEP: usize = 4096;

thread_local! {
    static LINES: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Line {
    /// An empty line, from this thread's pool when it has one.
    fn take() -> Line {
        let pooled = LINES.try_with(|p| p.borrow_mut().pop()).ok().flatten();
        Line(pooled.unwrap_or_else(|| Vec::with_capacity(1024)))
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        // (At thread exit the pool may be gone already: the buffer is freed then.)
        let _ = LINES.try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < LINE_POOL && buf.capacity() <= LINE_KEEP {
                p.push(buf);
            }
        });
    }
}

/// A value on cache lines of its own (128 bytes: a line and the one the hardware fetches
/// with it), for what the other threads read for every flow while the writing thread changes
/// what is around it on its stack (the sink, the flags) for every flow. Sharing lines with
/// those, a line rendered on the other thread cost about 150 cycles more, and one rendered
/// on the writing thread about 100 more (rdtsc around the rendering, 2M capture, two
/// threads: 1,100 and 730 cycles a line, against 600 on one thread).
#[repr(align(128))]
struct Apart<T>(T);

/// Makes a flow's output line, on whichever thread the flow ended.
struct LineMaker<'c> {
    json: JsonLines<'c>,
    rf: Reference<'c>,
    format: Format,
}

impl LineMaker<'_> {
    /// The line, appended to `buf`.
    fn line(&self, lf: &LabelledFlow, buf: &mut Vec<u8>) {
        match self.format {
            Format::Table => {}
            Format::Json => self.json.line(lf, buf),
            Format::Csv => FlowRecord::csv_row_of(self.rf, lf, buf),
        }
    }

    /// The line, made on a thread that does not write: first into a buffer of this thread's
    /// that stays in its cache, then copied whole into a line from the pool. The pool's
    /// buffers were last read by the writing thread; filling one piece by piece, each of its
    /// cache lines stalled the rendering while this core took it back (a line cost about 950
    /// cycles; rendered here then copied, 600 and a copy: the other thread's lines at the end
    /// of input took 12.0-12.4 ms, then 11.3).
    fn elsewhere(&self, lf: &LabelledFlow) -> Rendered {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> =
                std::cell::RefCell::new(Vec::with_capacity(LINE_KEEP));
        }
        let mut line = Line::take();
        let copied = SCRATCH.try_with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            self.line(lf, &mut s);
            line.0.extend_from_slice(&s);
        });
        if copied.is_err() {
            // (At thread exit the scratch buffer may be gone: the line is made in place.)
            self.line(lf, &mut line.0);
        }
        Rendered::Line(line)
    }
}

fn analyze(args: AnalyzeArgs) -> Result<u8, Failure> {
    let AnalyzeArgs {
        run,
        format,
        output,
        fail_on,
        no_color,
        width,
        max_undocumented,
    } = args;
    let run = Run::prepare(&run)?;
    let rf = run.reference();
    let cat = &run.cat;
    let sink = Sink::open(&output)?;
    enum Out {
        Table(Box<TableReport>, Sink),
        Json(Sink),
        Csv(Box<CsvWriter<Sink>>),
    }
    let mut out = match format {
        Format::Table => Out::Table(Box::default(), sink),
        Format::Json => Out::Json(sink),
        Format::Csv => Out::Csv(Box::new(
            CsvWriter::new(sink).map_err(|e| write_failure(e, &output))?,
        )),
    };
    let mut write_err: Option<io::Error> = None;
    let mut undocumented = false;
    let mut finding = false;
    // The output record of a flow is made on the thread that ended it. On this thread (the
    // one that writes: every flow on one thread; on several, the merge's own table's and
    // those another table's thread left to it) it is made straight into the sink's buffer
    // just before it is written: no buffer of its own to allocate, fill cold, copy out and
    // free for every flow.
    let maker = Apart(LineMaker {
        json: JsonLines::new(rf),
        rf,
        format,
    });
    let maker = &maker.0;
    thread_local! {
        /// This thread writes the output.
        static WRITER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    WRITER.with(|w| w.set(true));
    // (One thread renders on this thread: the flag says so; the table has no line to make.)
    // `move`: what it uses is copied into it, apart, not read through this thread's stack.
    let render = Apart(move |lf: &LabelledFlow| {
        if format == Format::Table || WRITER.with(std::cell::Cell::get) {
            return Rendered::Nothing;
        }
        maker.elsewhere(lf)
    });
    let render = &render.0;
    let mut on_flow = |lf: &LabelledFlow, made: &Rendered| {
        undocumented |= !lf.class.documented();
        finding |= !lf.class.findings.is_empty();
        if write_err.is_some() {
            return;
        }
        let sink = match &mut out {
            Out::Table(report, _) => {
                report.add_in(rf.inventory, lf);
                return;
            }
            Out::Json(sink) => sink,
            Out::Csv(w) => w.get_mut(),
        };
        let r = match made {
            Rendered::Line(line) => sink.write_all(&line.0),
            Rendered::Nothing => sink.put(|b| maker.line(lf, b)),
        };
        if let Err(e) = r {
            write_err = Some(e);
        }
    };
    let summary = run.execute_with(render, &mut on_flow);
    if let Some(e) = write_err {
        return Err(write_failure(e, &output));
    }
    let sink = match out {
        Out::Table(report, mut sink) => {
            let term = output.is_none() && io::stdout().is_terminal();
            let ro = RenderOptions {
                color: color_wanted(no_color, term),
                width: width.or(if term { None } else { Some(120) }),
                max_undocumented,
            };
            sink.write_all(report.render(cat, &summary, &ro).as_bytes())
                .map_err(|e| write_failure(e, &output))?;
            sink
        }
        Out::Json(sink) => sink,
        Out::Csv(w) => w.into_inner().map_err(|e| write_failure(e, &output))?,
    };
    let unreadable = summary.files.iter().filter(|f| f.unreadable).count();
    if unreadable > 0 && output.is_some() {
        sink.abandon();
        for f in summary.files.iter().filter_map(|f| f.error.as_ref()) {
            eprintln!("flowdoc: {f}");
        }
        return Err(Failure {
            code: 2,
            message: format!(
                "{unreadable} input(s) could not be read; the output file was not written"
            ),
        });
    }
    sink.finish().map_err(|e| write_failure(e, &output))?;
    let code = input_outcome(&summary, format == Format::Table)?;
    if code != 0 {
        return Ok(code);
    }
    let fail = (fail_on.contains(&FailOn::Undocumented) && undocumented)
        || (fail_on.contains(&FailOn::Finding) && finding);
    Ok(u8::from(fail))
}

/// Runs the analysis into the compliance aggregate. Every capture's SHA-256 (the report's
/// provenance) is read on a thread of its own while the flows are analysed, unless one thread
/// was asked for: hashing a capture takes about twice as long as analysing it (SHA-256 at
/// about 2 GB/s here, against 4 GB/s for one thread's analysis), and one after the other made
/// `report` over five times as slow as `analyze`.
fn compliance(run: &Run, inventory: Option<&std::path::Path>) -> (ComplianceReport, Summary) {
    let mut c = Compliance::new(run.reference());
    std::thread::scope(|scope| {
        let hashing = run.side_threads.then(|| {
            scope.spawn(|| {
                run.files
                    .iter()
                    .map(|p| (p.clone(), sha256_file(p).ok()))
                    .collect::<std::collections::HashMap<_, _>>()
            })
        });
        let summary = run.execute(&mut |lf| c.add(lf));
        // (A hashing thread that panicked leaves the files to be hashed here.)
        let hashes = hashing.and_then(|h| h.join().ok()).unwrap_or_default();
        let report = c.finish_hashed(&summary, inventory, &mut |p| match hashes.get(p) {
            Some(h) => h.clone(),
            None => sha256_file(p).ok(),
        });
        (report, summary)
    })
}

/// Writes `text` to `dest` whole (through a temporary name), or not at all.
fn write_whole(dest: &std::path::Path, text: &str) -> Result<(), Failure> {
    write_whole_with(dest, &|sink| sink.write_all(text.as_bytes()))
}

/// Writes what `make` writes to `dest` whole (through a temporary name), or not at all.
fn write_whole_with(
    dest: &std::path::Path,
    make: &dyn Fn(&mut Sink) -> io::Result<()>,
) -> Result<(), Failure> {
    let mut sink = Sink::open(&Some(dest.to_path_buf()))?;
    let out = Some(dest.to_path_buf());
    if let Err(e) = make(&mut sink) {
        sink.abandon();
        return Err(write_failure(e, &out));
    }
    sink.finish().map_err(|e| write_failure(e, &out))
}

fn report(args: ReportArgs) -> Result<u8, Failure> {
    let run = Run::prepare(&args.run)?;
    let (report, summary) = compliance(&run, args.run.common.inventory.as_deref());
    if summary.files.iter().any(|f| f.unreadable) {
        return input_outcome(&summary, false);
    }
    std::fs::create_dir_all(&args.output).map_err(|e| Failure {
        code: 2,
        message: format!("{}: cannot create: {e}", args.output.display()),
    })?;
    // Each file is made and written (and synced) on a thread of its own, unless one thread was
    // asked for: on the 2M capture's 60 MB of reports, 345 ms one after the other. The JSON
    // is written as it is made.
    type Make<'r> = &'r (dyn Fn(&mut Sink) -> io::Result<()> + Sync);
    let files: [(&str, Make<'_>); 3] = [
        ("report.html", &|s| s.write_all(report.to_html().as_bytes())),
        ("report.md", &|s| {
            s.write_all(report.to_markdown().as_bytes())
        }),
        ("report.json", &|s| report.write_json(s)),
    ];
    let write = |(name, make): (&str, Make<'_>)| write_whole_with(&args.output.join(name), make);
    let written: Vec<Result<(), Failure>> = if run.side_threads {
        std::thread::scope(|scope| {
            let made: Vec<_> = files.map(|f| scope.spawn(move || write(f))).into();
            made.into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    } else {
        files.into_iter().map(write).collect()
    };
    written.into_iter().collect::<Result<(), Failure>>()?;
    eprintln!(
        "flowdoc: wrote {}/report.html, report.md and report.json: {} flows, {} undocumented, {} with findings",
        args.output.display(),
        report.verdict.flows,
        report.verdict.undocumented,
        report.verdict.findings.values().sum::<u64>()
    );
    input_outcome(&summary, false)
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    let name = args.policy.display().to_string();
    let text = std::fs::read_to_string(&args.policy).map_err(|e| Failure {
        code: 2,
        message: format!("{name}: cannot read: {e}"),
    })?;
    let format = match args.policy_format {
        Some(PolicyFmt::Csv) => PolicyFormat::Csv,
        Some(PolicyFmt::Nftables) => PolicyFormat::Nftables,
        Some(PolicyFmt::Asa) => PolicyFormat::Asa,
        None => PolicyFormat::guess(&name, &text),
    };
    let policy = flowdoc_report::policy::parse(&text, &name, format).map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })?;
    let run = Run::prepare(&args.run)?;
    let mut check = Check::new(run.reference(), policy);
    let summary = run.execute(&mut |lf| check.add(lf));
    let mut out = io::stdout().lock();
    out.write_all(check.render(&name, format).as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| write_failure(e, &None))?;
    let code = input_outcome(&summary, false)?;
    if code != 0 {
        return Ok(code);
    }
    Ok(u8::from(!check.blocked().is_empty()))
}

fn rules(args: RulesArgs) -> Result<u8, Failure> {
    let run = Run::prepare(&args.run)?;
    let (report, summary) = compliance(&run, args.run.common.inventory.as_deref());
    if summary.files.iter().any(|f| f.unreadable) {
        return input_outcome(&summary, false);
    }
    let format = match args.format {
        RulesFormat::Asa => RuleFormat::Asa,
        RulesFormat::Ios => RuleFormat::Ios,
        RulesFormat::Nftables => RuleFormat::Nftables,
        RulesFormat::Iptables => RuleFormat::Iptables,
        RulesFormat::Csv => RuleFormat::Csv,
    };
    let text = flowdoc_report::rules::render(&report, format);
    match &args.output {
        Some(p) => write_whole(p, &text)?,
        None => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| write_failure(e, &None))?;
        }
    }
    input_outcome(&summary, false)
}

fn catalogue(args: CatalogueCmd) -> Result<u8, Failure> {
    let CatalogueCmd {
        catalogue,
        port,
        table,
        search,
        format,
        width,
    } = args;
    let cat = load_catalogue(&catalogue)?;
    let needle = search.map(|s| s.to_lowercase());
    let rows: Vec<_> = cat
        .rows()
        .iter()
        .filter(|r| {
            port.is_none_or(|p| r.ports.contains(&p) || r.source_port == SourcePort::Fixed(p))
        })
        .filter(|r| table.is_none_or(|t| r.table == t))
        .filter(|r| {
            needle.as_ref().is_none_or(|n| {
                [
                    &r.label,
                    &r.from,
                    &r.to,
                    &r.protocol,
                    &r.remark,
                    &r.original.remark,
                    &r.id,
                ]
                .iter()
                .any(|s| s.to_lowercase().contains(n.as_str()))
            })
        })
        .collect();
    let mut out = io::BufWriter::new(io::stdout());
    let text = match format {
        CatFormat::Json => {
            let v = serde_json::json!({
                "version": cat.version(),
                "source": cat.source(),
                "tables": cat.tables(),
                "rows": rows,
            });
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        CatFormat::Table => {
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
                .force_no_tty()
                .set_header(vec![
                    "Id",
                    "Label",
                    "From -> To",
                    "Protocol",
                    "Transport",
                    "Port",
                    "Source",
                    "Notes",
                ]);
            let term = io::stdout().is_terminal();
            if let Some(w) = width.or((!term).then_some(140)) {
                t.set_width(w);
            }
            for r in &rows {
                let ports = if r.ports.is_empty() {
                    if r.configurable {
                        "configurable".to_string()
                    } else {
                        "-".to_string()
                    }
                } else {
                    let p: Vec<String> = r.ports.iter().map(|p| p.to_string()).collect();
                    p.join(", ")
                        + if r.configurable {
                            " (configurable)"
                        } else {
                            ""
                        }
                };
                let src = match r.source_port {
                    SourcePort::Ephemeral => "ephemeral".to_string(),
                    SourcePort::Bidirectional => "bidirectional".to_string(),
                    SourcePort::Fixed(p) => p.to_string(),
                };
                let tr: Vec<&str> = r.transports.iter().map(|t| t.as_str()).collect();
                let mut notes = Vec::new();
                if r.localhost_only {
                    notes.push("localhost only".to_string());
                }
                if let Some(n) = &r.note {
                    notes.push(n.clone());
                }
                if let Some(s) = &r.site {
                    notes.push(format!("site: {s}"));
                }
                let dir = if r.both_directions { "<->" } else { "->" };
                t.add_row(vec![
                    r.id.clone(),
                    r.label.clone(),
                    format!("{} {dir} {}", r.from, r.to),
                    r.protocol.clone(),
                    tr.join("/"),
                    ports,
                    src,
                    notes.join("; "),
                ]);
            }
            format!(
                "{t}\n{} of {} rows ({})\n",
                rows.len(),
                cat.rows().len(),
                cat.source()
            )
        }
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| write_failure(e, &None))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_line_leaves_its_buffer_to_the_next_line_of_its_thread() {
        // (Told apart by capacity: a freed buffer's address may well come back from malloc.)
        let mut a = Line::take();
        a.0.reserve(3000);
        a.0.extend_from_slice(b"{\"transport\":\"tcp\"}\n");
        let cap = a.0.capacity();
        drop(a);
        let b = Line::take();
        assert!(b.0.is_empty(), "a reused buffer starts empty");
        assert_eq!(b.0.capacity(), cap, "the buffer is reused");
        // An oversized buffer is freed, not kept.
        let mut big = Line::take();
        big.0.reserve(64 << 10);
        drop(big);
        assert_eq!(
            Line::take().0.capacity(),
            1024,
            "a new buffer, not the large one"
        );
        // Another thread has a pool of its own.
        let other = std::thread::spawn(|| Line::take().0.capacity())
            .join()
            .expect("thread");
        assert_eq!(other, 1024);
        drop(b);
    }
}

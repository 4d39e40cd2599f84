//! Capture files to borrowed packet records.
//!
//! [`CaptureReader`] reads pcap (microsecond, nanosecond, either byte order, the "modified"
//! variant) and pcapng (sections, several interfaces with their own link types and timestamp
//! resolutions; EPB, SPB and OPB; other blocks skipped), plain or gzip-compressed. Each
//! [`Record`] borrows its bytes from the reader's buffer: nothing is copied per packet. The
//! buffer is either a large reused read buffer (the default; memory stays flat whatever the
//! file's size) or a memory map ([`ReadMode::Mmap`]).
//!
//! It does not look inside packets: that is `flowdoc-dissect`'s job.
//!
//! ```no_run
//! use flowdoc_capture::{CaptureReader, ReadMode};
//! let mut r = CaptureReader::open("case.pcap".as_ref(), ReadMode::Buffered)?;
//! while let Some(rec) = r.next_record()? {
//!     println!("{} bytes, link type {}", rec.data.len(), rec.link_type);
//! }
//! # Ok::<(), flowdoc_capture::CaptureError>(())
//! ```

mod error;
mod inputs;
mod pcap;
mod pcapng;
mod split;
mod window;
pub mod write;

pub use error::CaptureError;
pub use inputs::expand_inputs;
pub use split::{PcapSplit, RangeWalk, Spans, Start, WalkState};

use std::path::{Path, PathBuf};
use window::Window;

/// How the file's bytes reach memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadMode {
    /// A large reused buffer filled by `read`: flat memory, faster on the machines measured.
    #[default]
    Buffered,
    /// A read-only memory map of the whole file (compressed files fall back to `Buffered`).
    Mmap,
}

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap {
        nanos: bool,
        big_endian: bool,
        modified: bool,
    },
    Pcapng,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcap { modified: true, .. } => "pcap (modified)",
            Format::Pcap { nanos: true, .. } => "pcap (ns)",
            Format::Pcap { .. } => "pcap",
            Format::Pcapng => "pcapng",
        }
    }
}

/// One captured packet, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// LINKTYPE_* value of the interface the packet was captured on.
    pub link_type: u16,
    /// Length of the packet on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
    /// 1-based number of this packet record in its file.
    pub number: u64,
}

/// Counts of what the reader passed over without failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// pcapng blocks of types flowdoc does not read (statistics, name resolution, custom, ...).
    pub skipped_blocks: u64,
    /// Packet blocks naming an interface that no Interface Description Block declared.
    pub unknown_interface: u64,
}

enum Parser {
    Pcap(pcap::State),
    Pcapng(pcapng::State),
}

/// Reads one capture file record by record.
pub struct CaptureReader {
    path: PathBuf,
    /// The path as errors print it, made once rather than per record.
    name: String,
    window: Window,
    parser: Parser,
    records: u64,
    stats: ReaderStats,
    /// The records of the last batch.
    batch: Vec<At>,
    /// An error met while filling a batch, handed out after the batch's records.
    deferred: Option<CaptureError>,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("format", &self.format())
            .field("records", &self.records)
            .finish()
    }
}

/// Whole records read ahead of a stream by [`CaptureReader::next_span`], for any thread to
/// walk with [`Spans`].
#[derive(Debug, Default)]
pub struct Span {
    /// Offset in the stream (decompressed) of the span's first byte, the buffer's first.
    pub offset: u64,
    /// Bytes in the span, from the buffer's start.
    pub len: usize,
    /// The state of the stream's blocks where the span begins.
    pub state: WalkState,
    /// Why reading stopped after the span's records: the error the serial reader gives
    /// after them, its record number counted from the stream's start.
    pub error: Option<CaptureError>,
    /// The stream ended with the span (cleanly or with `error`).
    pub ended: bool,
}

/// Where a packet record sits in the window, found without keeping a borrow.
#[derive(Debug)]
struct Found {
    ts_ns: i64,
    link_type: u16,
    orig_len: u32,
    data: std::ops::Range<usize>,
}

/// What a parser says about the bytes at the front of the window.
enum Step {
    /// A packet; consume `len` bytes.
    Packet(Found, usize),
    /// A block that holds no packet (header, interface, statistics...); consume `len` bytes.
    Skip(usize),
    /// The next unit needs this many bytes in all.
    Need(usize),
}

impl CaptureReader {
    /// Opens a capture file; `.gz` content is detected by its magic and decompressed on the fly.
    pub fn open(path: &Path, mode: ReadMode) -> Result<CaptureReader, CaptureError> {
        let window = Window::open(path, mode)?;
        CaptureReader::start(path.to_path_buf(), window)
    }

    /// Reads plain (not compressed) pcap or pcapng from any byte stream, e.g. standard input
    /// or bytes in memory; `name` is what errors call it.
    pub fn from_reader(
        name: &str,
        src: Box<dyn std::io::Read + Send>,
    ) -> Result<CaptureReader, CaptureError> {
        CaptureReader::start(PathBuf::from(name), Window::from_reader(src))
    }

    fn start(path: PathBuf, mut window: Window) -> Result<CaptureReader, CaptureError> {
        let file = path.display().to_string();
        window.fill(24).map_err(|e| CaptureError::io(&file, 0, e))?;
        let head = window.bytes();
        let parser = if let Some(st) = pcap::State::from_header(head) {
            Parser::Pcap(st)
        } else if head.len() >= 4 && head[..4] == pcapng::SHB_TYPE {
            Parser::Pcapng(pcapng::State::default())
        } else {
            let magic: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(CaptureError::NotACapture {
                file,
                magic: magic.join(" "),
            });
        };
        if let Parser::Pcap(_) = parser {
            window.consume(24);
        }
        Ok(CaptureReader {
            path,
            name: file,
            window,
            parser,
            records: 0,
            stats: ReaderStats::default(),
            batch: Vec::new(),
            deferred: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> Format {
        match &self.parser {
            Parser::Pcap(st) => st.format(),
            Parser::Pcapng(_) => Format::Pcapng,
        }
    }

    /// Link types declared so far (the pcap header's, or each pcapng interface's).
    pub fn link_types(&self) -> Vec<u16> {
        match &self.parser {
            Parser::Pcap(st) => vec![st.link_type],
            Parser::Pcapng(st) => st.link_types(),
        }
    }

    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Bytes of the (decompressed) file consumed so far.
    pub fn offset(&self) -> u64 {
        self.window.offset()
    }

    /// Size of the file on disk, for progress.
    pub fn file_len(&self) -> u64 {
        self.window.file_len()
    }

    /// Bytes of the file on disk read so far (compressed bytes for `.gz`), for progress.
    pub fn file_pos(&self) -> u64 {
        self.window.file_pos()
    }

    /// The next packet, `None` at a clean end of file. An error means the rest of the file
    /// cannot be read safely; the records returned before it stand.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        match self.advance(true)? {
            Advance::Record(at) => Ok(Some(self.record(&at))),
            Advance::End | Advance::Wait => Ok(None),
        }
    }

    /// Up to `max` next packets at once, all borrowing the reader's buffer (fewer when the
    /// buffer must be refilled first), so that a caller can look ahead; `None` at a clean end
    /// of file. An error comes once the records before it have been handed out.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch<'_>>, CaptureError> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        let mut failed = self.deferred.take();
        let max = max.max(1);
        while failed.is_none() && batch.len() < max {
            {
                // Whole records already in the buffer, without the general step's
                // bookkeeping; whatever is not (a refill, a corrupt header, a pcapng block
                // other than an enhanced packet block) goes to `advance`.
                let (start, bytes) = self.window.unread();
                let mut p = 0;
                while batch.len() < max {
                    let whole = match &mut self.parser {
                        Parser::Pcap(st) => st.whole(&bytes[p..]),
                        Parser::Pcapng(st) => st.whole(&bytes[p..]),
                    };
                    let Some((found, len)) = whole else {
                        break;
                    };
                    self.records += 1;
                    batch.push(At {
                        found,
                        start: start + p,
                        len,
                        number: self.records,
                    });
                    p += len;
                }
                self.window.consume(p);
                if batch.len() == max {
                    break;
                }
            }
            match self.advance(batch.is_empty()) {
                Ok(Advance::Record(at)) => batch.push(at),
                Ok(Advance::Wait | Advance::End) => break,
                Err(e) => failed = Some(e),
            }
        }
        self.batch = batch;
        match failed {
            Some(e) if self.batch.is_empty() => Err(e),
            Some(e) => {
                self.deferred = Some(e);
                Ok(Some(Batch { reader: self }))
            }
            None if self.batch.is_empty() => Ok(None),
            None => Ok(Some(Batch { reader: self })),
        }
    }

    fn record(&self, at: &At) -> Record<'_> {
        let bytes = self.window.consumed_slice(at.start, at.len);
        Record {
            ts_ns: at.found.ts_ns,
            link_type: at.found.link_type,
            orig_len: at.found.orig_len,
            data: &bytes[at.found.data.clone()],
            number: at.number,
        }
    }

    /// The stream's next records, whole, about `want` bytes of them (more when one record
    /// is larger), in `buf` from its start: what the serial reader would read next, with the
    /// blocks between them, so that another thread can walk them ([`CaptureReader::spans`]).
    /// The reader's buffer changes hands with `buf`'s: the bytes are not copied.
    pub fn next_span(&mut self, want: usize, buf: &mut Vec<u8>) -> Span {
        let mut span = Span {
            offset: self.window.offset(),
            state: match &self.parser {
                Parser::Pcap(_) => WalkState::new(None),
                Parser::Pcapng(st) => WalkState::new(Some(st.clone())),
            },
            ..Span::default()
        };
        if let Some(e) = self.deferred.take() {
            span.error = Some(e);
            span.ended = true;
            return span;
        }
        self.window.compact();
        let start = self.window.unread().0;
        if let Err(e) = self.window.fill(want) {
            span.error = Some(CaptureError::io(&self.name, span.offset, e));
            span.ended = true;
            return span;
        }
        loop {
            // Whole records in the buffer, as `next_batch` reads them; the rest (a refill, a
            // block that is not a packet, an error) through the general step.
            let (_, bytes) = self.window.unread();
            let mut p = 0;
            while let Some((_, len)) = match &mut self.parser {
                Parser::Pcap(st) => st.whole(&bytes[p..]),
                Parser::Pcapng(st) => st.whole(&bytes[p..]),
            } {
                self.records += 1;
                p += len;
            }
            self.window.consume(p);
            // Only the first record may refill the buffer: a refill moves the bytes before it.
            match self.advance(self.window.offset() == span.offset) {
                Ok(Advance::Record(_)) => {}
                Ok(Advance::Wait) => break,
                Ok(Advance::End) => {
                    span.ended = true;
                    break;
                }
                Err(e) => {
                    span.error = Some(e);
                    span.ended = true;
                    break;
                }
            }
        }
        span.len = (self.window.offset() - span.offset) as usize;
        self.window.hand_over(start, span.len, buf);
        span
    }

    /// How threads walk the spans of this reader's stream.
    pub fn spans(&self) -> Spans {
        Spans::new(
            self.name.clone(),
            match &self.parser {
                Parser::Pcap(st) => Some(st.clone()),
                Parser::Pcapng(_) => None,
            },
        )
    }

    /// Steps to the next packet record. With `may_fill` false it stops (`Wait`) where the
    /// buffer would have to be refilled, which would move the bytes of records handed out.
    fn advance(&mut self, may_fill: bool) -> Result<Advance, CaptureError> {
        let file = self.name.as_str();
        loop {
            let offset = self.window.offset();
            let number = self.records + 1;
            let step = match &mut self.parser {
                Parser::Pcap(st) => st.step(self.window.bytes(), file, number, offset)?,
                Parser::Pcapng(st) => {
                    st.step(self.window.bytes(), file, number, offset, &mut self.stats)?
                }
            };
            match step {
                Step::Need(_) if !may_fill => return Ok(Advance::Wait),
                Step::Need(n) => {
                    self.window
                        .fill(n)
                        .map_err(|e| CaptureError::io(file, offset, e))?;
                    let now = self.window.bytes().len();
                    if now < n {
                        if let Some(e) = self.window.take_error() {
                            return Err(CaptureError::io(file, offset, e));
                        }
                        if now == 0 {
                            return Ok(Advance::End);
                        }
                        return Err(CaptureError::Truncated {
                            file: file.to_string(),
                            record: number,
                            offset,
                            need: n,
                            have: now,
                        });
                    }
                }
                Step::Skip(n) => {
                    self.window.consume(n);
                }
                Step::Packet(found, len) => {
                    self.records = number;
                    let start = self.window.consume(len);
                    return Ok(Advance::Record(At {
                        found,
                        start,
                        len,
                        number,
                    }));
                }
            }
        }
    }
}

/// Where a record just read sits in the reader's buffer.
#[derive(Debug)]
struct At {
    found: Found,
    start: usize,
    len: usize,
    number: u64,
}

enum Advance {
    Record(At),
    /// The buffer must be refilled before the next record.
    Wait,
    End,
}

/// Records read at once by [`CaptureReader::next_batch`].
#[derive(Debug)]
pub struct Batch<'a> {
    reader: &'a CaptureReader,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        self.reader.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reader.batch.is_empty()
    }

    pub fn get(&self, i: usize) -> Record<'a> {
        self.reader.record(&self.reader.batch[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = Record<'a>> + '_ {
        self.reader.batch.iter().map(|at| self.reader.record(at))
    }
}

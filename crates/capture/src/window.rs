//! The bytes of a capture file as one sliding window: a reused buffer refilled by `read`, or a
//! memory map that is the whole file at once.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{CaptureError, ReadMode};

/// Size of one `read` into the reused buffer: small enough that the bytes the kernel copied are
/// still in the L2 cache when the records are walked and dissected (2 MiB ran 3 to 7% slower
/// on one thread; 32 KiB, 1.5 to 8%, from the syscalls).
const CHUNK: usize = 128 << 10;

enum Store {
    Map(memmap2::Mmap),
    Buf {
        buf: Vec<u8>,
        src: Box<dyn Read + Send>,
    },
}

pub(crate) struct Window {
    store: Store,
    pos: usize,
    end: usize,
    /// File offset (of the decompressed stream) of `store[0]`.
    base: u64,
    eof: bool,
    /// A read error met after some bytes arrived: reported once those bytes are used up.
    error: Option<io::Error>,
    file_len: u64,
    file_pos: Arc<AtomicU64>,
}

/// Bytes a pipe that flowdoc reads may hold (Linux's `pipe-max-size` for unprivileged
/// processes, by default).
#[cfg(target_os = "linux")]
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Grows the buffer of the pipe flowdoc reads from (a FIFO, or standard input as `/dev/stdin`)
/// from 64 KiB to [`PIPE_BYTES`]: at 64 KiB the writer and flowdoc took turns, each waiting
/// for the other (`cat` of the 2M capture into a FIFO: one thread 1.41 -> 0.68 s with a 1 MiB
/// pipe). Where the kernel refuses, the pipe stays as it was.
#[cfg(target_os = "linux")]
fn widen_pipe(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: `fcntl` with `F_SETPIPE_SZ` takes an int and only resizes the pipe's buffer
    // (never dropping data: it fails if the data in it would not fit); the descriptor is
    // this open file's and outlives the call.
    #[allow(unsafe_code)]
    unsafe {
        libc::fcntl(file.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

/// Counts the bytes read from disk, so progress works for compressed files too.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Window {
    pub(crate) fn open(path: &Path, mode: ReadMode) -> Result<Window, CaptureError> {
        let open_err = |source| CaptureError::Open {
            file: path.display().to_string(),
            source,
        };
        let mut file = File::open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        if meta.is_dir() {
            return Err(open_err(io::Error::other("is a folder")));
        }
        #[cfg(target_os = "linux")]
        if std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
            widen_pipe(&file);
        }
        let file_len = meta.len();
        // The first two bytes tell gzip apart. A regular file is rewound after them; a FIFO or
        // a device cannot be, so the bytes are put back in front of the rest of the stream.
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match file.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(open_err(e)),
            }
        }
        let gz = got == 2 && magic == [0x1f, 0x8b];
        let regular = meta.is_file();
        if regular {
            file.seek(io::SeekFrom::Start(0)).map_err(open_err)?;
        }
        let file_pos = Arc::new(AtomicU64::new(0));
        let store = if mode == ReadMode::Mmap && regular && !gz && file_len > 0 {
            let map = map_file(&file).map_err(open_err)?;
            file_pos.store(file_len, Ordering::Relaxed);
            Store::Map(map)
        } else {
            let head = if regular {
                Vec::new()
            } else {
                magic[..got].to_vec()
            };
            let counted = Counting {
                inner: io::Cursor::new(head).chain(file),
                count: Arc::clone(&file_pos),
            };
            let src: Box<dyn Read + Send> = if gz {
                Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                    1 << 16,
                    counted,
                )))
            } else {
                Box::new(counted)
            };
            Store::Buf {
                buf: vec![0; CHUNK],
                src,
            }
        };
        let end = match &store {
            Store::Map(m) => m.len(),
            Store::Buf { .. } => 0,
        };
        let eof = matches!(store, Store::Map(_));
        Ok(Window {
            store,
            pos: 0,
            end,
            base: 0,
            eof,
            error: None,
            file_len,
            file_pos,
        })
    }

    pub(crate) fn from_reader(src: Box<dyn Read + Send>) -> Window {
        Window {
            store: Store::Buf {
                buf: vec![0; CHUNK],
                src,
            },
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            error: None,
            file_len: 0,
            file_pos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The unread bytes in memory.
    pub(crate) fn bytes(&self) -> &[u8] {
        let all: &[u8] = match &self.store {
            Store::Map(m) => m,
            Store::Buf { buf, .. } => buf,
        };
        &all[self.pos..self.end]
    }

    /// Where the unread bytes start (for [`Window::consumed_slice`]) and the bytes.
    pub(crate) fn unread(&self) -> (usize, &[u8]) {
        (self.pos, self.bytes())
    }

    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    pub(crate) fn file_pos(&self) -> u64 {
        self.file_pos.load(Ordering::Relaxed)
    }

    /// Marks `n` bytes as read and returns where they start, for [`Window::consumed_slice`].
    pub(crate) fn consume(&mut self, n: usize) -> usize {
        let start = self.pos;
        self.pos = (self.pos + n).min(self.end);
        start
    }

    /// Bytes just consumed; they stay valid until the next `fill`.
    pub(crate) fn consumed_slice(&self, start: usize, len: usize) -> &[u8] {
        let all: &[u8] = match &self.store {
            Store::Map(m) => m,
            Store::Buf { buf, .. } => buf,
        };
        &all[start..(start + len).min(self.end)]
    }

    /// Moves the unread bytes to the front of the buffer (a map stays as it is).
    pub(crate) fn compact(&mut self) {
        if let Store::Buf { buf, .. } = &mut self.store {
            if self.pos > 0 {
                buf.copy_within(self.pos..self.end, 0);
                self.base += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
            }
        }
    }

    /// Hands the `len` bytes just consumed, from `start` (the front of the buffer), over to
    /// `out`, from its first byte. The buffer itself changes hands, `out`'s taking its place
    /// with the unread bytes copied to its front: only the tail of a record moves, as in
    /// [`Window::fill`]. (A map's bytes are copied.)
    pub(crate) fn hand_over(&mut self, start: usize, len: usize, out: &mut Vec<u8>) {
        match &mut self.store {
            Store::Map(m) => {
                out.clear();
                out.extend_from_slice(&m[start..start + len]);
            }
            Store::Buf { buf, .. } => {
                debug_assert!(start == 0 && self.pos == len);
                let tail = self.end - self.pos;
                let mut fresh = std::mem::take(out);
                let size = buf.len().max(tail);
                if fresh.capacity() == 0 {
                    // Zeroed by the allocator (fresh pages), not written with zeros.
                    fresh = vec![0; size];
                } else if fresh.len() < size {
                    fresh.resize(size, 0);
                }
                fresh[..tail].copy_from_slice(&buf[self.pos..self.end]);
                *out = std::mem::replace(buf, fresh);
                self.base += self.pos as u64;
                self.end = tail;
                self.pos = 0;
            }
        }
    }

    /// Makes at least `need` unread bytes available, unless the file ends first.
    pub(crate) fn fill(&mut self, need: usize) -> io::Result<()> {
        let Store::Buf { buf, src } = &mut self.store else {
            return Ok(());
        };
        if self.end - self.pos >= need || self.eof {
            return Ok(());
        }
        // Only the tail of a record that straddles two reads is moved, not every packet.
        if self.pos > 0 {
            buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if buf.len() < need {
            buf.resize(need.next_power_of_two(), 0);
        }
        while self.end < need {
            match src.read(&mut buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Keep what was read before the error (a gzip file cut short still gives
                    // its first records); the error is reported where the bytes run out.
                    self.error = Some(e);
                    self.eof = true;
                    break;
                }
            }
        }
        Ok(())
    }
}

#[allow(unsafe_code)]
pub(crate) fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this reader. A file truncated by another
    // process while mapped can raise SIGBUS; that risk is why Buffered is the default.
    let map = unsafe { memmap2::Mmap::map(file)? };
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(map)
}

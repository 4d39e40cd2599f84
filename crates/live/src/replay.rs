//! A capture file played back at the pace it was recorded (or faster or slower), as if it
//! came from an interface.

use std::path::Path;
use std::time::{Duration, Instant};

use flowdoc_capture::{CaptureReader, ReadMode};

use crate::{Event, Frame, LiveError};

/// A capture file as a live source.
pub struct Replay {
    reader: CaptureReader,
    /// Wall clock and capture time of the first packet.
    start: Option<(Instant, i64)>,
    /// Capture time runs this many times faster than the wall clock.
    speed: f64,
    poll: Duration,
    /// A record read but not yet due: time, link type, length on the wire (bytes in `buf`).
    pending: Option<(i64, u16, u32)>,
    /// The bytes of the pending record, then of the packet handed out: one buffer, reused.
    buf: Vec<u8>,
    records: u64,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("speed", &self.speed)
            .field("records", &self.records)
            .finish()
    }
}

impl Replay {
    /// Opens `path`; `speed` 1.0 is the recorded pace, 2.0 twice as fast.
    pub fn open(path: &Path, speed: f64, poll: Duration) -> Result<Replay, LiveError> {
        let reader = CaptureReader::open(path, ReadMode::Buffered)
            .map_err(|e| LiveError::Replay(e.to_string()))?;
        Ok(Replay {
            reader,
            start: None,
            speed: if speed > 0.0 { speed } else { 1.0 },
            poll,
            pending: None,
            buf: Vec::new(),
            records: 0,
        })
    }

    /// The next packet when it is due; `Idle` after waiting at most the poll interval; `End`
    /// after the last record; `Err` on a broken file.
    pub fn next_event(&mut self) -> Result<Event<'_>, LiveError> {
        if self.pending.is_none() {
            match self.reader.next_record() {
                Ok(Some(r)) => {
                    self.records += 1;
                    self.buf.clear();
                    self.buf.extend_from_slice(r.data);
                    self.pending = Some((r.ts_ns, r.link_type, r.orig_len));
                }
                Ok(None) => return Ok(Event::End),
                Err(e) => return Err(LiveError::Replay(e.to_string())),
            }
        }
        let Some((ts, ..)) = &self.pending else {
            return Ok(Event::End);
        };
        let ts = *ts;
        let (t0, c0) = *self.start.get_or_insert((Instant::now(), ts));
        let due = Duration::from_secs_f64(((ts - c0).max(0) as f64 / 1e9) / self.speed);
        let now = t0.elapsed();
        if due > now {
            let wait = (due - now).min(self.poll);
            std::thread::sleep(wait);
            if due > t0.elapsed() {
                return Ok(Event::Idle);
            }
        }
        let Some((ts, link_type, orig_len)) = self.pending.take() else {
            return Ok(Event::End);
        };
        // The frame borrows the buffer until the next call reads the next record into it.
        Ok(Event::Packet {
            link_type,
            frame: Frame {
                ts_ns: ts,
                data: &self.buf,
                orig_len,
            },
        })
    }
}

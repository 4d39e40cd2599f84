//! Any bytes as a stream (a gzip file's or a pipe's, arriving in reads of any size) read ahead
//! in spans, each walked on its own as the threads walk them, give the serial reader's records
//! and its error.
#![no_main]
use std::io::Read;

use flowdoc_capture::{CaptureReader, Format, Record};
use libfuzzer_sys::fuzz_target;

type Rec = (i64, u16, u32, Vec<u8>);

/// Bytes in reads of at most `max` bytes, as a pipe gives them.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    max: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.max).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn stream(bytes: &[u8], max: usize) -> Option<CaptureReader> {
    let src = Trickle {
        bytes: bytes.to_vec(),
        at: 0,
        max,
    };
    CaptureReader::from_reader("fuzz", Box::new(src)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c], bytes)) = data.split_first_chunk::<3>() else {
        return;
    };
    let want = 1 + usize::from(u16::from_le_bytes([a, b]) % 4096);
    let max = 1 + usize::from(c) * 97;
    let (Some(mut serial), Some(mut reader)) = (stream(bytes, max), stream(bytes, max)) else {
        return;
    };
    let mut one: Vec<Rec> = Vec::new();
    let one_error = loop {
        match serial.next_record() {
            Ok(Some(rec)) => one.push((rec.ts_ns, rec.link_type, rec.orig_len, rec.data.to_vec())),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    let spans = reader.spans();
    let mut got: Vec<Rec> = Vec::new();
    let mut buf = Vec::new();
    let got_error = loop {
        let span = reader.next_span(want, &mut buf);
        let before = got.len() as u64;
        let bytes = &buf[..span.len];
        let mut keep = |rec: Record<'_>, at: usize| {
            assert_eq!(
                &bytes[at..at + rec.data.len()],
                rec.data,
                "offset of the captured bytes"
            );
            got.push((rec.ts_ns, rec.link_type, rec.orig_len, rec.data.to_vec()));
        };
        let w = if spans.format() == Format::Pcapng {
            spans.walk_pcapng(bytes, span.offset, &span.state, &mut keep)
        } else {
            spans.walk_pcap(bytes, span.offset, &mut keep)
        };
        if let Some(mut e) = w.error {
            e.renumber(before);
            break Some(e.to_string());
        }
        if span.ended {
            break span.error.map(|e| e.to_string());
        }
    };
    assert_eq!(one.len(), got.len(), "records");
    assert!(one == got, "records differ");
    assert_eq!(one_error, got_error, "errors");
});

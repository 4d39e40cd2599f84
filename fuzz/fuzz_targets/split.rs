//! Any bytes as a capture file cut into ranges: the ranges walked as the threads walk them
//! (each but the first from a guessed start, checked against where and in what state the one
//! before ended, walked again from there when wrong) give the serial reader's records.
#![no_main]
use flowdoc_capture::{CaptureReader, PcapSplit, ReadMode, Start};
use libfuzzer_sys::fuzz_target;

type Rec = (i64, u16, u32, Vec<u8>);

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], bytes)) = data.split_first_chunk::<2>() else {
        return;
    };
    let step = 1 + u64::from(u16::from_le_bytes([a, b]) % 4096);
    let path = std::env::temp_dir().join(format!("flowdoc-fuzz-split-{}", std::process::id()));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let Some(split) = PcapSplit::open(&path, false) else {
        return;
    };
    let mut serial: Vec<Rec> = Vec::new();
    if let Ok(mut r) = CaptureReader::open(&path, ReadMode::Buffered) {
        while let Ok(Some(rec)) = r.next_record() {
            serial.push((rec.ts_ns, rec.link_type, rec.orig_len, rec.data.to_vec()));
        }
    }
    let mut cut: Vec<Rec> = Vec::new();
    let (mut expected, mut state) = (split.data_start(), split.start_state());
    let mut buf = Vec::new();
    let mut i = 0;
    loop {
        let start = split.data_start() + i * step;
        if start >= split.len() {
            break;
        }
        let end = (start + step).min(split.len());
        i += 1;
        if expected >= end {
            continue;
        }
        let mut got: Vec<Rec> = Vec::new();
        let mut keep = |rec: flowdoc_capture::Record<'_>, _: usize| {
            got.push((rec.ts_ns, rec.link_type, rec.orig_len, rec.data.to_vec()));
        };
        let from = if start == split.data_start() { Start::Exact(&state) } else { Start::Guess };
        let mut w = split.walk(start, end, from, &mut buf, &mut keep);
        if w.first != Some(expected) || (w.from_head && !split.agrees(&state)) {
            got.clear();
            let mut keep = |rec: flowdoc_capture::Record<'_>, _: usize| {
                got.push((rec.ts_ns, rec.link_type, rec.orig_len, rec.data.to_vec()));
            };
            w = split.walk(expected, end, Start::Exact(&state), &mut buf, &mut keep);
        }
        cut.extend(got);
        if w.error.is_some() {
            break;
        }
        expected = w.next;
        state = w.state;
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(serial.len(), cut.len(), "records");
    assert!(serial == cut, "records differ");
});

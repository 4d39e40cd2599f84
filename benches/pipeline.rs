//! The whole pipeline on a generated IM and Presence capture (1 million packets, 50,000 flows,
//! about 480 bytes a packet), against a baseline that only walks the records, in one run.
//!
//! Run: `cargo bench -p flowdoc-benches` (the capture is generated once into benches/data/).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowdoc_capture::{CaptureReader, ReadMode};
use flowdoc_catalogue::Catalogue;
use flowdoc_flow::{FlowConfig, DEFAULT_PAYLOAD_BYTES};
use flowdoc_pipeline::{analyze_files, Options};

const PACKETS: u64 = 1_000_000;
const FLOWS: u32 = 50_000;

fn walk_records(path: &std::path::Path, mode: ReadMode) -> u64 {
    let mut r = CaptureReader::open(path, mode).expect("open");
    let mut sum = 0u64;
    while let Ok(Some(rec)) = r.next_record() {
        sum = sum.wrapping_add(rec.data.len() as u64);
    }
    sum
}

fn pipeline(c: &mut Criterion) {
    let path = flowdoc_benches::capture(PACKETS, FLOWS);
    let cat = Catalogue::embedded();
    let mut g = c.benchmark_group("imp-1m");
    g.sample_size(10).throughput(Throughput::Elements(PACKETS));
    g.bench_function("read-only/buffered", |b| {
        b.iter(|| walk_records(&path, ReadMode::Buffered))
    });
    g.bench_function("read-only/mmap", |b| {
        b.iter(|| walk_records(&path, ReadMode::Mmap))
    });
    // "no-payload" turns identification off: the pair gives its cost in the same run.
    for (name, mode, threads, payload_bytes) in [
        (
            "analyze/buffered",
            ReadMode::Buffered,
            1,
            DEFAULT_PAYLOAD_BYTES,
        ),
        ("analyze/buffered-no-payload", ReadMode::Buffered, 1, 0),
        ("analyze/mmap", ReadMode::Mmap, 1, DEFAULT_PAYLOAD_BYTES),
        (
            "analyze/buffered-2-threads",
            ReadMode::Buffered,
            2,
            DEFAULT_PAYLOAD_BYTES,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut flows = 0u64;
                let opts = Options {
                    read_mode: mode,
                    flow: FlowConfig {
                        payload_bytes,
                        ..FlowConfig::default()
                    },
                    ..Options::default()
                };
                let s = analyze_files(
                    &cat,
                    std::slice::from_ref(&path),
                    opts,
                    threads,
                    &mut |_| flows += 1,
                    &mut |_, _, _| {},
                );
                assert_eq!(s.packets, PACKETS);
                flows
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);

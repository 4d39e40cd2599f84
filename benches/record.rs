//! The output of the end of input alone: each flow's JSON line, CSV row and place in the
//! terminal report's and the compliance report's groups, made from flows already labelled (the
//! benchmark capture's mix: TLS details, matches, findings), the way `analyze` makes them. A large capture's flows nearly all end with its input, and there the
//! line is most of each flow's cost (README, run 21).
//!
//! Run: `cargo bench -p flowdoc-benches --bench record`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowdoc_catalogue::Catalogue;
use flowdoc_pipeline::{analyze_files, LabelledFlow, Options, Summary};
use flowdoc_report::{Compliance, FlowRecord, JsonLines, TableReport};

/// The labelled flows of the generated capture of `packets` packets over `flows` flows.
fn labelled(cat: &Catalogue, packets: u64, flows: u32) -> Vec<LabelledFlow> {
    let path = flowdoc_benches::capture(packets, flows);
    let mut out = Vec::new();
    analyze_files(
        cat,
        std::slice::from_ref(&path),
        Options::default(),
        1,
        &mut |lf| out.push(lf.clone()),
        &mut |_, _, _| {},
    );
    assert_eq!(out.len(), flows as usize, "every flow labelled");
    out
}

/// The terminal report of `flows`.
fn table_report(flows: &[LabelledFlow]) -> TableReport {
    let mut report = TableReport::new();
    for lf in flows {
        report.add(lf);
    }
    report
}

fn lines(c: &mut Criterion) {
    let cat = Catalogue::embedded();
    let flows = labelled(&cat, 200_000, 5_000);
    let json = JsonLines::new(&cat);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(flows.len() as u64));
    let mut buf = Vec::with_capacity(1 << 20);
    g.bench_function("json-lines", |b| {
        b.iter(|| {
            buf.clear();
            for lf in &flows {
                json.line(lf, &mut buf);
            }
            buf.len()
        })
    });
    g.bench_function("csv-rows", |b| {
        b.iter(|| {
            buf.clear();
            for lf in &flows {
                FlowRecord::csv_row_of(&cat, lf, &mut buf);
            }
            buf.len()
        })
    });
    g.bench_function("records", |b| {
        b.iter(|| {
            flows
                .iter()
                .map(|lf| FlowRecord::new(&cat, lf).packets)
                .sum::<u64>()
        })
    });
    // The terminal report's aggregate (the default output): each flow added to its groups.
    g.bench_function("table-report", |b| b.iter(|| table_report(&flows)));
    g.finish();
    // The same on ten times the flows: a few dozen groups of thousands of hosts each, as on
    // the end-to-end benchmark's capture, where the groups no longer fit in cache.
    let many = labelled(&cat, 1_000_000, 50_000);
    let mut g = c.benchmark_group("record-50k");
    g.throughput(Throughput::Elements(many.len() as u64));
    g.sample_size(30);
    g.bench_function("table-report", |b| b.iter(|| table_report(&many)));
    // The compliance report's aggregate (`report`, `rules`): each flow added, then the report
    // made (the captures' hashes left out: they are read apart from the flows).
    g.bench_function("compliance", |b| {
        b.iter(|| {
            let mut c = Compliance::new(&cat);
            for lf in &many {
                c.add(lf);
            }
            c.finish_hashed(&Summary::default(), None, &mut |_| None)
        })
    });
    g.finish();
}

criterion_group!(benches, lines);
criterion_main!(benches);

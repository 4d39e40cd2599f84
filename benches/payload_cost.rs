//! What payload identification costs, in-process (no output written), on the criterion
//! capture: the whole pipeline with and without it, rounds interleaved so that a drift in the
//! shared machine's load touches both alike; prints the medians and the median of the paired
//! ratios.
//!
//! Run: `cargo bench -p flowdoc-benches --bench payload_cost` (ROUNDS=n to change the 15).

use std::time::Instant;

use flowdoc_capture::ReadMode;
use flowdoc_catalogue::Catalogue;
use flowdoc_flow::{FlowConfig, DEFAULT_PAYLOAD_BYTES};
use flowdoc_pipeline::{analyze_files, Options};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (packets, flows) = (1_000_000, 50_000);
    let path = flowdoc_benches::capture(packets, flows);
    let cat = Catalogue::embedded();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let run = |payload_bytes: u32| {
        let opts = Options {
            read_mode: ReadMode::Buffered,
            flow: FlowConfig {
                payload_bytes,
                ..FlowConfig::default()
            },
            ..Options::default()
        };
        let t = Instant::now();
        let mut n = 0u64;
        let s = analyze_files(
            &cat,
            std::slice::from_ref(&path),
            opts,
            1,
            &mut |_| n += 1,
            &mut |_, _, _| {},
        );
        assert_eq!(s.packets, packets);
        t.elapsed().as_secs_f64()
    };
    run(DEFAULT_PAYLOAD_BYTES);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        with.push(run(DEFAULT_PAYLOAD_BYTES));
        without.push(run(0));
    }
    for (i, (a, b)) in with.iter().zip(&without).enumerate() {
        println!("round {i}: on {:.1} ms, off {:.1} ms", a * 1e3, b * 1e3);
    }
    let paired = median(with.iter().zip(&without).map(|(a, b)| a / b).collect());
    println!(
        "{packets} packets, {flows} flows, {rounds} rounds: identification on {:.1} ms, off {:.1} ms; costs {:+.1}% (median of paired ratios)",
        median(with) * 1e3,
        median(without) * 1e3,
        (paired - 1.0) * 100.0
    );
}

//! Several threads give one thread's results: the same flows, in the same order, with the same
//! counts and the same errors, whatever the number of threads and however the file is cut.

use std::path::{Path, PathBuf};

use flowdoc_capture::ReadMode;
use flowdoc_catalogue::Catalogue;
use flowdoc_fixturegen::packet::{self, Ip, ACK, FIN, PSH, SYN};
use flowdoc_fixturegen::write::{gzip, pcap, pcapng, BlockKind, Frame, Interface, PcapOptions};
use flowdoc_flow::FlowConfig;
use flowdoc_pipeline::{analyze_files, Options, Split};
use flowdoc_report::FlowRecord;
use proptest::prelude::*;

/// Everything a user sees of a run: each flow's JSON line in order, then the counts.
fn run(paths: &[PathBuf], flow: FlowConfig, threads: usize, split: Split) -> Vec<String> {
    run_with(paths, flow, threads, split, ReadMode::Buffered)
}

fn run_with(
    paths: &[PathBuf],
    flow: FlowConfig,
    threads: usize,
    split: Split,
    read_mode: ReadMode,
) -> Vec<String> {
    let cat = Catalogue::embedded();
    let opts = Options {
        flow,
        split,
        read_mode,
    };
    let mut out = Vec::new();
    let s = analyze_files(
        &cat,
        paths,
        opts,
        threads,
        &mut |lf| {
            let mut line = Vec::new();
            FlowRecord::new(&cat, lf).json_line(&mut line);
            out.push(String::from_utf8_lossy(&line).into_owned());
        },
        &mut |_, _, _| {},
    );
    out.push(format!(
        "packets {} flow_packets {} skipped {:?} first {:?} last {:?} flows {} documented {} blocks {} table {:?}",
        s.packets,
        s.flow_packets,
        s.skipped,
        s.first_ns,
        s.last_ns,
        s.flows,
        s.documented,
        s.skipped_blocks,
        s.table
    ));
    for f in &s.files {
        out.push(format!(
            "{} {:?} {:?} records {} error {:?} unreadable {}",
            f.path.display(),
            f.format,
            f.link_types,
            f.records,
            f.error,
            f.unreadable
        ));
    }
    out
}

fn configs() -> Vec<(&'static str, FlowConfig)> {
    vec![
        ("default", FlowConfig::default()),
        (
            "idle 1 s, active 3 s",
            FlowConfig {
                idle_timeout_ns: Some(1_000_000_000),
                active_timeout_ns: Some(3_000_000_000),
                ..FlowConfig::default()
            },
        ),
        (
            "no timeouts, no payload",
            FlowConfig {
                idle_timeout_ns: None,
                split_on_reuse: false,
                payload_bytes: 0,
                ..FlowConfig::default()
            },
        ),
    ]
}

fn splits() -> Vec<Split> {
    vec![
        Split::default(),
        Split {
            chunk_bytes: 97,
            chunks_in_flight: 1,
        },
        Split {
            chunk_bytes: 500,
            chunks_in_flight: 3,
        },
        Split {
            chunk_bytes: 4096,
            chunks_in_flight: 5,
        },
    ]
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let mut v = Vec::new();
    for dir in [root.clone(), root.join("broken")] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.to_string_lossy();
                n.contains(".pcap")
            })
            .collect();
        names.sort();
        v.extend(names);
    }
    assert!(v.len() >= 15, "fixtures missing: {v:?}");
    v
}

#[test]
fn every_fixture_gives_one_threads_results_on_any_number_of_threads() {
    for path in fixtures() {
        for (name, cfg) in configs() {
            let paths = std::slice::from_ref(&path);
            let one = run(paths, cfg, 1, Split::default());
            for threads in [2, 3, 4, 16] {
                for split in splits() {
                    let many = run(paths, cfg, threads, split);
                    assert_eq!(
                        one,
                        many,
                        "{} ({name}) on {threads} threads, {split:?}",
                        path.display()
                    );
                }
            }
        }
    }
}

/// The binary makes each line where it writes it on one thread, and on the thread that ended
/// the flow on several: the same bytes either way, stderr and exit code included.
#[test]
fn the_binary_writes_one_threads_bytes_on_two_threads() {
    let run = |path: &Path, format: &str, threads: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("flowdoc"))
            .args(["analyze", "--format", format, "--threads", threads])
            .arg(path)
            .output()
            .expect("run flowdoc")
    };
    for path in fixtures() {
        for format in ["json", "csv"] {
            let one = run(&path, format, "1");
            let two = run(&path, format, "2");
            let what = format!("{} as {format}", path.display());
            assert_eq!(one.status.code(), two.status.code(), "{what}");
            assert_eq!(one.stderr, two.stderr, "{what}");
            assert_eq!(
                String::from_utf8_lossy(&one.stdout),
                String::from_utf8_lossy(&two.stdout),
                "{what}"
            );
        }
    }
    // Not vacuous: the cluster fixture has flows to write.
    let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cluster.pcap");
    let lines = run(&cluster, "json", "1")
        .stdout
        .split(|&b| b == b'\n')
        .count();
    assert!(lines > 100, "{lines} lines");
}

/// At the end of input a table's thread that falls behind the merging thread hands it its
/// flows to render: the same lines in the same order, and fewer made on the slow thread than
/// its whole table.
#[test]
fn a_slow_table_thread_leaves_flows_to_the_merging_thread() {
    let cat = Catalogue::embedded();
    let dir = std::env::temp_dir().join(format!("flowdoc-slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let path = dir.join("open.pcap");
    let mut bytes = Vec::new();
    // 1,500 flows, every one still open at the end: many blocks per table.
    flowdoc_fixturegen::bench::write_capture(&mut bytes, &cat, 6_000, 1_500).expect("generate");
    std::fs::write(&path, bytes).expect("write");
    let paths = [path];
    let lines = |threads: usize| {
        let merging = std::thread::current().id();
        let render = |lf: &flowdoc_pipeline::LabelledFlow| {
            let mine = std::thread::current().id() == merging;
            if !mine {
                // A table thread on a slow core.
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            let mut line = Vec::new();
            FlowRecord::new(&cat, lf).json_line(&mut line);
            (mine, line)
        };
        let (mut out, mut elsewhere) = (Vec::new(), 0);
        let s = flowdoc_pipeline::analyze_files_with(
            &cat,
            &paths,
            Options::default(),
            threads,
            &render,
            &mut |_, (mine, line)| {
                elsewhere += usize::from(!mine);
                out.push(String::from_utf8_lossy(line).into_owned());
            },
            &mut |_, _, _| {},
        );
        assert_eq!(s.flows as usize, out.len());
        (out, elsewhere)
    };
    let (one, none) = lines(1);
    let (two, elsewhere) = lines(2);
    assert_eq!(none, 0);
    assert!(one.len() > 1_400, "{} flows", one.len());
    assert_eq!(one, two);
    // The second table holds about half the flows (a symmetric hash); rendered all on its own
    // thread, that would be some 730. The merging thread took a share of them.
    assert!(
        elsewhere < 600,
        "{elsewhere} of {} rendered on the table's thread",
        one.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--mmap`: the threads walk the map instead of their own copies, and drop each chunk's
/// pages once its flows are written.
#[test]
fn memory_mapped_fixtures_give_one_threads_results_on_threads() {
    for path in fixtures() {
        let paths = std::slice::from_ref(&path);
        let one = run(paths, FlowConfig::default(), 1, Split::default());
        for (threads, split) in [
            (2, Split::default()),
            (
                3,
                Split {
                    chunk_bytes: 500,
                    chunks_in_flight: 3,
                },
            ),
        ] {
            let many = run_with(paths, FlowConfig::default(), threads, split, ReadMode::Mmap);
            assert_eq!(
                one,
                many,
                "{} on {threads} threads, {split:?}",
                path.display()
            );
        }
    }
}

#[test]
fn all_fixtures_as_one_capture_give_one_threads_results() {
    let paths = fixtures();
    for (name, cfg) in configs() {
        let one = run(&paths, cfg, 1, Split::default());
        assert!(one.len() > 40, "{name}: {} lines", one.len());
        for split in splits() {
            assert_eq!(one, run(&paths, cfg, 3, split), "{name}, {split:?}");
        }
    }
}

/// A capture with long idle gaps (sweeps), fragmented datagrams (some fragments ahead of their
/// first), reused ports and payloads made of things that look like pcap record headers.
fn tricky(seed: u64, sessions: usize) -> Vec<Frame> {
    let mut rng = packet::Rng::new(seed);
    let mut out = Vec::new();
    let mut t = 1_714_521_600_000_000_000i64;
    let s = Ip::V4([10, 2, 0, 1]);
    for i in 0..sessions {
        let c = Ip::V4([10, 1, (i / 200) as u8, (i % 200) as u8 + 1]);
        let cp = 40_000 + (rng.below(8) as u16);
        let sp = [5060u16, 5222, 5269, 8443, 6603][rng.below(5) as usize];
        // A fake chain of record headers: same second, no fraction, zero lengths.
        let mut fake = Vec::new();
        for _ in 0..rng.below(12) {
            fake.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
            fake.extend_from_slice(&[0; 12]);
        }
        for k in 0..rng.below(6) as u32 + 1 {
            let flags = match k {
                0 => SYN,
                1 => SYN | ACK,
                _ if rng.below(7) == 0 => FIN | ACK,
                _ => PSH | ACK,
            };
            let ip = if k % 2 == 0 {
                packet::tcp(c, s, cp, sp, flags, k, &fake)
            } else {
                packet::tcp(s, c, sp, cp, flags, k, &fake)
            };
            out.push(Frame::new(t, packet::ethernet(&ip, &[])));
            t += rng.below(400_000_000) as i64;
        }
        if rng.below(3) == 0 {
            let dgram = packet::udp(c, s, 5060, 5060, &[b'x'; 96]);
            let mut frags = packet::fragment_v4(&dgram, 32, i as u16);
            if rng.below(2) == 0 {
                frags.reverse();
            }
            for f in frags {
                out.push(Frame::new(t, packet::ethernet(&f, &[])));
                t += 1_000;
            }
        }
        if rng.below(4) == 0 {
            // A long pause: idle flows end at the next sweep.
            t += 2_000_000_000 + rng.below(15_000_000_000) as i64;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_captures_cut_anywhere_give_one_threads_results(
        seed in any::<u64>(),
        sessions in 1usize..300,
        chunk in 17u64..3000,
        per in 1usize..6,
        threads in 2usize..5,
        cut in any::<prop::sample::Index>(),
    ) {
        let frames = tricky(seed, sessions);
        let dir = std::env::temp_dir().join(format!("flowdoc-threads-{}-{seed}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let o = PcapOptions::ethernet();
        let whole = dir.join("whole.pcap");
        std::fs::write(&whole, pcap(&o, &frames)).expect("write");
        // The same capture in two files, the second cut short inside a record.
        let at = cut.index(frames.len() + 1);
        let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
        std::fs::write(&a, pcap(&o, &frames[..at])).expect("write");
        let mut tail = pcap(&o, &frames[at..]);
        tail.truncate(tail.len().saturating_sub(7).max(24));
        std::fs::write(&b, tail).expect("write");
        // And as pcapng: two sections, each with interfaces of its own (the second's declared
        // mid-file), enhanced, simple (the time of the packet before) and obsolete packet
        // blocks.
        let ng = dir.join("whole.pcapng");
        let itf = |tsresol_exp| Interface { link_type: 1, tsresol_exp };
        let blocks = |frames: &[Frame], interfaces: u32| -> Vec<(BlockKind, Frame)> {
            frames
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let kind = match i % 11 {
                        3 | 7 => BlockKind::Simple,
                        5 => BlockKind::Obsolete,
                        _ => BlockKind::Enhanced,
                    };
                    let mut f = f.clone();
                    f.interface = if kind == BlockKind::Simple { 0 } else { i as u32 % interfaces };
                    (kind, f)
                })
                .collect()
        };
        let mut bytes = pcapng(&[itf(6), itf(9)], &blocks(&frames[..at], 2));
        bytes.extend(pcapng(&[itf(9)], &blocks(&frames[at..], 1)));
        // Each gzipped (read in order by one thread, walked by any): whole, cut short inside a
        // record, and the compressed stream itself cut short (a read error).
        let gz = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, gzip(bytes)).expect("write");
            p
        };
        let whole_gz = gz("whole.pcap.gz", &std::fs::read(&whole).expect("read"));
        let b_gz = gz("b.pcap.gz", &std::fs::read(&b).expect("read"));
        let ng_gz = gz("whole.pcapng.gz", &bytes);
        let cut_gz = dir.join("cut.pcap.gz");
        let mut z = std::fs::read(&whole_gz).expect("read");
        z.truncate(z.len() * 2 / 3);
        std::fs::write(&cut_gz, z).expect("write");
        std::fs::write(&ng, bytes).expect("write");
        let split = Split { chunk_bytes: chunk, chunks_in_flight: per };
        for paths in [
            vec![whole.clone()],
            vec![a.clone(), b.clone()],
            vec![ng.clone()],
            vec![whole_gz, ng_gz],
            vec![a.clone(), b_gz],
            vec![cut_gz],
        ] {
            for (name, cfg) in configs() {
                let one = run(&paths, cfg, 1, Split::default());
                let many = run(&paths, cfg, threads, split);
                prop_assert_eq!(one, many, "{}", name);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

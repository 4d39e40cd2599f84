//! `flowdoc-fixturegen [DIR]`: writes every fixture into DIR (default `fixtures/`).
//! `flowdoc-fixturegen --bench FILE PACKETS FLOWS`: writes a benchmark capture.
//! `flowdoc-fixturegen --syn-scan FILE FLOWS`: writes a SYN scan of FLOWS distinct flows.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use flowdoc_catalogue::Catalogue;

const USAGE: &str = "usage: flowdoc-fixturegen [DIR]                        every fixture into DIR (default fixtures/)
       flowdoc-fixturegen --bench FILE PACKETS FLOWS   a benchmark capture
       flowdoc-fixturegen --syn-scan FILE FLOWS        a SYN scan of FLOWS distinct flows";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cat = Catalogue::embedded();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("--syn-scan") {
        let (Some(path), Some(Ok(f))) = (args.get(1), args.get(2).map(|f| f.parse::<u32>())) else {
            eprintln!("usage: flowdoc-fixturegen --syn-scan FILE FLOWS");
            return ExitCode::from(2);
        };
        let res = std::fs::File::create(path).and_then(|file| {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let n = flowdoc_fixturegen::bench::write_syn_scan(&mut w, f)?;
            std::io::Write::flush(&mut w)?;
            Ok(n)
        });
        return match res {
            Ok(b) => {
                println!("{path}: {f} SYNs, {b} bytes");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("flowdoc-fixturegen: {path}: {e}");
                ExitCode::from(2)
            }
        };
    }
    if args.first().map(String::as_str) == Some("--bench") {
        let (Some(path), Some(p), Some(f)) = (args.get(1), args.get(2), args.get(3)) else {
            eprintln!("usage: flowdoc-fixturegen --bench FILE PACKETS FLOWS");
            return ExitCode::from(2);
        };
        let (Ok(p), Ok(f)) = (p.parse::<u64>(), f.parse::<u32>()) else {
            eprintln!("flowdoc-fixturegen: PACKETS and FLOWS must be whole numbers");
            return ExitCode::from(2);
        };
        let res = std::fs::File::create(path).and_then(|file| {
            let mut w = BufWriter::with_capacity(1 << 20, file);
            flowdoc_fixturegen::bench::write_capture(&mut w, &cat, p, f)
        });
        return match res {
            Ok(b) => {
                println!("{path}: {p} packets, {f} flows, {b} bytes");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("flowdoc-fixturegen: {path}: {e}");
                ExitCode::from(2)
            }
        };
    }
    // Anything else that looks like an option is one this tool does not have, not a directory
    // to fill with fixtures.
    if args.len() > 1 || args.first().is_some_and(|a| a.starts_with('-')) {
        eprintln!("flowdoc-fixturegen: unexpected arguments {args:?}\n{USAGE}");
        return ExitCode::from(2);
    }
    let dir = PathBuf::from(args.first().map_or("fixtures", String::as_str));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("flowdoc-fixturegen: {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    for (name, bytes) in flowdoc_fixturegen::fixtures::all(&cat) {
        let path = dir.join(&name);
        let parent = path
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        if let Err(e) = std::fs::create_dir_all(&parent).and_then(|_| std::fs::write(&path, &bytes))
        {
            eprintln!("flowdoc-fixturegen: {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!("{}: {} bytes", path.display(), bytes.len());
    }
    ExitCode::SUCCESS
}

//! The generator's command line: help and mistakes never write fixtures where nobody asked.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An empty directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("flowdoc-gen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixturegen(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowdoc-fixturegen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run flowdoc-fixturegen")
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn help_prints_the_usage_and_writes_nothing() {
    let dir = Scratch::new("help");
    for flag in ["--help", "-h"] {
        let out = fixturegen(dir.path(), &[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--bench FILE PACKETS FLOWS"),
            "{flag}: {text}"
        );
        assert!(text.contains("--syn-scan FILE FLOWS"), "{flag}: {text}");
    }
    assert_eq!(entries(dir.path()), 0, "help made files");
}

#[test]
fn an_unknown_option_or_a_second_directory_is_refused() {
    let dir = Scratch::new("refused");
    for args in [&["--dir"][..], &["-x"], &["a", "b"]] {
        let out = fixturegen(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unexpected arguments"), "{args:?}: {err}");
        assert!(err.contains("usage: flowdoc-fixturegen"), "{args:?}: {err}");
    }
    assert_eq!(entries(dir.path()), 0, "a refused run made files");
}

#[test]
fn a_directory_gets_every_fixture() {
    let dir = Scratch::new("all");
    let out = fixturegen(dir.path(), &["out"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join("out/cluster.pcap").is_file());
    assert!(dir.path().join("out/broken/bad-magic.pcap").is_file());
}

//! Shared by the test targets that drive outside tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A program on PATH (or in /usr/sbin, /sbin, where Debian puts nft and iptables-restore).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Debian's Chromium, if installed.
pub fn chromium() -> Option<PathBuf> {
    tool("chromium").or_else(|| tool("chromium-browser"))
}

/// Runs headless Chromium on `url` with a profile in `profile`, console messages on stderr.
pub fn headless(chromium: &Path, profile: &Path, extra: &[&str], url: &str) -> Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium")
}

/// The console lines Chromium logged (errors the page raised).
pub fn console(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

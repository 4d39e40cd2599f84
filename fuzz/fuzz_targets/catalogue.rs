//! Any text as a catalogue, and as a site overlay on the shipped catalogue.
#![no_main]
use std::sync::OnceLock;

use flowdoc_catalogue::Catalogue;
use libfuzzer_sys::fuzz_target;

static SHIPPED: OnceLock<Catalogue> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Catalogue::from_toml_str(text, "fuzz.toml");
    let mut cat = SHIPPED.get_or_init(Catalogue::embedded).clone();
    let _ = cat.apply_overlay(text, "fuzz-overlay.toml");
});

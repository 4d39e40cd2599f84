//! Any text as a catalogue, and as a site overlay on the shipped catalogue.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = flowdoc_catalogue::Catalogue::from_toml_str(text, "fuzz.toml");
    let mut cat = flowdoc_catalogue::Catalogue::embedded();
    let _ = cat.apply_overlay(text, "fuzz-overlay.toml");
});

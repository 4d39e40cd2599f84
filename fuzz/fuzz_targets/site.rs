//! Any text as the files a site writes: an inventory, and a firewall policy in each format
//! `flowdoc check` reads.
#![no_main]
use flowdoc_inventory::Inventory;
use flowdoc_report::policy::{parse, PolicyFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(inv) = Inventory::from_toml_str(text, "fuzz.toml") {
        // Every name it accepted answers for its own addresses.
        for h in &inv.hosts {
            for &a in &h.addresses {
                assert!(inv.lookup(a).is_some());
            }
        }
    }
    for format in [PolicyFormat::Csv, PolicyFormat::Nftables, PolicyFormat::Asa] {
        let _ = parse(text, "fuzz-policy", format);
    }
});

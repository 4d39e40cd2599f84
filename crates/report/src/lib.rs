//! What flowdoc tells its users: the JSON flow record (a public contract), CSV, and the
//! terminal report.
//!
//! [`FlowRecord`] is the one description of a labelled flow; JSON Lines and CSV are written
//! from it, and the terminal report ([`TableReport`]) aggregates the same flows by catalogue
//! label. Rendering never colours JSON or CSV; the terminal report takes its colour and width
//! decisions from the caller.

mod app;
pub mod compliance;
mod html;
pub mod policy;
mod record;
pub mod rules;
mod terminal;

pub use app::{escape, summary as app_summary};
pub use compliance::{Compliance, ComplianceReport};
pub use record::{
    rfc3339, CsvWriter, EndpointRecord, FlowRecord, JsonLines, MatchRecord, SideRecord,
};
pub use terminal::{RenderOptions, TableReport};

use flowdoc_inventory::Inventory;

/// A host as reports show it: "name (address)" when the inventory knows it.
pub fn host_label(inv: Option<&Inventory>, ip: std::net::IpAddr) -> String {
    match inv.and_then(|i| i.lookup(ip)) {
        Some(w) => format!("{} ({ip})", w.name),
        None => ip.to_string(),
    }
}

//! What flowdoc tells its users: the JSON flow record (a public contract), CSV, and the
//! terminal report.
//!
//! [`FlowRecord`] is the one description of a labelled flow; JSON Lines and CSV are written
//! from it, and the terminal report ([`TableReport`]) aggregates the same flows by catalogue
//! label. Rendering never colours JSON or CSV; the terminal report takes its colour and width
//! decisions from the caller.

mod app;
mod record;
mod terminal;

pub use app::{escape, summary as app_summary};
pub use record::{rfc3339, CsvWriter, EndpointRecord, FlowRecord, MatchRecord, SideRecord};
pub use terminal::{RenderOptions, TableReport};

//! The IM and Presence port guide as typed, validated data.
//!
//! The shipped catalogue (`catalogue.toml`, embedded in the binary) holds every row of the 30
//! tables of Cisco's port-usage guide. [`Catalogue::load`] reads a user's own file instead, and
//! [`Catalogue::apply_overlay`] applies site changes ("LDAP listens on 3269 here") without
//! editing the shipped file. Bad data is rejected with `file:line:column: what is wrong`.
//!
//! Lookups are O(1): [`PortIndex`] maps a (transport, port) pair straight to the rows that
//! document it. This crate knows nothing of packets or flows.
//!
//! ```
//! use flowdoc_catalogue::{Catalogue, Transport};
//! let cat = Catalogue::embedded();
//! let rows = cat.index().by_listener(Transport::Tcp, 5269);
//! assert_eq!(cat.row(rows[0]).label, "XCP server-to-server (S2S)");
//! ```

mod compiled;
mod index;
mod load;

pub use index::PortIndex;
pub use load::{line_column, CatalogueError};

pub use flowdoc_identify::App;
use serde::{Deserialize, Serialize};

/// The catalogue shipped with flowdoc, as text.
pub const EMBEDDED_TOML: &str = include_str!("../catalogue.toml");
/// The name errors in the shipped catalogue are reported against.
pub const EMBEDDED_NAME: &str = "<embedded catalogue.toml>";

/// A transport as the guide documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
        }
    }
}

/// What the guide says about the sender's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourcePort {
    /// Any ephemeral port (エフェメラル).
    Ephemeral,
    /// Table 30's 双方向: either side may open the connection.
    Bidirectional,
    /// A fixed port, e.g. 8500 to 8500 or 8888 to 8889.
    Fixed(u16),
}

/// One table of the guide.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Table {
    pub number: u8,
    pub title: String,
    pub title_ja: String,
}

/// The guide's cells for a row, verbatim (Japanese), so every reading can be checked.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Original {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transport: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub port: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remark: String,
}

/// One row of the guide: a documented service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub id: String,
    pub table: u8,
    pub label: String,
    pub from: String,
    pub to: String,
    pub both_directions: bool,
    pub protocol: String,
    pub transports: Vec<Transport>,
    pub ports: Vec<u16>,
    pub configurable: bool,
    pub source_port: SourcePort,
    pub localhost_only: bool,
    /// What the payload must look like, where the guide names a protocol flowdoc can check.
    /// `None`: proprietary, unnamed or not checkable; no payload finding then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Expect>,
    pub remark: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set when a site overlay changed or added this row: the overlay's file and its note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub original: Original,
}

/// A row's expected payload: a protocol, TLS, or a protocol over TLS.
///
/// Written in the catalogue as `"sip"`, `"tls"` or `"sip/tls"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The protocol (inside TLS when `tls`); `None` with `tls` means "TLS, inside unseen".
    pub app: Option<App>,
    /// The guide documents TLS here: plaintext is a finding.
    pub tls: bool,
}

impl Expect {
    /// Parses `"sip"`, `"tls"`, `"sip/tls"`.
    pub fn parse(s: &str) -> Option<Expect> {
        if s == "tls" {
            return Some(Expect {
                app: None,
                tls: true,
            });
        }
        let (name, tls) = match s.strip_suffix("/tls") {
            Some(n) => (n, true),
            None => (s, false),
        };
        let app = App::from_name(name).filter(|a| *a != App::Tls)?;
        Some(Expect {
            app: Some(app),
            tls,
        })
    }

    /// Whether a flow identified as `app` (with STARTTLS `taken` or not) fits.
    pub fn accepts(&self, app: App, starttls_taken: bool) -> bool {
        if self.tls {
            app == App::Tls || (Some(app) == self.app && starttls_taken)
        } else {
            Some(app) == self.app
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.app, self.tls) {
            (None, _) => f.write_str("tls"),
            (Some(a), true) => write!(f, "{a}/tls"),
            (Some(a), false) => write!(f, "{a}"),
        }
    }
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Expect::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown payload {s:?}: one of {}", expect_names()))
        })
    }
}

/// The payload names a catalogue may use, for error messages.
pub fn expect_names() -> String {
    let mut names: Vec<&str> = App::ALL.iter().map(|a| a.as_str()).collect();
    names.push("<name>/tls");
    names.join(", ")
}

impl Row {
    pub fn has_transport(&self, t: Transport) -> bool {
        self.transports.contains(&t)
    }
}

/// Index of a row in [`Catalogue::rows`].
pub type RowId = u16;

/// The validated catalogue with its port index.
#[derive(Debug, Clone)]
pub struct Catalogue {
    version: String,
    source: String,
    tables: Vec<Table>,
    rows: Vec<Row>,
    index: PortIndex,
}

impl Catalogue {
    /// The shipped catalogue, read from its validated form (see [`compiled`]; the TOML text
    /// itself only if that form does not parse). It is validated by the tests, so failure
    /// here is a build defect.
    pub fn embedded() -> Catalogue {
        if let Some(c) = compiled::load() {
            return c;
        }
        match Catalogue::from_toml_str(EMBEDDED_TOML, EMBEDDED_NAME) {
            Ok(c) => c,
            Err(e) => panic!("the embedded catalogue is invalid: {e}"),
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }
    /// Where the catalogue came from, with any overlays applied.
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }
    pub fn table(&self, number: u8) -> Option<&Table> {
        self.tables.iter().find(|t| t.number == number)
    }
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
    pub fn row(&self, id: RowId) -> &Row {
        &self.rows[usize::from(id)]
    }
    pub fn row_by_id(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }
    pub fn index(&self) -> &PortIndex {
        &self.index
    }

    fn rebuild_index(&mut self) {
        self.index = PortIndex::build(&self.rows);
    }
}

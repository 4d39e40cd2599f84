//! Text to validated [`Catalogue`]: every error names the file, line and column.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::{Catalogue, Expect, Original, PortIndex, Row, SourcePort, Table, Transport};

/// A catalogue or overlay that cannot be used, with the place that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    version: Option<String>,
    #[serde(default, rename = "table")]
    tables: Vec<Spanned<RawTable>>,
    #[serde(default, rename = "row")]
    rows: Vec<Spanned<RawRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    number: Spanned<u8>,
    title: String,
    #[serde(default)]
    title_ja: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    id: Spanned<String>,
    table: Spanned<u8>,
    label: Spanned<String>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    both_directions: bool,
    #[serde(default)]
    protocol: String,
    transport: Spanned<Vec<Spanned<String>>>,
    ports: Spanned<Vec<Spanned<i64>>>,
    #[serde(default)]
    configurable: bool,
    source_port: Spanned<toml::Value>,
    #[serde(default)]
    localhost_only: bool,
    payload: Option<Spanned<String>>,
    #[serde(default)]
    remark: String,
    note: Option<String>,
    #[serde(default)]
    original: Original,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    #[serde(default, rename = "change")]
    changes: Vec<Spanned<RawChange>>,
    #[serde(default, rename = "row")]
    rows: Vec<Spanned<RawRow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChange {
    id: Spanned<String>,
    ports: Option<Spanned<Vec<Spanned<i64>>>>,
    add_ports: Option<Spanned<Vec<Spanned<i64>>>>,
    transport: Option<Spanned<Vec<Spanned<String>>>>,
    localhost_only: Option<bool>,
    payload: Option<Spanned<String>>,
    note: Option<String>,
}

/// Turns byte offsets into `file:line:column` errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

/// The 1-based line and column (in characters) of byte `offset` of `text`: how every file
/// error of flowdoc says where (the catalogue, overlays, inventories).
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let upto = &text[..end];
    let line = upto.matches('\n').count() + 1;
    let column = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> CatalogueError {
        let (line, column) = line_column(self.text, span.start);
        CatalogueError::Invalid {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    fn toml_err(&self, e: toml::de::Error) -> CatalogueError {
        let span = e.span().unwrap_or(0..0);
        self.err(span, e.message().trim().to_string())
    }

    fn port(&self, p: &Spanned<i64>) -> Result<u16, CatalogueError> {
        match u16::try_from(*p.get_ref()) {
            Ok(0) | Err(_) => Err(self.err(
                p.span(),
                format!("{} is not a port number (1 to 65535)", p.get_ref()),
            )),
            Ok(v) => Ok(v),
        }
    }

    fn ports(&self, ps: &[Spanned<i64>]) -> Result<Vec<u16>, CatalogueError> {
        let mut out = Vec::with_capacity(ps.len());
        for p in ps {
            let v = self.port(p)?;
            if out.contains(&v) {
                return Err(self.err(p.span(), format!("port {v} is listed twice")));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn expect(&self, p: &Spanned<String>, id: &str) -> Result<Expect, CatalogueError> {
        Expect::parse(p.get_ref()).ok_or_else(|| {
            self.err(
                p.span(),
                format!(
                    "row {id}: payload {:?} is not one of {}",
                    p.get_ref(),
                    crate::expect_names()
                ),
            )
        })
    }

    fn transports(
        &self,
        ts: &Spanned<Vec<Spanned<String>>>,
    ) -> Result<Vec<Transport>, CatalogueError> {
        let mut out = Vec::new();
        for t in ts.get_ref() {
            let v = match t.get_ref().as_str() {
                "tcp" => Transport::Tcp,
                "udp" => Transport::Udp,
                "icmp" => Transport::Icmp,
                other => {
                    return Err(self.err(
                        t.span(),
                        format!(
                            "unknown transport {other:?}: expected \"tcp\", \"udp\" or \"icmp\""
                        ),
                    ))
                }
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Err(self.err(ts.span(), "a row needs at least one transport"));
        }
        Ok(out)
    }

    fn row(&self, raw: &Spanned<RawRow>, tables: &[Table]) -> Result<Row, CatalogueError> {
        let r = raw.get_ref();
        let id = r.id.get_ref().trim();
        if id.is_empty() {
            return Err(self.err(r.id.span(), "row id is empty"));
        }
        let table = *r.table.get_ref();
        if !tables.iter().any(|t| t.number == table) {
            return Err(self.err(
                r.table.span(),
                format!("row {id}: table {table} is not declared in a [[table]] section"),
            ));
        }
        if r.label.get_ref().trim().is_empty() {
            return Err(self.err(r.label.span(), format!("row {id}: label is empty")));
        }
        let transports = self.transports(&r.transport)?;
        let ports = self.ports(r.ports.get_ref())?;
        let source_port = match r.source_port.get_ref() {
            toml::Value::String(s) if s == "ephemeral" => SourcePort::Ephemeral,
            toml::Value::String(s) if s == "bidirectional" => SourcePort::Bidirectional,
            toml::Value::Integer(n) => SourcePort::Fixed(
                self.port(&Spanned::new(r.source_port.span(), *n))?,
            ),
            other => {
                return Err(self.err(
                    r.source_port.span(),
                    format!(
                        "row {id}: source_port {other} is not \"ephemeral\", \"bidirectional\" or a port number"
                    ),
                ))
            }
        };
        let icmp_only = transports == [Transport::Icmp];
        if transports.contains(&Transport::Icmp) && !ports.is_empty() {
            return Err(self.err(
                r.ports.span(),
                format!("row {id}: ICMP has no ports; leave ports empty (the guide's cell goes in original.port)"),
            ));
        }
        if ports.is_empty() && !icmp_only {
            let fixed = matches!(source_port, SourcePort::Fixed(_));
            if !(r.configurable && fixed) {
                return Err(self.err(
                    raw.span(),
                    format!("row {id}: no listener port; only a configurable row with a fixed source_port may omit ports, or it could never match a flow"),
                ));
            }
        }
        Ok(Row {
            id: id.to_string(),
            table,
            label: r.label.get_ref().trim().to_string(),
            from: r.from.clone(),
            to: r.to.clone(),
            both_directions: r.both_directions,
            protocol: r.protocol.clone(),
            transports,
            ports,
            configurable: r.configurable,
            source_port,
            localhost_only: r.localhost_only,
            payload: r.payload.as_ref().map(|p| self.expect(p, id)).transpose()?,
            remark: r.remark.clone(),
            note: r.note.clone(),
            site: None,
            original: r.original.clone(),
        })
    }

    fn push_rows(
        &self,
        raws: &[Spanned<RawRow>],
        tables: &[Table],
        rows: &mut Vec<Row>,
        site: Option<&str>,
    ) -> Result<(), CatalogueError> {
        let mut seen: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
        for raw in raws {
            let mut row = self.row(raw, tables)?;
            if !seen.insert(row.id.clone()) {
                return Err(self.err(
                    raw.get_ref().id.span(),
                    format!("row id {} is used twice", row.id),
                ));
            }
            if rows.len() >= usize::from(u16::MAX) {
                return Err(self.err(raw.span(), "too many rows (at most 65535)"));
            }
            row.site = site.map(|s| format!("{s}: added"));
            rows.push(row);
        }
        Ok(())
    }
}

impl Catalogue {
    /// Parses and validates a catalogue; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Catalogue, CatalogueError> {
        let cx = Ctx { file, text };
        let raw: RawCatalogue = toml::from_str(text).map_err(|e| cx.toml_err(e))?;
        let mut tables: Vec<Table> = Vec::new();
        for t in &raw.tables {
            let n = *t.get_ref().number.get_ref();
            if tables.iter().any(|x| x.number == n) {
                return Err(cx.err(
                    t.get_ref().number.span(),
                    format!("table {n} is declared twice"),
                ));
            }
            tables.push(Table {
                number: n,
                title: t.get_ref().title.clone(),
                title_ja: t.get_ref().title_ja.clone(),
            });
        }
        let mut rows = Vec::new();
        cx.push_rows(&raw.rows, &tables, &mut rows, None)?;
        if rows.is_empty() {
            return Err(cx.err(0..0, "the catalogue has no [[row]]"));
        }
        for t in &raw.tables {
            let n = *t.get_ref().number.get_ref();
            if !rows.iter().any(|r| r.table == n) {
                return Err(cx.err(t.span(), format!("table {n} has no rows")));
            }
        }
        let mut cat = Catalogue {
            version: raw.version.unwrap_or_default(),
            source: file.to_string(),
            tables,
            rows,
            index: PortIndex::default(),
        };
        cat.rebuild_index();
        Ok(cat)
    }

    /// Reads a catalogue file that replaces the shipped one.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let name = path.display().to_string();
        let text = read(path)?;
        Catalogue::from_toml_str(&text, &name)
    }

    /// Applies a site overlay file: `[[change]]` edits rows by id, `[[row]]` adds rows.
    pub fn apply_overlay_file(&mut self, path: &Path) -> Result<(), CatalogueError> {
        let name = path.display().to_string();
        let text = read(path)?;
        self.apply_overlay(&text, &name)
    }

    /// Applies a site overlay given as text; on error the catalogue is unchanged.
    pub fn apply_overlay(&mut self, text: &str, file: &str) -> Result<(), CatalogueError> {
        let cx = Ctx { file, text };
        let raw: RawOverlay = toml::from_str(text).map_err(|e| cx.toml_err(e))?;
        let mut rows = self.rows.clone();
        for ch in &raw.changes {
            let c = ch.get_ref();
            let id = c.id.get_ref();
            let Some(row) = rows.iter_mut().find(|r| &r.id == id) else {
                return Err(cx.err(
                    c.id.span(),
                    format!("no row with id {id:?} in the catalogue"),
                ));
            };
            if let Some(ps) = &c.ports {
                row.ports = cx.ports(ps.get_ref())?;
            }
            if let Some(ps) = &c.add_ports {
                for p in ps.get_ref() {
                    let v = cx.port(p)?;
                    if !row.ports.contains(&v) {
                        row.ports.push(v);
                    }
                }
            }
            if let Some(ts) = &c.transport {
                row.transports = cx.transports(ts)?;
            }
            if let Some(l) = c.localhost_only {
                row.localhost_only = l;
            }
            if let Some(p) = &c.payload {
                row.payload = if p.get_ref() == "none" {
                    None
                } else {
                    Some(cx.expect(p, id)?)
                };
            }
            if row.ports.is_empty()
                && !row.transports.contains(&Transport::Icmp)
                && !matches!(row.source_port, SourcePort::Fixed(_))
            {
                return Err(cx.err(
                    ch.span(),
                    format!("row {id}: the change leaves no port to match"),
                ));
            }
            let what = c.note.as_deref().unwrap_or("changed");
            row.site = Some(format!("{file}: {what}"));
        }
        cx.push_rows(&raw.rows, &self.tables, &mut rows, Some(file))?;
        self.rows = rows;
        self.source = format!("{} + {}", self.source, file);
        self.rebuild_index();
        Ok(())
    }
}

fn read(path: &Path) -> Result<String, CatalogueError> {
    std::fs::read_to_string(path).map_err(|source| CatalogueError::Io {
        file: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
[[table]]
number = 2
title = "SIP proxy requests"

[[row]]
id = "T2.1"
table = 2
label = "SIP proxy"
transport = ["tcp", "udp"]
ports = [5060]
source_port = "ephemeral"
"#;

    fn invalid(text: &str) -> String {
        match Catalogue::from_toml_str(text, "site.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn embedded_catalogue_holds_every_row_of_the_guide() {
        let cat = Catalogue::embedded();
        assert_eq!(cat.rows().len(), 92);
        let tables: HashSet<u8> = cat.rows().iter().map(|r| r.table).collect();
        assert_eq!(tables, (2..=30).collect());
    }

    #[test]
    fn payload_expectations_follow_the_guide() {
        let cat = Catalogue::embedded();
        let r = |id: &str| {
            cat.row_by_id(id)
                .and_then(|r| r.payload)
                .map(|p| p.to_string())
        };
        assert_eq!(r("T2.1").as_deref(), Some("sip"));
        assert_eq!(r("T2.3").as_deref(), Some("sip/tls"));
        assert_eq!(r("T4.3").as_deref(), Some("tls"));
        assert_eq!(r("T22.2").as_deref(), Some("xmpp"));
        // Proprietary and ambiguous rows are not checked.
        assert_eq!(r("T25.1"), None);
        assert_eq!(r("T4.1"), None);
        let bad = invalid(&MINI.replace("source_port", "payload = \"sipp\"\nsource_port"));
        assert!(bad.starts_with("site.toml:12:11:"), "{bad}");
        assert!(
            bad.contains("payload \"sipp\" is not one of sip, tls"),
            "{bad}"
        );
    }

    #[test]
    fn the_219999_typo_is_corrected_and_quoted() {
        let cat = Catalogue::embedded();
        let row = cat.row_by_id("T30.9").expect("row T30.9");
        assert_eq!(row.ports, vec![21999]);
        assert_eq!(row.original.port, "219999");
        assert!(row.note.as_deref().unwrap_or("").contains("219999"));
    }

    #[test]
    fn quirky_cells_are_read_on_purpose() {
        let cat = Catalogue::embedded();
        let r = |id: &str| cat.row_by_id(id).unwrap_or_else(|| panic!("{id}"));
        assert_eq!(r("T5.1").ports, vec![389, 3268]);
        assert_eq!(r("T12.1").ports, vec![161, 8161]);
        assert_eq!(r("T14.1").ports, vec![8888, 8889]);
        assert_eq!(r("T11.3").source_port, SourcePort::Fixed(8888));
        assert_eq!(r("T9.1").source_port, SourcePort::Fixed(8500));
        let trap = r("T12.7");
        assert!(trap.configurable && trap.ports.is_empty());
        assert_eq!(trap.source_port, SourcePort::Fixed(61441));
        assert!(r("T23.1").configurable);
        assert_eq!(r("T19.1").transports, vec![Transport::Tcp, Transport::Udp]);
        assert_eq!(r("T19.1").ports, vec![50020]);
        assert_eq!(r("T29.1").transports, vec![Transport::Icmp]);
        assert!(r("T29.1").ports.is_empty());
        assert_eq!(r("T30.2").source_port, SourcePort::Bidirectional);
        assert!(r("T2.4").localhost_only && !r("T2.1").localhost_only);
        assert!(r("T2.1").both_directions);
    }

    #[test]
    fn a_port_out_of_range_is_rejected_with_its_line() {
        let text = MINI.replace("[5060]", "[219999]");
        let e = invalid(&text);
        assert!(e.starts_with("site.toml:11:10:"), "{e}");
        assert!(e.contains("219999 is not a port number"), "{e}");
    }

    #[test]
    fn unknown_transport_and_fields_are_rejected() {
        let e = invalid(&MINI.replace("\"udp\"]", "\"sctp\"]"));
        assert!(
            e.starts_with("site.toml:10:21:") && e.contains("unknown transport \"sctp\""),
            "{e}"
        );
        let e = invalid(&format!("{MINI}colour = \"red\"\n"));
        assert!(e.starts_with("site.toml:") && e.contains("colour"), "{e}");
    }

    #[test]
    fn undeclared_table_and_duplicate_ids_are_rejected() {
        let e = invalid(&MINI.replace("table = 2", "table = 9"));
        assert!(e.contains("table 9 is not declared"), "{e}");
        let twice = format!("{MINI}\n{}", &MINI[MINI.find("[[row]]").unwrap_or(0)..]);
        assert!(invalid(&twice).contains("row id T2.1 is used twice"));
    }

    #[test]
    fn a_row_without_any_port_is_rejected() {
        let e = invalid(&MINI.replace("[5060]", "[]"));
        assert!(e.contains("no listener port"), "{e}");
    }

    #[test]
    fn overlay_moves_ldap_and_postgres_without_touching_the_rest() {
        let mut cat = Catalogue::embedded();
        cat.apply_overlay(
            "[[change]]\nid = \"T5.1\"\nports = [3269]\nnote = \"LDAP on 3269 here\"\n\n[[change]]\nid = \"T23.1\"\nadd_ports = [5433]\n",
            "site.toml",
        )
        .expect("overlay applies");
        let ldap = cat.index().by_listener(Transport::Tcp, 3269);
        assert_eq!(cat.row(ldap[0]).id, "T5.1");
        assert!(cat.index().by_listener(Transport::Tcp, 389).is_empty());
        let pg = cat.index().by_listener(Transport::Tcp, 5433);
        assert_eq!(cat.row(pg[0]).id, "T23.1");
        assert!(cat.index().is_listener(Transport::Tcp, 5432));
        assert_eq!(
            cat.row(ldap[0]).site.as_deref(),
            Some("site.toml: LDAP on 3269 here")
        );
    }

    #[test]
    fn overlay_errors_name_the_line_and_leave_the_catalogue_whole() {
        let mut cat = Catalogue::embedded();
        let e = cat
            .apply_overlay(
                "[[change]]\nid = \"T5.1\"\nports = [3269]\n\n[[change]]\nid = \"T99.1\"\n",
                "site.toml",
            )
            .map(|_| ())
            .expect_err("unknown id");
        assert_eq!(
            e.to_string(),
            "site.toml:6:6: no row with id \"T99.1\" in the catalogue"
        );
        assert!(cat.index().is_listener(Transport::Tcp, 389));
    }
}

//! The shipped catalogue as it is once validated, kept as JSON next to its TOML.
//!
//! Every run labels with the shipped catalogue, and reading `catalogue.toml` (62 KB: the TOML
//! parser with each value's place kept for error messages, then the checks) took about 1 ms
//! a run, a third of a run on a small capture. `catalogue.json` is what that reading makes
//! (tables and rows, every value in its final form; pretty-printed, so that its diffs read
//! row by row), read with serde_json and no checks: they passed when it was made. It is made
//! from the TOML by `UPDATE_GOLDEN=1 cargo test -p flowdoc-catalogue compiled`, and the test
//! fails when it is not what the TOML reads as, so the TOML stays the one source.

use serde::{Deserialize, Serialize};

use crate::{Catalogue, PortIndex, Row, Table, EMBEDDED_NAME};

/// `catalogue.toml` as validated: see the module's text.
const COMPILED_JSON: &str = include_str!("../catalogue.json");

/// What a validated catalogue is made of, apart from its source's name and its index.
#[derive(Serialize, Deserialize)]
struct Compiled {
    version: String,
    tables: Vec<Table>,
    rows: Vec<Row>,
}

/// The shipped catalogue from its validated form; `None` when that does not parse.
pub(crate) fn load() -> Option<Catalogue> {
    let c: Compiled = serde_json::from_str(COMPILED_JSON).ok()?;
    let mut cat = Catalogue {
        version: c.version,
        source: EMBEDDED_NAME.to_string(),
        tables: c.tables,
        rows: c.rows,
        index: PortIndex::default(),
    };
    cat.rebuild_index();
    Some(cat)
}

/// The validated form of a catalogue, as `catalogue.json` holds it.
#[cfg(test)]
fn compile(cat: &Catalogue) -> String {
    let c = Compiled {
        version: cat.version.clone(),
        tables: cat.tables.clone(),
        rows: cat.rows.clone(),
    };
    let mut text = serde_json::to_string_pretty(&c).expect("a catalogue serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Transport, EMBEDDED_TOML};

    #[test]
    fn the_compiled_catalogue_is_what_the_toml_reads_as() {
        let from_toml = Catalogue::from_toml_str(EMBEDDED_TOML, EMBEDDED_NAME).expect("valid");
        let want = compile(&from_toml);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/catalogue.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &want).expect("write catalogue.json");
            return;
        }
        assert!(
            COMPILED_JSON == want,
            "{path} is not what catalogue.toml reads as: make it again with \
             UPDATE_GOLDEN=1 cargo test -p flowdoc-catalogue compiled"
        );
        // What is read back is the same catalogue: every row, table and lookup.
        let loaded = load().expect("catalogue.json parses");
        assert_eq!(compile(&loaded), want);
        assert_eq!(loaded.source(), from_toml.source());
        for t in [Transport::Tcp, Transport::Udp] {
            for port in 0..=u16::MAX {
                assert_eq!(
                    loaded.index().by_listener(t, port),
                    from_toml.index().by_listener(t, port)
                );
                assert_eq!(
                    loaded.index().by_fixed_source(t, port),
                    from_toml.index().by_fixed_source(t, port)
                );
            }
        }
        assert_eq!(Catalogue::embedded().rows().len(), from_toml.rows().len());
    }
}

//! Entry points of the fuzz targets (`fuzz/`), shared with the fuzz smoke
//! test (`tests/fuzz_smoke.rs`) so both feed inputs through the same code.
//!
//! Each function takes arbitrary bytes and must never panic: bad input is an
//! error value. Where an input is accepted, the function also checks that
//! what flipover writes back reads again the same (a round trip), since a
//! file flipover wrote and cannot read back is a bug as well.

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::topology;
use crate::wire::plan::PlanDocument;

/// Name the fuzzed topology text pretends to have (its directory only
/// matters for secret files, which parsing does not read).
const TOPOLOGY_PATH: &str = "fuzz/topology.toml";

/// `topology::parse` (syntax, shape, validation), rendering of its
/// diagnostics, and the `import` writer's round trip on what it accepts.
pub fn topology(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match topology::parse(text, Path::new(TOPOLOGY_PATH)) {
        Ok(parsed) => {
            let written = topology::to_toml(&parsed);
            let reparsed = topology::parse(&written, Path::new(TOPOLOGY_PATH))
                .unwrap_or_else(|e| panic!("a written topology does not parse: {e:?}\n{written}"));
            assert_eq!(
                topology::to_toml(&reparsed),
                written,
                "writing a topology is not stable"
            );
            true
        }
        Err(error) => {
            // Diagnostics point into the text by byte spans: rendering them
            // is where a bad span would panic.
            let mut out = String::new();
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                .render_report(&mut out, &error)
                .expect("rendering into a String cannot fail");
            false
        }
    }
}

/// The plan-file reader (`flipover apply PLAN` / `show`): version, shape and
/// hash checks; an accepted document must write back to one that reads the same.
pub fn plan_file(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match PlanDocument::from_json(text) {
        Ok(document) => {
            let again = PlanDocument::from_json(&document.to_json())
                .expect("a plan document flipover wrote reads back");
            assert_eq!(again, document, "a plan document changes on a round trip");
            true
        }
        Err(error) => {
            // Error messages are shown to people: building them must not panic.
            let _ = error.to_string();
            false
        }
    }
}

//! One variable regenerates every expected output: `UPDATE_EXPECTED=1`
//! rewrites the golden plans, the JSON Schemas and the insta snapshots
//! instead of comparing against them (the older `UPDATE_GOLDEN` and
//! `UPDATE_SCHEMAS` still work). Included by path by the tests that compare
//! outputs, so they need not build the sandbox support.

// Each including test uses one of the two.
#![allow(dead_code)]

/// Whether this run rewrites expected outputs (`legacy`: the older
/// variable this kind of output also answers to).
pub fn updating(legacy: &str) -> bool {
    std::env::var_os("UPDATE_EXPECTED").is_some() || std::env::var_os(legacy).is_some()
}

/// With `UPDATE_EXPECTED` set, insta writes snapshots instead of failing.
pub fn insta_follows() {
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        // Set before any snapshot is taken; the tests of a file share this.
        std::env::set_var("INSTA_UPDATE", "always");
    }
}

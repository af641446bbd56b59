//! Entry points of the agent's fuzz targets (`fuzz/`), shared with the fuzz
//! smoke test (`agent/tests/fuzz_smoke.rs`) so both run the same code.
//! Each takes arbitrary bytes, must never panic, and answers whether the
//! input was accepted.

use std::path::Path;

use crate::mycnf::MyCnf;
use crate::protocol::{
    CloneReceiveRequest, CloneSendRequest, ConfirmCloneRequest, FenceRequest, LiftFenceRequest,
    LocalProbeRequest, RemoteProbeRequest, StartRequest,
};

/// Where the fuzzed my.cnf pretends to live: a directory that does not
/// exist, so relative `!include`s find nothing.
const MYCNF_ORIGIN: &str = "/nonexistent-flipover-fuzz/my.cnf";

/// The my.cnf parser and everything the agent derives from a parsed file
/// (merged server options, datadir, settings, error log).
pub fn mycnf(data: &[u8]) -> bool {
    // The agent reads its file lossily too (`read_file`).
    let text = String::from_utf8_lossy(data);
    // An absolute include would read this machine's files (/dev/zero is
    // endless): the agent's own my.cnf is trusted, fuzz input is not.
    if text.lines().any(|line| {
        line.trim_start()
            .strip_prefix('!')
            .and_then(|d| d.split_once(char::is_whitespace))
            .is_some_and(|(_, arg)| arg.trim_start().starts_with('/'))
    }) {
        return false;
    }
    let Ok(cnf) = MyCnf::parse_str(&text, Path::new(MYCNF_ORIGIN)) else {
        return false;
    };
    for version in [None, Some((10, 11)), Some((8, 0))] {
        let _ = cnf.server_options(version);
        let _ = cnf.datadir(version);
        let _ = cnf.settings(version);
        let _ = cnf.log_error(version);
    }
    true
}

/// The JSON bodies of the agent's POST routes, decoded as the server's
/// `Json` extractor does (`serde_json::from_slice`); what decodes must
/// encode back to the same request.
pub fn requests(data: &[u8]) -> bool {
    // Not `||`: every type gets every input.
    round_trip::<CloneReceiveRequest>(data)
        | round_trip::<CloneSendRequest>(data)
        | round_trip::<ConfirmCloneRequest>(data)
        | round_trip::<StartRequest>(data)
        | round_trip::<LocalProbeRequest>(data)
        | round_trip::<RemoteProbeRequest>(data)
        | round_trip::<FenceRequest>(data)
        | round_trip::<LiftFenceRequest>(data)
}

fn round_trip<T>(data: &[u8]) -> bool
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(request) = serde_json::from_slice::<T>(data) else {
        return false;
    };
    let json = serde_json::to_vec(&request).expect("a request serializes");
    let again: T = serde_json::from_slice(&json).expect("a serialized request decodes");
    assert_eq!(again, request);
    true
}

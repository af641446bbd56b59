#![no_main]

use libfuzzer_sys::fuzz_target;

// The stream framing lives in the agent binary, not its library: include
// the file itself so the target fuzzes exactly the code the agent runs.
#[allow(dead_code)]
#[path = "../../agent/src/server/clone/stream.rs"]
mod stream;

fuzz_target!(|data: &[u8]| {
    let _ = stream::fuzz_decode(data);
});

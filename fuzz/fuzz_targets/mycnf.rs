#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flipover_agent::fuzz_entry::mycnf(data);
});

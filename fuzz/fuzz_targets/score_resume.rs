//! Any bytes as an earlier `cxr score` output being resumed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let header: Vec<String> = ["path", "p_covid", "class", "model_sha256", "error"].map(String::from).to_vec();
    if let Ok(run) = cxr_core::results::read_earlier_run(Path::new("fuzz.csv"), bytes, &header, "ab12", "fuzz-model") {
        assert!(run.scored.iter().all(|row| row.len() == header.len() && row[4].is_empty() && &row[3] == "ab12"));
    }
});

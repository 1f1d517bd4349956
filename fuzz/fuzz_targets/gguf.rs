//! Fuzz target: `parse_gguf` on arbitrary bytes, then spec building on whatever parses.
//! Must never panic, hang or allocate beyond what the input holds; every tensor of an
//! accepted file lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_formats::{ModelSpec, parse_gguf};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = parse_gguf(data) else { return };
    for t in &file.tensors {
        let end = t.offset.checked_add(t.n_bytes).expect("accepted tensor end fits u64");
        assert!(end <= data.len() as u64, "accepted tensor {} lies outside the input", t.name);
    }
    let _ = ModelSpec::from_gguf(&file);
});

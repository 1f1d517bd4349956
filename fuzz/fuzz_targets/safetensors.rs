//! Fuzz target: `parse_safetensors` on arbitrary bytes. Must never panic, hang or allocate
//! beyond what the input holds; accepted tensors tile the data section exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skiff_formats::parse_safetensors;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = parse_safetensors(data) else { return };
    let mut next = header.data_offset;
    for t in &header.tensors {
        assert_eq!(t.offset, next, "accepted tensor {} is not contiguous", t.name);
        next += t.n_bytes;
    }
    assert_eq!(next, data.len() as u64, "accepted tensors do not end at EOF");
});

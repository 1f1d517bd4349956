//! Property "fuzzing" on every `cargo test`: random mutations (bit flips, truncations,
//! splices, u64 overwrites with extreme values) of the header bytes of a real small GGUF
//! (the committed `tiny.gguf`) and of a safetensors file. The parsers must return `Ok` or
//! `Err` — never panic — quickly, and whatever they accept must be in bounds. The seed is
//! fixed, so failures reproduce; proptest prints the shrunk failing mutation list.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use skiff_formats::{ModelSpec, parse_gguf, parse_safetensors};

/// One edit of the input.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip bit `bit` of byte `pos`.
    BitFlip { pos: usize, bit: u8 },
    /// Cut the input to `len` bytes.
    Truncate { len: usize },
    /// Copy `len` bytes from `from` over position `to`.
    Splice { from: usize, to: usize, len: usize },
    /// Write `value` little-endian at `pos`.
    OverwriteU64 { pos: usize, value: u64 },
}

/// Values that tend to break size arithmetic.
fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 31),
        Just(1 << 62),
        Just(1 << 32),
        Just(u32::MAX as u64),
        any::<u64>(),
        0u64..64,
    ]
}

/// Mutations touching the first `span` bytes (the header region).
fn mutation(span: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (0..span, 0u8..8).prop_map(|(pos, bit)| Mutation::BitFlip { pos, bit }),
        1 => (0..span).prop_map(|len| Mutation::Truncate { len }),
        2 => (0..span, 0..span, 1usize..64).prop_map(|(from, to, len)| Mutation::Splice { from, to, len }),
        3 => (0..span, extreme_u64()).prop_map(|(pos, value)| Mutation::OverwriteU64 { pos, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::BitFlip { pos, bit } => {
            if let Some(b) = bytes.get_mut(pos) {
                *b ^= 1 << bit;
            }
        }
        Mutation::Truncate { len } => bytes.truncate(len),
        Mutation::Splice { from, to, len } => {
            let src: Vec<u8> = bytes.iter().skip(from).take(len).copied().collect();
            for (i, b) in src.into_iter().enumerate() {
                if let Some(dst) = bytes.get_mut(to + i) {
                    *dst = b;
                }
            }
        }
        Mutation::OverwriteU64 { pos, value } => {
            for (i, b) in value.to_le_bytes().into_iter().enumerate() {
                if let Some(dst) = bytes.get_mut(pos + i) {
                    *dst = b;
                }
            }
        }
    }
}

fn config() -> Config {
    Config {
        cases: 3000,
        rng_seed: RngSeed::Fixed(0x5EED_5C1F),
        failure_persistence: None,
        ..Config::default()
    }
}

fn tiny_gguf() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/formats/tiny.gguf");
    std::fs::read(path).expect("tiny.gguf is committed")
}

/// A two-tensor safetensors file with metadata.
fn small_safetensors() -> Vec<u8> {
    let header = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},"__metadata__":{"format":"pt"}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend((0u8..22).collect::<Vec<_>>());
    out
}

const DEADLINE: Duration = Duration::from_millis(200);

proptest! {
    #![proptest_config(config())]

    /// Mutated GGUF headers parse or fail cleanly, fast; accepted tensors lie in the input.
    #[test]
    fn mutated_gguf_never_panics(mutations in prop::collection::vec(mutation(1920), 1..6)) {
        let mut bytes = tiny_gguf();
        mutations.iter().for_each(|m| apply(&mut bytes, m));
        let start = Instant::now();
        if let Ok(file) = parse_gguf(&bytes) {
            for t in &file.tensors {
                prop_assert!(t.offset + t.n_bytes <= bytes.len() as u64, "{} out of bounds", t.name);
            }
            let _ = ModelSpec::from_gguf(&file);
        }
        prop_assert!(start.elapsed() < DEADLINE, "took {:?}", start.elapsed());
    }

    /// Mutated safetensors headers parse or fail cleanly, fast; accepted spans tile the data.
    #[test]
    fn mutated_safetensors_never_panics(mutations in prop::collection::vec(mutation(180), 1..6)) {
        let mut bytes = small_safetensors();
        mutations.iter().for_each(|m| apply(&mut bytes, m));
        let start = Instant::now();
        if let Ok(h) = parse_safetensors(&bytes) {
            let end = h.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap_or(h.data_offset);
            prop_assert_eq!(end, bytes.len() as u64);
        }
        prop_assert!(start.elapsed() < DEADLINE, "took {:?}", start.elapsed());
    }
}

//! `quant` against the `gguf` Python package: the fixtures in `testdata/quant/`, written by
//! `tools/reference/make_quant_fixtures.py`. Dequantization must match bit for bit,
//! quantization byte for byte.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};
use skiff_tensor::DType;
use skiff_tensor::quant::{dequantize, quantize};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/quant")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn index() -> Value {
    serde_json::from_slice(&read("index.json")).expect("index.json is JSON")
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// One fixture entry: its type, value count and the two files.
fn entry(e: &Value) -> (DType, usize, Vec<u8>, Vec<u8>) {
    let name = e["dtype"].as_str().expect("dtype");
    let dtype = DType::from_name(name).unwrap_or_else(|| panic!("unknown dtype {name}"));
    let n_values = e["n_values"].as_u64().expect("n_values") as usize;
    let input = read(e["input"].as_str().expect("input"));
    let expected = read(e["expected"].as_str().expect("expected"));
    (dtype, n_values, input, expected)
}

/// Every type gguf can dequantize: our output has the same f32 bit patterns.
#[test]
fn dequantize_is_bit_exact_with_gguf() {
    let index = index();
    let entries = index["dequantize"].as_array().expect("dequantize list");
    assert_eq!(
        entries.len(),
        13,
        "F32, F16, BF16, 5 legacy and 5 K-quant types"
    );
    for e in entries {
        let (dtype, n_values, input, expected) = entry(e);
        let mut got = vec![0.0f32; n_values];
        dequantize(dtype, &input, &mut got).unwrap_or_else(|err| panic!("{dtype}: {err}"));
        let want = f32s(&expected);
        assert_eq!(want.len(), n_values, "{dtype} fixture length");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{dtype} value {i}: got {g:e}, gguf {w:e}"
            );
        }
    }
}

/// Every type gguf can quantize: our bytes are identical.
#[test]
fn quantize_is_byte_exact_with_gguf() {
    let index = index();
    let entries = index["quantize"].as_array().expect("quantize list");
    assert_eq!(
        entries.len(),
        8,
        "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0"
    );
    for e in entries {
        let (dtype, n_values, input, expected) = entry(e);
        let x = f32s(&input);
        assert_eq!(x.len(), n_values, "{dtype} fixture length");
        let mut got = vec![0u8; expected.len()];
        quantize(dtype, &x, &mut got).unwrap_or_else(|err| panic!("{dtype}: {err}"));
        let block = dtype.block_bytes();
        for (i, (g, w)) in got.chunks(block).zip(expected.chunks(block)).enumerate() {
            assert_eq!(
                g,
                w,
                "{dtype} block {i}, input {:?}",
                &x[i * dtype.block_len()..][..dtype.block_len().min(8)]
            );
        }
    }
}

/// All 65536 f16 values widen to the f32 bit patterns numpy gives (NaN payloads included).
#[test]
fn every_f16_widens_like_numpy() {
    let bytes: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    let mut out = vec![0.0f32; 65536];
    dequantize(DType::F16, &bytes, &mut out).expect("whole buffer");
    let mut hash = Sha256::new();
    for v in &out {
        hash.update(v.to_le_bytes());
    }
    let got: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        got,
        index()["f16_all_sha256"].as_str().expect("f16_all_sha256")
    );
}

/// Types gguf cannot quantize (the K-quants, Q8_1, Q8_K), and the legacy ones as a
/// cross-check: our bytes are identical to ggml's C `quantize_row_*_ref`
/// (`tools/reference/make_quant_ggml_fixtures.py`).
#[test]
fn quantize_is_byte_exact_with_ggml_reference() {
    let index: Value = serde_json::from_slice(&read("ggml_index.json")).expect("ggml_index.json");
    let x = f32s(&read("ggml_in.f32"));
    assert_eq!(
        x.len() as u64,
        index["n_values"].as_u64().expect("n_values")
    );
    let entries = index["quantize"].as_array().expect("quantize list");
    assert_eq!(entries.len(), 12);
    for e in entries {
        let name = e["dtype"].as_str().expect("dtype");
        let dtype = DType::from_name(name).unwrap_or_else(|| panic!("unknown dtype {name}"));
        let expected = read(e["expected"].as_str().expect("expected"));
        let mut got = vec![0u8; expected.len()];
        quantize(dtype, &x, &mut got).unwrap_or_else(|err| panic!("{dtype}: {err}"));
        let block = dtype.block_bytes();
        for (i, (g, w)) in got.chunks(block).zip(expected.chunks(block)).enumerate() {
            let diff = g.iter().zip(w).position(|(a, b)| a != b);
            assert_eq!(g, w, "{dtype} block {i}: first differing byte {diff:?}");
        }
    }
}

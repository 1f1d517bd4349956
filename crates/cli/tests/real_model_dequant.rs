//! Every tensor of the real test models, dequantized by `skiff_tensor::quant`, matches the
//! `gguf` Python package bit for bit: the SHA-256 of each tensor's f32 bit patterns equals
//! the digest in `testdata/quant/*_dequant_digest.json` (written by
//! `tools/reference/make_quant_digest.py`).
//!
//! Needs `SKIFF_TEST_MODEL_DIR` (the folder holding `SmolLM2-135M-Instruct.Q4_1.gguf` and
//! `gemma-3-270m-q4_k_m.gguf`). Unset: the tests say they are skipped and pass. Set but a
//! file missing: they fail.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};
use skiff_formats::ModelFile;
use skiff_tensor::quant::to_f32_vec;

/// The model file `name` in `SKIFF_TEST_MODEL_DIR`, or `None` (skip) when the variable is unset.
fn model_path(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        println!("skipped: SKIFF_TEST_MODEL_DIR is not set (it should hold {name})");
        return None;
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} does not exist",
        path.display()
    );
    Some(path)
}

fn digest_file(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/quant")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("digest is JSON")
}

fn sha256_hex(values: &[f32]) -> String {
    let mut hash = Sha256::new();
    for chunk in values.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        hash.update(&bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Dequantizes every tensor of `model_name` and compares it with `digest_name`.
fn check_model(model_name: &str, digest_name: &str) {
    let Some(path) = model_path(model_name) else {
        return;
    };
    let model = ModelFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let digest = digest_file(digest_name);
    let expected = digest["tensors"].as_array().expect("tensor list");
    assert_eq!(
        model.spec().tensors.len(),
        expected.len(),
        "{model_name}: tensor count"
    );
    for want in expected {
        let name = want["name"].as_str().expect("name");
        let (info, bytes) = model
            .tensor(name)
            .unwrap_or_else(|e| panic!("{model_name}: {e}"));
        assert_eq!(
            info.dtype.name(),
            want["dtype"].as_str().expect("dtype"),
            "{name}"
        );
        let values = to_f32_vec(info.dtype, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            values.len() as u64,
            want["n_values"].as_u64().expect("n_values"),
            "{name}"
        );
        let got = sha256_hex(&values);
        if got != want["sha256_f32"].as_str().expect("sha256_f32") {
            let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
            let sum_sq: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            panic!(
                "{model_name}: {name} ({}) differs from gguf-py: sum {sum} vs {}, sum of squares {sum_sq} vs {}",
                info.dtype, want["sum"], want["sum_sq"]
            );
        }
    }
}

/// SmolLM2-135M (Q4_1, Q8_0, F32): every tensor bit-exact with `gguf.quants.dequantize`.
#[test]
fn smollm2_every_tensor_dequantizes_like_gguf_py() {
    check_model(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2_dequant_digest.json",
    );
}

/// Gemma-3-270M (Q4_K, Q6_K, Q5_0, Q8_0, F32): every tensor bit-exact with gguf-py.
#[test]
fn gemma3_every_tensor_dequantizes_like_gguf_py() {
    check_model("gemma-3-270m-q4_k_m.gguf", "gemma3_dequant_digest.json");
}

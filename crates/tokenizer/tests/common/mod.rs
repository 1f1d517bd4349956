//! Shared helpers of the integration tests: locating real models and fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use skiff_tokenizer::Tokenizer;

/// The real GGUF `file` under `SKIFF_TEST_MODEL_DIR`, or `None` (with a note on stderr)
/// when the variable is unset. Panics with a clear message when the variable is set but
/// the file is missing: CI always sets it, so a missing file is a broken setup.
pub fn model_path(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!(
            "skipped: SKIFF_TEST_MODEL_DIR is not set, so the real-model test for {file} did not run"
        );
        return None;
    };
    let path = PathBuf::from(dir).join(file);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} does not exist",
        path.display()
    );
    Some(path)
}

/// The `ModelSpec` of a real model file, read through the formats crate as the engine does.
pub fn load_spec(path: &Path) -> skiff_formats::ModelSpec {
    let model = skiff_formats::ModelFile::open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    model.spec().clone()
}

/// Loads the tokenizer of a real model through the formats crate, as the engine does.
pub fn load_tokenizer(file: &str) -> Option<Tokenizer> {
    let path = model_path(file)?;
    let spec = load_spec(&path);
    let tok = Tokenizer::from_spec(&spec.tokenizer)
        .unwrap_or_else(|e| panic!("tokenizer of {}: {e}", path.display()));
    Some(tok)
}

/// A committed fixture under `testdata/tokenizer/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/tokenizer")
        .join(name)
}

/// Reads and parses a JSON fixture.
pub fn json_fixture(name: &str) -> serde_json::Value {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A JSON array of integers as token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("ids are an array")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("ids are integers")).expect("ids fit u32"))
        .collect()
}

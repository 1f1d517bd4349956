//! Helpers shared by the end-to-end tests: fixture paths, golden logits written by
//! `tools/reference/make_model_fixtures.py`, and running whole sequences.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::{Batch, KvCache, Model};

/// `testdata/models/<family>/<rel>`.
pub fn fixture(family: &str, rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/models")
        .join(family)
        .join(rel)
}

/// Opens and loads a fixture model (`hf`, `f32.gguf` or `q8_0.gguf`).
pub fn load(family: &str, rel: &str) -> Model {
    let path = fixture(family, rel);
    let file = ModelFile::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    Model::load(Arc::new(file)).unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

/// Golden logits of one family: the token sequences and, per variant, their logits.
pub struct Reference {
    pub n_vocab: usize,
    /// `(name, tokens)` in file order.
    pub sequences: Vec<(String, Vec<u32>)>,
    /// Variant name (`hf`, `hf_no_window`) -> per sequence, `[n_tokens * n_vocab]`.
    pub variants: BTreeMap<String, Vec<Vec<f32>>>,
}

impl Reference {
    /// Reads `reference.json` and its `.f32` files.
    pub fn load(family: &str) -> Reference {
        let text =
            std::fs::read_to_string(fixture(family, "reference.json")).expect("reference.json");
        let index: serde_json::Value = serde_json::from_str(&text).expect("reference.json parses");
        let n_vocab = index["n_vocab"].as_u64().expect("n_vocab") as usize;
        let sequences: Vec<(String, Vec<u32>)> = index["sequences"]
            .as_array()
            .expect("sequences")
            .iter()
            .map(|s| {
                let tokens = s["tokens"].as_array().expect("tokens");
                let name = s["name"].as_str().expect("name").to_string();
                (
                    name,
                    tokens
                        .iter()
                        .map(|t| t.as_u64().expect("token id") as u32)
                        .collect(),
                )
            })
            .collect();
        let mut variants = BTreeMap::new();
        for (name, v) in index["variants"].as_object().expect("variants") {
            let bytes = std::fs::read(fixture(family, v["file"].as_str().expect("file")))
                .expect("logits file");
            let all: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let mut rows = Vec::new();
            let mut start = 0;
            for (_, tokens) in &sequences {
                let len = tokens.len() * n_vocab;
                rows.push(all[start..start + len].to_vec());
                start += len;
            }
            assert_eq!(
                start,
                all.len(),
                "{family}/{name}: file size matches the sequences"
            );
            variants.insert(name.clone(), rows);
        }
        Reference {
            n_vocab,
            sequences,
            variants,
        }
    }
}

/// Runs `tokens` as one sequence in one batch (slot 0 of a fresh cache) and returns the
/// logits of every position, `[n_tokens * n_vocab]`.
pub fn run_prompt(model: &Model, cpu: &Cpu, tokens: &[u32]) -> Vec<f32> {
    let mut kv = model.new_kv_cache(1, model.max_seq_len());
    let mut batch = Batch::for_sequence(tokens, 0, 0);
    batch.logit_rows = (0..tokens.len()).collect();
    model.forward(&batch, &mut kv, cpu).expect("forward").data
}

/// Runs `tokens` one token per forward call, returning the logits of every position.
pub fn run_token_by_token(
    model: &Model,
    cpu: &Cpu,
    kv: &mut KvCache,
    slot: usize,
    tokens: &[u32],
) -> Vec<f32> {
    let mut out = Vec::new();
    for (pos, &token) in tokens.iter().enumerate() {
        let batch = Batch::for_sequence(&[token], pos as u32, slot);
        out.extend(model.forward(&batch, kv, cpu).expect("forward").data);
    }
    out
}

/// Largest absolute element-wise difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute value.
pub fn max_abs(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// Index of the largest value of each `n_vocab`-wide row.
pub fn argmax_rows(logits: &[f32], n_vocab: usize) -> Vec<usize> {
    logits
        .chunks_exact(n_vocab)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

/// A GGUF file taken apart for editing: metadata in file order and tensors with their bytes.
pub struct GgufParts {
    pub metadata: Vec<(String, skiff_formats::gguf::MetaValue)>,
    /// `(name, dims, dtype, bytes)`.
    pub tensors: Vec<(String, Vec<u64>, skiff_tensor::DType, Vec<u8>)>,
}

impl GgufParts {
    /// Reads `testdata/models/<family>/<rel>`.
    pub fn read(family: &str, rel: &str) -> GgufParts {
        let bytes = std::fs::read(fixture(family, rel)).expect("fixture readable");
        let file = skiff_formats::gguf::parse_gguf(&bytes).expect("fixture parses");
        let tensors = file
            .tensors
            .iter()
            .map(|t| {
                let data = bytes[t.offset as usize..(t.offset + t.n_bytes) as usize].to_vec();
                (t.name.clone(), t.dims.clone(), t.dtype, data)
            })
            .collect();
        GgufParts {
            metadata: file.metadata,
            tensors,
        }
    }

    /// Replaces (or adds) metadata `key`.
    pub fn set_meta(&mut self, key: &str, value: skiff_formats::gguf::MetaValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Writes the parts as a GGUF file at `path` and opens it as a model file.
    pub fn write(&self, path: &std::path::Path) -> ModelFile {
        self.try_write(path).expect("rewritten file opens")
    }

    /// Writes the parts as a GGUF file at `path` and tries to open it.
    pub fn try_write(&self, path: &std::path::Path) -> Result<ModelFile, skiff_formats::Error> {
        let mut w = skiff_formats::gguf::GgufWriter::new();
        for (k, v) in &self.metadata {
            if k != "GGUF.version" {
                w.add_meta(k, v.clone()).expect("metadata accepted");
            }
        }
        for (name, dims, dtype, _) in &self.tensors {
            w.add_tensor_info(name, dims, *dtype)
                .expect("tensor info accepted");
        }
        let out = std::fs::File::create(path).expect("create temp gguf");
        let mut stream = w
            .begin(std::io::BufWriter::new(out))
            .expect("header written");
        for (name, _, _, data) in &self.tensors {
            stream
                .write_tensor_data(name, data)
                .expect("tensor written");
        }
        std::io::Write::flush(&mut stream.finish().expect("finished")).expect("flushed");
        ModelFile::open(path)
    }
}

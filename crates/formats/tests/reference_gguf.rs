//! Our GGUF reader against the reference `gguf` Python package: the committed fixtures under
//! `testdata/formats/` were dumped by `tools/reference/formats_fixtures.py` with
//! `gguf.GGUFReader`, and every metadata value and tensor info must match.
//!
//! The real-model checks need `SKIFF_TEST_MODEL_DIR` (a folder holding
//! `SmolLM2-135M-Instruct.Q4_1.gguf` and `gemma-3-270m-q4_k_m.gguf`); without it they print
//! that they were skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;
use skiff_formats::{MetaValue, ModelFile, RopePairing, TensorInfo, TokenizerSpec, parse_gguf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_json(name: &str) -> Value {
    let path = repo_root().join("testdata/formats").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The real model `file`, or `None` (with a message) when `SKIFF_TEST_MODEL_DIR` is unset.
fn real_model(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!("SKIFF_TEST_MODEL_DIR is not set: skipped the test on {file}");
        return None;
    };
    let path = Path::new(&dir).join(file);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} is missing",
        path.display()
    );
    Some(path)
}

/// Python's `contents()` flattens nested arrays; do the same to compare.
fn flatten(v: &MetaValue, out: &mut Vec<MetaValue>) {
    match v {
        MetaValue::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other.clone()),
    }
}

fn scalar_matches(ours: &MetaValue, want: &Value) -> bool {
    match ours {
        MetaValue::String(s) => want.as_str() == Some(s),
        MetaValue::Bool(b) => want.as_bool() == Some(*b),
        MetaValue::F32(_) | MetaValue::F64(_) => want.as_f64() == ours.as_f64(),
        MetaValue::U64(u) => want.as_u64() == Some(*u),
        int => want.as_i64() == int.as_i64(),
    }
}

fn type_chain(v: &MetaValue) -> Vec<&'static str> {
    match v {
        MetaValue::Array(items) => {
            let mut chain = vec!["ARRAY"];
            chain.extend(items.first().map(type_chain).unwrap_or_default());
            chain
        }
        other => vec![other.type_name()],
    }
}

/// Compares metadata types (and values, where the dump holds them) with the reference.
fn check_metadata(file: &skiff_formats::GgufFile, want: &Value) {
    let want = want["metadata"].as_object().expect("metadata object");
    assert_eq!(file.metadata.len(), want.len(), "metadata key count");
    for (key, ours) in &file.metadata {
        let w = &want[key.as_str()];
        let types: Vec<&str> = w["types"]
            .as_array()
            .expect("types")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(type_chain(ours), types, "{key} types");
        if let Some(len) = w.get("len") {
            assert_eq!(
                ours.as_array().map(<[MetaValue]>::len),
                len.as_u64().map(|l| l as usize),
                "{key} len"
            );
            continue;
        }
        let value = &w["value"];
        if value.get("str_len").is_some() {
            assert_eq!(
                ours.as_str().map(str::len),
                value["str_len"].as_u64().map(|l| l as usize),
                "{key}"
            );
            continue;
        }
        let mut flat = Vec::new();
        flatten(ours, &mut flat);
        match value.as_array() {
            Some(items) => {
                assert_eq!(flat.len(), items.len(), "{key} length");
                for (o, w) in flat.iter().zip(items) {
                    assert!(scalar_matches(o, w), "{key}: {o:?} != {w}");
                }
            }
            None => assert!(scalar_matches(ours, value), "{key}: {ours:?} != {value}"),
        }
    }
}

fn check_tensors(ours: &[TensorInfo], want: &Value) {
    let want = want["tensors"].as_array().expect("tensors array");
    assert_eq!(ours.len(), want.len(), "tensor count");
    for (t, w) in ours.iter().zip(want) {
        assert_eq!(t.name, w["name"].as_str().expect("name"));
        let dims: Vec<u64> = w["dims"]
            .as_array()
            .expect("dims")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        assert_eq!(t.dims, dims, "{} dims", t.name);
        assert_eq!(
            t.dtype.name(),
            w["type"].as_str().expect("type").to_ascii_lowercase(),
            "{} type",
            t.name
        );
        assert_eq!(Some(t.offset), w["offset"].as_u64(), "{} offset", t.name);
        assert_eq!(Some(t.n_bytes), w["n_bytes"].as_u64(), "{} n_bytes", t.name);
        assert_eq!(t.shard, 0);
    }
}

/// The fixture written by `gguf.GGUFWriter` parses to exactly what `gguf.GGUFReader` sees,
/// including every value type and nested arrays, and builds a valid spec.
#[test]
fn tiny_fixture_matches_python_reader() {
    let path = repo_root().join("testdata/formats/tiny.gguf");
    let bytes = std::fs::read(&path).expect("tiny.gguf is committed");
    let file = parse_gguf(&bytes).expect("tiny.gguf parses");
    let want = fixture_json("tiny.json");
    assert_eq!(
        u64::from(file.version),
        want["version"].as_u64().expect("version")
    );
    check_metadata(&file, &want);
    check_tensors(&file.tensors, &want);
    let nested = file.get("test.array_nested").expect("nested array");
    let want_nested = MetaValue::Array(vec![
        MetaValue::Array(vec![MetaValue::I32(1), MetaValue::I32(2)]),
        MetaValue::Array(vec![MetaValue::I32(3)]),
    ]);
    assert_eq!(nested, &want_nested);

    let model = ModelFile::open(&path).expect("tiny.gguf opens as a model");
    let spec = model.spec();
    assert_eq!(
        (
            spec.arch.as_str(),
            spec.hparams.n_layers,
            spec.hparams.d_model
        ),
        ("llama", 1, 64)
    );
    assert_eq!(
        (
            spec.hparams.n_heads,
            spec.hparams.n_kv_heads,
            spec.hparams.head_dim
        ),
        (4, 2, 16)
    );
    assert_eq!(
        (
            spec.hparams.n_vocab,
            spec.hparams.ffn_dim,
            spec.hparams.max_seq_len
        ),
        (8, 96, 128)
    );
    assert!(spec.hparams.tie_embeddings);
    assert_eq!(spec.hparams.rope.pairing, RopePairing::Interleaved);
    let (info, data) = model.tensor("output_norm.weight").expect("present");
    assert_eq!(data.len() as u64, info.n_bytes);
    assert_eq!(&bytes[info.offset as usize..][..data.len()], data);
    assert_eq!(model.file_size(), bytes.len() as u64);
    assert!(model.tensor("output.weight").is_err());
}

/// SmolLM2-135M-Instruct: spec from metadata, and every tensor as the reference sees it.
#[test]
fn smollm2_spec_and_tensors() {
    let Some(path) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let model = ModelFile::open(&path).expect("SmolLM2 opens");
    let spec = model.spec();
    let h = &spec.hparams;
    assert_eq!(spec.arch, "llama");
    assert_eq!(
        (h.n_layers, h.d_model, h.n_heads, h.n_kv_heads),
        (30, 576, 9, 3)
    );
    assert_eq!(
        (h.head_dim, h.ffn_dim, h.n_vocab, h.max_seq_len),
        (64, 1536, 49152, 8192)
    );
    assert!(h.tie_embeddings);
    assert_eq!(h.rope.pairing, RopePairing::Interleaved);
    assert_eq!((h.rope.theta, h.rope.rot_dim), (100_000.0, 64));
    assert!(
        spec.chat_template
            .as_deref()
            .is_some_and(|t| t.contains("im_start"))
    );
    assert_eq!(spec.norm_weight_offset, 0.0);
    let TokenizerSpec::Gguf(vocab) = &spec.tokenizer else {
        panic!("embedded vocabulary expected")
    };
    assert_eq!(
        (vocab.model.as_str(), vocab.tokens.len(), vocab.merges.len()),
        ("gpt2", 49152, 48900)
    );
    assert_eq!(
        (vocab.special.bos, vocab.special.eos, vocab.special.add_bos),
        (Some(1), Some(2), Some(false))
    );

    let bytes = std::fs::read(&path).expect("readable");
    let file = parse_gguf(&bytes).expect("parses");
    let want = fixture_json("smollm2.json");
    check_metadata(&file, &want);
    check_tensors(&spec.tensors, &want);
    assert_eq!(model.file_size(), bytes.len() as u64);
}

/// Gemma 3 270M: spec from metadata, and every tensor as the reference sees it.
#[test]
fn gemma3_spec_and_tensors() {
    let Some(path) = real_model("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let model = ModelFile::open(&path).expect("Gemma 3 opens");
    let spec = model.spec();
    let h = &spec.hparams;
    assert_eq!(spec.arch, "gemma3");
    assert_eq!(
        (h.n_layers, h.d_model, h.n_heads, h.n_kv_heads),
        (18, 640, 4, 1)
    );
    assert_eq!(
        (h.head_dim, h.head_dim_v, h.ffn_dim, h.n_vocab),
        (256, 256, 2048, 262144)
    );
    assert_eq!((h.max_seq_len, h.sliding_window), (32768, Some(512)));
    assert_eq!(h.norm_eps, 1e-6);
    assert!(h.tie_embeddings);
    assert_eq!(h.rope.pairing, RopePairing::Neox);
    assert_eq!((h.rope.theta, h.rope.rot_dim), (1_000_000.0, 256));
    assert_eq!(spec.chat_template, None);
    let TokenizerSpec::Gguf(vocab) = &spec.tokenizer else {
        panic!("embedded vocabulary expected")
    };
    assert_eq!(
        (vocab.model.as_str(), vocab.tokens.len(), vocab.scores.len()),
        ("llama", 262144, 262144)
    );
    assert_eq!(
        (vocab.special.bos, vocab.special.eos, vocab.special.add_bos),
        (Some(2), Some(1), Some(true))
    );

    let bytes = std::fs::read(&path).expect("readable");
    let file = parse_gguf(&bytes).expect("parses");
    let want = fixture_json("gemma3.json");
    check_metadata(&file, &want);
    check_tensors(&spec.tensors, &want);
}

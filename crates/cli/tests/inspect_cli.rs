//! End-to-end tests of `skiff inspect` on a tiny GGUF written here, on broken files, and
//! on the real SmolLM2 and Gemma 3 files when `SKIFF_TEST_MODEL_DIR` is set. The real-model
//! figures were read with the reference reader (`gguf` python package):
//! `GGUFReader(path).tensors` → `n_elements`, `n_bytes`, `tensor_type` per tensor.

mod store_fixture;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use store_fixture::{fails, ok, run, tiny, write_tiny_gguf};

fn inspect_json(args: &[&str]) -> Value {
    let mut all = vec!["inspect", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&run(&all))).expect("inspect --json prints one JSON object")
}

#[test]
fn the_tiny_model_is_described_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "tiny.gguf");
    let m = model.to_str().expect("utf8");
    let j = inspect_json(&[m]);
    assert_eq!(j["arch"], "llama");
    assert_eq!(j["name"], "tiny store test");
    assert_eq!(j["n_params"], tiny::N_PARAMS);
    assert_eq!(
        j["file_size"],
        std::fs::metadata(&model).expect("meta").len()
    );
    assert_eq!(j["file_type"], "F16");
    assert_eq!(j["context_length"], tiny::CTX);
    assert_eq!(
        (
            j["n_layers"].as_u64(),
            j["d_model"].as_u64(),
            j["ffn_dim"].as_u64()
        ),
        (Some(1), Some(64), Some(128))
    );
    assert_eq!(
        (
            j["n_heads"].as_u64(),
            j["n_kv_heads"].as_u64(),
            j["head_dim"].as_u64()
        ),
        (Some(4), Some(2), Some(16))
    );
    assert_eq!(j["n_vocab"], 4);
    assert_eq!(j["tokenizer"], "gpt2 BPE (pre: smollm)");
    assert_eq!(j["chat_template"], true);
    assert_eq!(j["tensor_types"][0]["dtype"], "F16");
    assert_eq!(j["tensor_types"][0]["n_tensors"], 2);
    assert_eq!(j["tensor_types"][0]["n_bytes"], tiny::F16_BYTES);
    assert_eq!(j["tensor_types"][1]["dtype"], "F32");
    assert_eq!(j["tensor_types"][1]["n_tensors"], 3);
    assert_eq!(j["tensor_types"][1]["n_bytes"], tiny::F32_BYTES);

    // Default ctx = the model's 256: KV = 1 layer × 2 KV heads × (16 + 16) × 256 × 1 × 2 B;
    // scratch = 4 × (256 × (4·64 + 3·128 + 4·256) + 1 × 4).
    let mem = &j["memory"];
    assert_eq!(mem["ctx"], tiny::CTX);
    assert_eq!(mem["ctx_is_default"], true);
    assert_eq!(mem["weights_bytes"], tiny::F16_BYTES + tiny::F32_BYTES);
    assert_eq!(mem["kv_cache_bytes"], 32_768);
    assert_eq!(mem["scratch_bytes"], 1_703_952);
    assert_eq!(mem["total_bytes"], 13_824 + 32_768 + 1_703_952);

    // ctx 16 × parallel 2: KV = 2·32·16·2·2; scratch = 4 × (16 × (256 + 384 + 4·16) + 2 × 4).
    let mem = &inspect_json(&[m, "--ctx", "16", "--parallel", "2"])["memory"];
    assert_eq!(
        (mem["ctx"].as_u64(), mem["parallel"].as_u64()),
        (Some(16), Some(2))
    );
    assert_eq!(mem["ctx_is_default"], false);
    assert_eq!(mem["kv_cache_bytes"], 4_096);
    assert_eq!(mem["scratch_bytes"], 45_088);
    assert_eq!(mem["total_bytes"], 13_824 + 4_096 + 45_088);
}

#[test]
fn the_text_report_names_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "tiny.gguf");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf8");
    ok(&run(&[
        "pull",
        model.to_str().expect("utf8"),
        "--store",
        s,
        "--name",
        "tiny",
    ]));
    let out = ok(&run(&["inspect", "tiny", "--store", s]));
    for line in [
        "architecture    llama",
        "parameters      6.5K (6528)",
        "quantization    F16",
        "context length  256",
        "shape           1 layers, d_model 64, 4 heads (2 KV, head_dim 16), ffn_dim 128",
        "vocabulary      4 (gpt2 BPE (pre: smollm))",
        "chat template   yes",
        "memory at ctx 256 (the model's context length; set with --ctx) x parallel 1",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("F16") && l.contains("2 tensors")),
        "{out}"
    );
}

#[test]
fn broken_files_fail_fast_with_the_formats_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = dir.path().join("huge-count.gguf");
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes()); // n_tensors
    bytes.extend_from_slice(&0u64.to_le_bytes()); // n_kv
    std::fs::write(&huge, bytes).expect("write");
    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, b"just some text, not a model").expect("write");
    for path in [&huge, &text] {
        let start = Instant::now();
        let err = fails(&run(&["inspect", path.to_str().expect("utf8")]));
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
        assert!(
            err.contains(&format!("cannot read {}", path.display())),
            "{err}"
        );
    }
    let err = fails(&run(&["inspect", "x.gguf", "--ctx", "0"]));
    assert!(err.contains("--ctx"), "{err}");
}

/// The real model file `name`, from `SKIFF_TEST_MODEL_DIR`; `None` (skipped) when unset.
fn real_model(name: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!("skipped: SKIFF_TEST_MODEL_DIR is not set");
        return None;
    };
    let path = PathBuf::from(dir).join(name);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} is missing",
        path.display()
    );
    Some(path)
}

#[test]
fn smollm2_figures_match_the_reference_reader() {
    let Some(path) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let j = inspect_json(&[path.to_str().expect("utf8")]);
    assert_eq!(j["arch"], "llama");
    assert_eq!(j["n_params"], 134_515_008);
    assert_eq!(j["file_size"], 98_362_432);
    assert_eq!(j["file_type"], "Q4_1");
    assert_eq!(j["context_length"], 8192);
    assert_eq!(j["n_vocab"], 49_152);
    assert_eq!(j["tokenizer"], "gpt2 BPE (pre: smollm)");
    assert_eq!(j["chat_template"], true);
    let types: Vec<(String, u64, u64)> = j["tensor_types"]
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["dtype"].as_str().expect("dtype").to_string(),
                t["n_tensors"].as_u64().expect("n"),
                t["n_bytes"].as_u64().expect("b"),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("Q4_1".into(), 210, 66_355_200),
            ("Q8_0".into(), 1, 30_081_024),
            ("F32".into(), 61, 140_544)
        ]
    );
    // 30 layers × 3 KV heads × (64 + 64) × 8192 × 2 B; scratch 4 × (512 × (4·576 + 3·1536 + 9·8192) + 49152).
    let mem = &j["memory"];
    assert_eq!(mem["weights_bytes"], 96_576_768);
    assert_eq!(mem["kv_cache_bytes"], 188_743_680);
    assert_eq!(mem["scratch_bytes"], 165_347_328);
    assert_eq!(mem["total_bytes"], 96_576_768 + 188_743_680 + 165_347_328);
}

#[test]
fn gemma3_figures_match_the_reference_reader() {
    let Some(path) = real_model("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let j = inspect_json(&[path.to_str().expect("utf8")]);
    assert_eq!(j["arch"], "gemma3");
    assert_eq!(j["n_params"], 268_098_176);
    assert_eq!(j["file_type"], "Q4_K_M");
    assert_eq!(j["chat_template"], false);
    assert_eq!(j["tokenizer"], "llama SentencePiece (pre: default)");
    assert_eq!(j["tensor_types"][0]["dtype"], "Q8_0");
    assert_eq!(j["tensor_types"][0]["n_tensors"], 10);
    assert_eq!(j["tensor_types"][0]["n_bytes"], 179_824_640);
}

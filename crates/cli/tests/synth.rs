//! `skiff synth` end to end: tiny shapes of each family are written, read back by our GGUF
//! reader (and by the reference `gguf` package when `SKIFF_REF_PYTHON` is set, as CI does),
//! tokenized, loaded and run for one forward pass with finite logits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::{Batch, KvCache, Model};
use skiff_tensor::DType;
use skiff_tokenizer::Tokenizer;

mod real_model;

fn synth(out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("synth")
        .arg(out)
        .args(args)
        .output()
        .expect("skiff runs")
}

fn synth_ok(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = synth(&path, args);
    assert!(
        out.status.success(),
        "skiff synth {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn dtype_of(file: &ModelFile, name: &str) -> DType {
    file.spec()
        .tensor(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .dtype
}

/// Loads `path`, runs a 3-token prompt then one more token, and checks the logits.
fn forward_is_finite(path: &Path) {
    let file = Arc::new(ModelFile::open(path).expect("our reader opens it"));
    let model = Model::load(Arc::clone(&file)).expect("Model::load accepts it");
    let cpu = Cpu::new(2);
    let mut kv = KvCache::new(&model.spec().hparams, 1, 8);
    let logits = model
        .forward(&Batch::for_sequence(&[1, 2, 3], 0, 0), &mut kv, &cpu)
        .expect("forward");
    let row = logits.row(0).expect("one row");
    assert_eq!(row.len(), model.n_vocab());
    assert!(row.iter().all(|x| x.is_finite()), "non-finite logits");
    assert!(row.iter().any(|&x| x != row[0]), "constant logits");
    let next = model
        .forward(&Batch::for_sequence(&[4], 3, 0), &mut kv, &cpu)
        .expect("decode step");
    assert!(next.row(0).expect("row").iter().all(|x| x.is_finite()));
}

#[test]
fn tiny_shapes_load_tokenize_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shape, n_tensors) in [("tiny-llama", 20), ("tiny-qwen2", 27), ("tiny-gemma3", 28)] {
        let path = synth_ok(
            dir.path(),
            &format!("{shape}.gguf"),
            &["--shape", shape, "--seed", "3"],
        );
        let file = ModelFile::open(&path).expect("opens");
        let spec = file.spec();
        assert_eq!(spec.tensors.len(), n_tensors, "{shape}");
        assert_eq!(spec.hparams.n_layers, 2);
        assert_eq!(spec.hparams.d_model, 256);
        assert_eq!(spec.hparams.n_vocab, 384);
        assert_eq!(
            spec.metadata
                .get("general.file_type")
                .and_then(|v| v.as_u64()),
            Some(15),
            "Q4_K_M's llama_ftype"
        );
        // llama.cpp's Q4_K_M recipe: Q4_K by default, Q6_K for attn_v/ffn_down in
        // "more bits" layers (the last eighth: layer 1 of 2) and for the LM head.
        assert_eq!(
            dtype_of(&file, "blk.1.attn_q.weight"),
            DType::Q4K,
            "{shape}"
        );
        assert_eq!(
            dtype_of(&file, "blk.0.attn_v.weight"),
            DType::Q4K,
            "{shape}"
        );
        assert_eq!(
            dtype_of(&file, "blk.1.attn_v.weight"),
            DType::Q6K,
            "{shape}"
        );
        assert_eq!(
            dtype_of(&file, "blk.1.ffn_down.weight"),
            DType::Q6K,
            "{shape}"
        );
        assert_eq!(
            dtype_of(&file, "blk.0.attn_norm.weight"),
            DType::F32,
            "{shape}"
        );
        let head = if spec.hparams.tie_embeddings {
            "token_embd.weight"
        } else {
            "output.weight"
        };
        assert_eq!(dtype_of(&file, head), DType::Q6K, "{shape}");
        let tok = Tokenizer::from_spec(&spec.tokenizer).expect("tokenizer builds");
        let ids = tok.encode("hello world\n", false).expect("encodes");
        assert!(!ids.is_empty() && ids.iter().all(|&id| (id as usize) < 384));
        assert_eq!(tok.decode(&ids, false).expect("decodes"), "hello world\n");
        forward_is_finite(&path);
        check_with_reference_reader(&path);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = synth_ok(
        dir.path(),
        "a.gguf",
        &["--shape", "tiny-llama", "--seed", "1", "--type", "q8_0"],
    );
    let b = synth_ok(
        dir.path(),
        "b.gguf",
        &["--shape", "tiny-llama", "--seed", "1", "--type", "q8_0"],
    );
    let c = synth_ok(
        dir.path(),
        "c.gguf",
        &["--shape", "tiny-llama", "--seed", "2", "--type", "q8_0"],
    );
    let read = |p: &Path| std::fs::read(p).expect("reads");
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    let file = ModelFile::open(&a).expect("opens");
    assert_eq!(dtype_of(&file, "blk.0.ffn_down.weight"), DType::Q8_0);
    assert!(!dir.path().join("a.gguf.tmp").exists());
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = synth(&dir.path().join("x.gguf"), &["--shape", "gpt-5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gpt-5") && err.contains("qwen2.5-7b"), "{err}");
    let out = synth(
        &dir.path().join("x.gguf"),
        &["--shape", "tiny-llama", "--type", "q1"],
    );
    assert!(!out.status.success());
    let out = synth(
        &dir.path().join("x.gguf"),
        &[
            "--shape",
            "tiny-llama",
            "--tokenizer-from",
            "/nonexistent.gguf",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.gguf"));
    assert!(!dir.path().join("x.gguf").exists());
}

#[test]
fn smollm2_shape_with_the_real_tokenizer_matches_the_real_file() {
    let Some(real) = real_model::model() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = synth_ok(
        dir.path(),
        "smol.gguf",
        &[
            "--shape",
            "smollm2-135m",
            "--type",
            "q4_1",
            "--tokenizer-from",
            real.to_str().expect("UTF-8 path"),
        ],
    );
    let ours = ModelFile::open(&path).expect("opens");
    let theirs = ModelFile::open(&real).expect("opens");
    let names = |f: &ModelFile| {
        let mut v: Vec<(String, Vec<u64>)> = f
            .spec()
            .tensors
            .iter()
            .map(|t| (t.name.clone(), t.dims.clone()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&ours), names(&theirs));
    assert_eq!(ours.spec().hparams, theirs.spec().hparams);
    let tok = Tokenizer::from_spec(&ours.spec().tokenizer).expect("tokenizer");
    let real_tok = Tokenizer::from_spec(&theirs.spec().tokenizer).expect("tokenizer");
    let text = "The quick brown fox jumps over the lazy dog.";
    assert_eq!(
        tok.encode(text, true).expect("encodes"),
        real_tok.encode(text, true).expect("encodes")
    );
    forward_is_finite(&path);
}

/// Reads the file with the reference `gguf` package: every tensor's type and shape as our
/// reader sees them, and every tensor dequantizes to finite values.
fn check_with_reference_reader(path: &Path) {
    let Some(python) = std::env::var_os("SKIFF_REF_PYTHON") else {
        eprintln!("skipped the gguf-package read-back: SKIFF_REF_PYTHON is not set");
        return;
    };
    let file = ModelFile::open(path).expect("opens");
    let expected: Vec<String> = file
        .spec()
        .tensors
        .iter()
        .map(|t| format!("{} {} {:?}", t.name, t.dtype, t.dims))
        .collect();
    let script = r#"
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
for t in r.tensors:
    v = gguf.quants.dequantize(t.data, t.tensor_type)
    assert np.isfinite(v).all(), t.name
    print(t.name, t.tensor_type.name, [int(d) for d in t.shape])
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| {
            l.replace("Q4_K", "Q4K")
                .replace("Q6_K", "Q6K")
                .replace(", ", ",")
        })
        .collect();
    let expected: Vec<String> = expected
        .iter()
        .map(|l| {
            l.replace("Q4_K", "Q4K")
                .replace("Q6_K", "Q6K")
                .replace(", ", ",")
        })
        .collect();
    assert_eq!(got, expected);
}

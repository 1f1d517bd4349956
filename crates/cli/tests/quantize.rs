//! `skiff quantize` end to end: a small generated llama GGUF (f32 weights) re-quantized to
//! every `--type`, read back with skiff's reader: tensor types follow llama.cpp's recipe, the
//! values are within each format's round-trip bound, metadata is copied, and failures leave
//! no file behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_formats::{GgufWriter, MetaValue, ModelFile};
use skiff_tensor::DType;
use skiff_tensor::quant::{round_trip_bound, to_f32_vec};

const N_LAYERS: usize = 8;
const D_MODEL: u64 = 256;
/// Not a multiple of 256: `ffn_down` rows exercise the K-quant fallbacks.
const FFN_DIM: u64 = 320;
const N_VOCAB: u64 = 64;

/// The test model's tensors: name and dims (ggml order), tied embeddings.
fn tensor_table() -> Vec<(String, Vec<u64>)> {
    let mut t = vec![("token_embd.weight".to_string(), vec![D_MODEL, N_VOCAB])];
    for i in 0..N_LAYERS {
        for (role, dims) in [
            ("attn_norm.weight", vec![D_MODEL]),
            ("attn_q.weight", vec![D_MODEL, D_MODEL]),
            ("attn_k.weight", vec![D_MODEL, D_MODEL / 2]),
            ("attn_v.weight", vec![D_MODEL, D_MODEL / 2]),
            ("attn_output.weight", vec![D_MODEL, D_MODEL]),
            ("ffn_norm.weight", vec![D_MODEL]),
            ("ffn_gate.weight", vec![D_MODEL, FFN_DIM]),
            ("ffn_up.weight", vec![D_MODEL, FFN_DIM]),
            ("ffn_down.weight", vec![FFN_DIM, D_MODEL]),
        ] {
            t.push((format!("blk.{i}.{role}"), dims));
        }
    }
    t.push(("output_norm.weight".to_string(), vec![D_MODEL]));
    t
}

/// Deterministic weights: a mix of sines with a per-tensor scale (norms near 1).
fn values(index: usize, n: usize) -> Vec<f32> {
    let scale = 0.02 * (1.0 + (index % 7) as f32);
    (0..n)
        .map(|j| {
            let x =
                (j as f32 * 0.618_034 + index as f32 * 1.3).sin() + 0.3 * (j as f32 * 0.0137).cos();
            scale * x
        })
        .collect()
}

/// Writes the f32 test model to `path`; `poison` puts a NaN into `blk.2.attn_q.weight`.
fn write_model(path: &Path, poison: bool) {
    let mut w = GgufWriter::new();
    let meta = [
        ("general.architecture", MetaValue::String("llama".into())),
        ("general.name", MetaValue::String("quantize-test".into())),
        ("general.file_type", MetaValue::U32(0)),
        ("llama.block_count", MetaValue::U32(N_LAYERS as u32)),
        ("llama.embedding_length", MetaValue::U32(D_MODEL as u32)),
        ("llama.attention.head_count", MetaValue::U32(4)),
        ("llama.attention.head_count_kv", MetaValue::U32(2)),
        ("llama.feed_forward_length", MetaValue::U32(FFN_DIM as u32)),
        ("llama.context_length", MetaValue::U32(256)),
        ("llama.rope.freq_base", MetaValue::F32(12345.0)),
    ];
    for (k, v) in meta {
        w.add_meta(k, v).expect("valid metadata");
    }
    let table = tensor_table();
    for (name, dims) in &table {
        w.add_tensor_info(name, dims, DType::F32)
            .expect("valid tensor");
    }
    let file = std::fs::File::create(path).expect("create model");
    let mut stream = w.begin(std::io::BufWriter::new(file)).expect("header");
    for (i, (name, dims)) in table.iter().enumerate() {
        let mut v = values(i, dims.iter().product::<u64>() as usize);
        if poison && name == "blk.2.attn_q.weight" {
            v[40_000] = f32::NAN;
        }
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        stream.write_tensor_data(name, &bytes).expect("tensor data");
    }
    stream.finish().expect("finish");
}

/// The type llama.cpp's recipe gives `name` in this model under `ftype`.
fn expected_type(ftype: &str, name: &str) -> DType {
    let layer: Option<usize> = name
        .strip_prefix("blk.")
        .and_then(|r| r.split('.').next()?.parse().ok());
    let more_bits = layer.is_some_and(|i| [0, 3, 6, 7].contains(&i));
    let default = match ftype {
        "q4_0" => DType::Q4_0,
        "q4_1" => DType::Q4_1,
        "q8_0" => DType::Q8_0,
        "q4_k_m" => DType::Q4K,
        "q5_k_m" => DType::Q5K,
        _ => DType::Q6K,
    };
    let m_mix = ftype.ends_with("_m");
    if name.ends_with("norm.weight") {
        DType::F32
    } else if name == "token_embd.weight" {
        if ftype == "q8_0" {
            DType::Q8_0
        } else {
            DType::Q6K
        }
    } else if name.ends_with("attn_v.weight") && m_mix && more_bits {
        DType::Q6K
    } else if name.ends_with("ffn_down.weight") {
        // 320-value rows: Q6_K -> Q8_0, Q4_K -> Q5_0, Q5_K -> Q5_1.
        match (default, m_mix && more_bits) {
            (DType::Q4K | DType::Q5K, true) | (DType::Q6K, _) => DType::Q8_0,
            (DType::Q4K, false) => DType::Q5_0,
            (DType::Q5K, false) => DType::Q5_1,
            (d, _) => d,
        }
    } else {
        default
    }
}

fn skiff(args: &[&Path], ftype: &str) -> std::process::Output {
    skiff_with(args, &["--type", ftype])
}

fn skiff_with(args: &[&Path], options: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("quantize")
        .args(args)
        .args(options)
        .output()
        .expect("run skiff")
}

fn tmp_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.tmp", path.display()))
}

/// Every `--type`: types follow the recipe, values are within bounds, metadata is copied.
#[test]
fn quantize_every_type_follows_recipe_and_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("f32.gguf");
    write_model(&input, false);
    let table = tensor_table();
    let file_types = [
        ("q4_0", 2),
        ("q4_1", 3),
        ("q8_0", 7),
        ("q4_k_m", 15),
        ("q5_k_m", 17),
        ("q6_k", 18),
    ];
    for (ftype, ftype_id) in file_types {
        let output = dir.path().join(format!("{ftype}.gguf"));
        let run = skiff(&[&input, &output], ftype);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{ftype}: {stderr}");
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with('[')).count(),
            table.len(),
            "{stderr}"
        );
        assert!(
            stderr.contains("MiB") && stderr.contains("bits/weight"),
            "{stderr}"
        );
        assert!(
            !tmp_of(&output).exists(),
            "{ftype}: temporary file left behind"
        );
        let model = ModelFile::open(&output).unwrap_or_else(|e| panic!("{ftype}: {e}"));
        let spec = model.spec();
        let md = &spec.metadata;
        assert_eq!(md["general.file_type"], MetaValue::U32(ftype_id), "{ftype}");
        assert_eq!(
            md["general.quantization_version"],
            MetaValue::U32(2),
            "{ftype}"
        );
        assert_eq!(
            md["llama.rope.freq_base"],
            MetaValue::F32(12345.0),
            "{ftype}"
        );
        assert_eq!(
            md["general.name"],
            MetaValue::String("quantize-test".into()),
            "{ftype}"
        );
        assert_eq!(spec.tensors.len(), table.len());
        for (i, ((name, dims), info)) in table.iter().zip(&spec.tensors).enumerate() {
            assert_eq!(
                (&info.name, &info.dims),
                (name, dims),
                "{ftype}: order and shape kept"
            );
            assert_eq!(info.dtype, expected_type(ftype, name), "{ftype}: {name}");
            let original = values(i, dims.iter().product::<u64>() as usize);
            let decoded = to_f32_vec(info.dtype, model.tensor_bytes(info)).expect("dequantize");
            if let Err(v) = round_trip_bound(info.dtype).check(&original, &decoded) {
                panic!("{ftype}: {name} ({}): {v}", info.dtype);
            }
        }
    }
}

/// Re-quantizing a quantized file keeps tensors already in their target type byte for byte.
#[test]
fn requantizing_keeps_tensors_already_in_target_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("f32.gguf");
    write_model(&input, false);
    let q6 = dir.path().join("q6_k.gguf");
    assert!(skiff(&[&input, &q6], "q6_k").status.success());
    let again = dir.path().join("again.gguf");
    let run = skiff(&[&q6, &again], "q6_k");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (a, b) = (
        ModelFile::open(&q6).expect("q6"),
        ModelFile::open(&again).expect("again"),
    );
    for (ta, tb) in a.spec().tensors.iter().zip(&b.spec().tensors) {
        assert_eq!(ta.dtype, tb.dtype, "{}", ta.name);
        assert_eq!(a.tensor_bytes(ta), b.tensor_bytes(tb), "{}", ta.name);
    }
}

/// A failure (NaN weights; a missing input) exits non-zero, names the tensor and the value's
/// index (also when the tensor was split over threads), and leaves neither OUT nor OUT.tmp.
#[test]
fn failures_leave_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("nan.gguf");
    write_model(&input, true);
    let output = dir.path().join("out.gguf");
    for options in [
        ["--type", "q4_k_m", "--threads", "1"],
        ["--type", "q8_0", "--threads", "4"],
    ] {
        let run = skiff_with(&[&input, &output], &options);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success());
        assert!(
            stderr.contains("blk.2.attn_q.weight") && stderr.contains("NaN"),
            "{stderr}"
        );
        assert!(
            stderr.contains("input value 40000"),
            "{options:?}: {stderr}"
        );
        assert!(!output.exists() && !tmp_of(&output).exists());
    }
    let run = skiff(&[&dir.path().join("missing.gguf"), &output], "q8_0");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("missing.gguf"));
    assert!(!output.exists() && !tmp_of(&output).exists());
}

/// The output is the same byte for byte whatever the thread count.
#[test]
fn thread_count_does_not_change_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("f32.gguf");
    write_model(&input, false);
    for ftype in ["q4_0", "q8_0"] {
        let one = dir.path().join(format!("{ftype}-1.gguf"));
        let four = dir.path().join(format!("{ftype}-4.gguf"));
        assert!(
            skiff_with(&[&input, &one], &["--type", ftype, "--threads", "1"])
                .status
                .success()
        );
        assert!(
            skiff_with(&[&input, &four], &["--type", ftype, "--threads", "4"])
                .status
                .success()
        );
        let (a, b) = (
            std::fs::read(&one).expect("one"),
            std::fs::read(&four).expect("four"),
        );
        assert!(a == b, "{ftype}: outputs differ");
    }
}

/// The recipe reproduces llama.cpp's own choice on a real file: re-quantizing the
/// llama.cpp-made Gemma-3-270M Q4_K_M to `q4_k_m` picks the same type for all 236 tensors, so
/// every tensor is copied byte for byte. Needs `SKIFF_TEST_MODEL_DIR` (skipped when unset,
/// fails when set but the file is missing).
#[test]
fn gemma3_q4_k_m_recipe_matches_llama_cpp() {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        println!(
            "skipped: SKIFF_TEST_MODEL_DIR is not set (it should hold gemma-3-270m-q4_k_m.gguf)"
        );
        return;
    };
    let input = PathBuf::from(dir).join("gemma-3-270m-q4_k_m.gguf");
    assert!(
        input.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} does not exist",
        input.display()
    );
    let out_dir = tempfile::tempdir().expect("tempdir");
    let output = out_dir.path().join("gemma.gguf");
    let run = skiff(&[&input, &output], "q4_k_m");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (a, b) = (
        ModelFile::open(&input).expect("input"),
        ModelFile::open(&output).expect("output"),
    );
    assert_eq!(a.spec().tensors.len(), 236);
    for (ta, tb) in a.spec().tensors.iter().zip(&b.spec().tensors) {
        assert_eq!(
            (&ta.name, ta.dtype),
            (&tb.name, tb.dtype),
            "llama.cpp chose {} for {}",
            ta.dtype,
            ta.name
        );
        assert!(
            a.tensor_bytes(ta) == b.tensor_bytes(tb),
            "{}: bytes differ",
            ta.name
        );
    }
    assert_eq!(b.spec().metadata["general.file_type"], MetaValue::U32(15));
}

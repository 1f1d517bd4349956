//! Shared helpers of the store and inspect end-to-end tests: run the built `skiff`, and
//! write a tiny GGUF whose every figure is known by hand.

#![allow(dead_code)] // Each test crate uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skiff_formats::{GgufWriter, MetaValue};
use skiff_tensor::DType;

/// The tiny model's figures, computed by hand from [`write_tiny_gguf`].
pub mod tiny {
    /// token_embd 64×4 + output_norm 64 + attn_norm 64 + attn_q 64×64 + attn_k 64×32.
    pub const N_PARAMS: u64 = 256 + 64 + 64 + 4096 + 2048;
    /// F32 tensors: (256 + 64 + 64) × 4 bytes.
    pub const F32_BYTES: u64 = 1536;
    /// F16 tensors: (4096 + 2048) × 2 bytes.
    pub const F16_BYTES: u64 = 12_288;
    /// `llama.context_length`.
    pub const CTX: u64 = 256;
}

/// A `skiff` command with the store environment cleared.
pub fn skiff() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
    for var in [
        "SKIFF_MODELS",
        "SKIFF_PIP_WHEELS",
        "SKIFF_PYTHON",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HF_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `skiff args…` and returns its output.
pub fn run(args: &[&str]) -> Output {
    skiff().args(args).output().expect("run skiff")
}

/// Stdout of a run that must succeed.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "skiff failed: {}\nstdout: {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr of a run that must fail.
pub fn fails(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "skiff unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a one-layer llama GGUF (d_model 64, 4 heads, 2 KV heads, ffn_dim 128, context
/// 256, 4-token gpt2 vocabulary with `pre = smollm`, a chat template) to `dir/name`.
pub fn write_tiny_gguf(dir: &Path, name: &str) -> PathBuf {
    let mut w = GgufWriter::new();
    let s = |v: &str| MetaValue::String(v.to_string());
    let strs = |v: &[&str]| MetaValue::Array(v.iter().map(|x| s(x)).collect());
    let meta = [
        ("general.architecture", s("llama")),
        ("general.name", s("tiny store test")),
        ("general.file_type", MetaValue::U32(1)),
        ("llama.block_count", MetaValue::U32(1)),
        ("llama.context_length", MetaValue::U32(tiny::CTX as u32)),
        ("llama.embedding_length", MetaValue::U32(64)),
        ("llama.feed_forward_length", MetaValue::U32(128)),
        ("llama.attention.head_count", MetaValue::U32(4)),
        ("llama.attention.head_count_kv", MetaValue::U32(2)),
        ("tokenizer.ggml.model", s("gpt2")),
        ("tokenizer.ggml.pre", s("smollm")),
        ("tokenizer.ggml.tokens", strs(&["a", "b", "c", "ab"])),
        ("tokenizer.ggml.merges", strs(&["a b"])),
        (
            "tokenizer.chat_template",
            s("{% for m in messages %}{{ m.content }}{% endfor %}"),
        ),
    ];
    for (key, value) in meta {
        w.add_meta(key, value).expect("metadata");
    }
    let tensors: [(&str, &[u64], DType); 5] = [
        ("token_embd.weight", &[64, 4], DType::F32),
        ("output_norm.weight", &[64], DType::F32),
        ("blk.0.attn_norm.weight", &[64], DType::F32),
        ("blk.0.attn_q.weight", &[64, 64], DType::F16),
        ("blk.0.attn_k.weight", &[64, 32], DType::F16),
    ];
    for (name, dims, dtype) in tensors {
        w.add_tensor_info(name, dims, dtype).expect("tensor info");
    }
    let path = dir.join(name);
    let mut stream = w
        .begin(std::fs::File::create(&path).expect("create"))
        .expect("begin");
    for (name, dims, dtype) in tensors {
        let width = if dtype == DType::F32 { 4 } else { 2 };
        let n_bytes = dims.iter().product::<u64>() as usize * width;
        stream
            .write_tensor_data(name, &vec![0u8; n_bytes])
            .expect("tensor data");
    }
    stream.finish().expect("finish");
    path
}

//! Spec building from metadata: defaults, RoPE pairing, and every G10 / G12 rejection.

use skiff_tensor::DType;

use super::*;
use crate::gguf::MetaValue as V;
use crate::spec::{RopePairing, RopeScaling};

fn tensor(name: &str, dims: &[u64]) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dims: dims.to_vec(),
        dtype: DType::F32,
        shard: 0,
        offset: 0,
        n_bytes: 4,
    }
}

/// A valid two-layer llama with a three-token SentencePiece vocabulary.
fn base() -> (Meta, Vec<TensorInfo>) {
    let md = meta_of(&[
        ("general.architecture", V::String("llama".into())),
        ("llama.block_count", V::U32(2)),
        ("llama.embedding_length", V::U32(64)),
        ("llama.attention.head_count", V::U32(4)),
        ("llama.attention.head_count_kv", V::U32(2)),
        ("llama.feed_forward_length", V::U64(128)),
        ("llama.context_length", V::I32(256)),
        ("tokenizer.ggml.model", V::String("llama".into())),
        (
            "tokenizer.ggml.tokens",
            V::Array(vec![
                V::String("a".into()),
                V::String("b".into()),
                V::String("<0x41>".into()),
            ]),
        ),
        (
            "tokenizer.ggml.scores",
            V::Array(vec![V::F32(0.0), V::F32(-1.0), V::F32(-2.0)]),
        ),
        (
            "tokenizer.ggml.token_type",
            V::Array(vec![V::I32(1), V::I32(1), V::I32(6)]),
        ),
        ("tokenizer.ggml.bos_token_id", V::U32(0)),
    ]);
    let tensors = vec![
        tensor("token_embd.weight", &[64, 3]),
        tensor("blk.0.attn_q.weight", &[64, 64]),
        tensor("blk.1.attn_q.weight", &[64, 64]),
    ];
    (md, tensors)
}

fn build(md: Meta, tensors: Vec<TensorInfo>, source: SourceFormat) -> Result<ModelSpec> {
    build_spec(SpecSource {
        metadata: md,
        tensors,
        source,
        tokenizer: None,
        chat_template: None,
        norm_weight_offset: 0.0,
    })
}

fn gguf_build(md: Meta, tensors: Vec<TensorInfo>) -> Result<ModelSpec> {
    build(md, tensors, SourceFormat::Gguf { version: 3 })
}

fn with(key: &str, v: V) -> Result<ModelSpec> {
    let (mut md, t) = base();
    md.insert(key.into(), v);
    gguf_build(md, t)
}

fn hparam_err(r: Result<ModelSpec>, key: &str) {
    match r {
        Err(Error::BadHyperparameter { key: k, .. }) if k == key => {}
        other => panic!("expected BadHyperparameter for {key}, got {other:?}"),
    }
}

fn tokenizer_err(r: Result<ModelSpec>, field: &str) {
    match r {
        Err(Error::BadTokenizer { field: f, .. }) if f == field => {}
        other => panic!("expected BadTokenizer for {field}, got {other:?}"),
    }
}

/// Defaults fill in head_dim, rope, eps; pairing is interleaved for GGUF llama only.
#[test]
fn defaults_and_pairing() {
    let (md, t) = base();
    let spec = gguf_build(md.clone(), t.clone()).unwrap();
    let h = &spec.hparams;
    assert_eq!(
        (h.head_dim, h.head_dim_v, h.n_vocab, h.norm_eps),
        (16, 16, 3, 1e-5)
    );
    assert_eq!(
        (h.rope.theta, h.rope.rot_dim, &h.rope.scaling),
        (10_000.0, 16, &RopeScaling::None)
    );
    assert_eq!(h.rope.pairing, RopePairing::Interleaved);
    assert!(h.tie_embeddings);
    let spec = build(md, t, SourceFormat::Safetensors).unwrap();
    assert_eq!(spec.hparams.rope.pairing, RopePairing::Neox);
}

/// G10: zero or non-dividing heads, kv heads not dividing heads, absurd context.
#[test]
fn inconsistent_heads_and_context_rejected() {
    hparam_err(
        with("llama.attention.head_count", V::U32(0)),
        "llama.attention.head_count",
    );
    hparam_err(
        with("llama.attention.head_count", V::U32(6)),
        "llama.attention.head_count",
    );
    hparam_err(
        with("llama.attention.head_count_kv", V::U32(3)),
        "llama.attention.head_count_kv",
    );
    hparam_err(
        with("llama.context_length", V::U32(0)),
        "llama.context_length",
    );
    hparam_err(
        with("llama.context_length", V::U64(1 << 40)),
        "llama.context_length",
    );
    hparam_err(
        with("llama.attention.layer_norm_rms_epsilon", V::F32(f32::NAN)),
        "llama.attention.layer_norm_rms_epsilon",
    );
    hparam_err(
        with("llama.rope.dimension_count", V::U32(17)),
        "llama.rope.dimension_count",
    );
    // head_dim given explicitly lifts the divisibility requirement.
    let (mut md, t) = base();
    md.insert("llama.attention.head_count".into(), V::U32(6));
    md.insert("llama.attention.key_length".into(), V::U32(16));
    assert_eq!(gguf_build(md, t).unwrap().hparams.head_dim, 16);
}

/// G10: block_count disagreeing with the blk.N tensors present.
#[test]
fn block_count_must_match_layers() {
    hparam_err(with("llama.block_count", V::U32(3)), "llama.block_count");
    hparam_err(with("llama.block_count", V::U32(1)), "llama.block_count");
    hparam_err(
        with("llama.block_count", V::U32(1 << 20)),
        "llama.block_count",
    );
}

/// Missing and mistyped keys name the key; unknown architectures are refused.
#[test]
fn missing_wrong_type_and_unknown_arch() {
    let (mut md, t) = base();
    md.remove("llama.feed_forward_length");
    assert!(
        matches!(gguf_build(md, t), Err(Error::MissingKey { key }) if key == "llama.feed_forward_length")
    );
    let r = with("llama.embedding_length", V::String("64".into()));
    assert!(
        matches!(r, Err(Error::WrongType { ref key, .. }) if key == "llama.embedding_length"),
        "{r:?}"
    );
    let r = with("general.architecture", V::String("gpt-j".into()));
    assert!(matches!(r, Err(Error::UnsupportedArch { .. })), "{r:?}");
    let (md, mut t) = base();
    t.remove(0);
    assert!(
        matches!(gguf_build(md, t), Err(Error::MissingTensor { name }) if name == "token_embd.weight")
    );
}

/// RoPE scaling keys map onto the enum, with YaRN's defaults.
#[test]
fn rope_scaling_keys() {
    let (mut md, t) = base();
    md.insert("llama.rope.scaling.type".into(), V::String("yarn".into()));
    md.insert("llama.rope.scaling.factor".into(), V::F32(4.0));
    md.insert(
        "llama.rope.scaling.original_context_length".into(),
        V::U32(64),
    );
    let s = gguf_build(md.clone(), t.clone())
        .unwrap()
        .hparams
        .rope
        .scaling;
    assert_eq!(
        s,
        RopeScaling::Yarn {
            factor: 4.0,
            original_max_seq_len: 64,
            beta_fast: 32.0,
            beta_slow: 1.0
        }
    );
    md.insert("llama.rope.scaling.type".into(), V::String("linear".into()));
    let s = gguf_build(md.clone(), t.clone())
        .unwrap()
        .hparams
        .rope
        .scaling;
    assert_eq!(s, RopeScaling::Linear { factor: 4.0 });
    md.insert("llama.rope.scaling.type".into(), V::String("weird".into()));
    hparam_err(gguf_build(md.clone(), t.clone()), "llama.rope.scaling.type");
    md.insert("llama.rope.scaling.type".into(), V::String("linear".into()));
    md.insert("llama.rope.scaling.factor".into(), V::F32(-1.0));
    hparam_err(gguf_build(md, t), "llama.rope.scaling.factor");
}

/// G12: lengths differ, scores not FLOAT32, special ids out of range, bad byte tokens,
/// unknown merges, short charsmap, empty vocab, vocab longer than the embedding.
#[test]
fn tokenizer_arrays_validated() {
    tokenizer_err(
        with("tokenizer.ggml.scores", V::Array(vec![V::F32(0.0)])),
        "tokenizer.ggml.scores",
    );
    tokenizer_err(
        with("tokenizer.ggml.scores", V::Array(vec![V::U8(0); 3])),
        "tokenizer.ggml.scores",
    );
    tokenizer_err(
        with("tokenizer.ggml.token_type", V::Array(vec![V::I32(1); 2])),
        "tokenizer.ggml.token_type",
    );
    tokenizer_err(
        with("tokenizer.ggml.eos_token_id", V::U32(3)),
        "tokenizer.ggml.eos_token_id",
    );
    let bad_byte = V::Array(vec![
        V::String("a".into()),
        V::String("b".into()),
        V::String("<0xZZ>".into()),
    ]);
    tokenizer_err(
        with("tokenizer.ggml.tokens", bad_byte),
        "tokenizer.ggml.tokens",
    );
    tokenizer_err(
        with(
            "tokenizer.ggml.merges",
            V::Array(vec![V::String("a c".into())]),
        ),
        "tokenizer.ggml.merges",
    );
    tokenizer_err(
        with(
            "tokenizer.ggml.precompiled_charsmap",
            V::Array(vec![V::U8(0); 3]),
        ),
        "tokenizer.ggml.precompiled_charsmap",
    );
    tokenizer_err(
        with("tokenizer.ggml.tokens", V::Array(vec![])),
        "tokenizer.ggml.tokens",
    );
    let (mut md, mut t) = base();
    t[0].dims = vec![64, 2];
    md.remove("tokenizer.ggml.scores");
    md.remove("tokenizer.ggml.token_type");
    tokenizer_err(gguf_build(md, t), "tokenizer.ggml.tokens");
    assert!(
        with(
            "tokenizer.ggml.merges",
            V::Array(vec![V::String("a b".into())])
        )
        .is_ok()
    );
}

/// A chat template over 1 MiB is refused; no tokenizer keys means `Missing`.
#[test]
fn chat_template_cap_and_missing_tokenizer() {
    let r = with(
        "tokenizer.chat_template",
        V::String("x".repeat(MAX_CHAT_TEMPLATE_LEN + 1)),
    );
    assert!(matches!(r, Err(Error::StringTooLong { .. })), "{r:?}");
    let (mut md, t) = base();
    md.retain(|k, _| !k.starts_with("tokenizer."));
    assert_eq!(gguf_build(md, t).unwrap().tokenizer, TokenizerSpec::Missing);
}

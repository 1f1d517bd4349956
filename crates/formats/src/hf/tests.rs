//! Hugging Face folders built in temp dirs: mapping, specs, and every S3 / S4 refusal.

use std::fs;
use std::path::Path;

use super::*;
use crate::spec::RopePairing;

/// Writes a safetensors file holding `tensors` (name, dtype, row-major shape), data
/// filled with each tensor's index byte.
fn write_st(path: &Path, tensors: &[(&str, &str, &[u64])]) {
    let mut entries = Vec::new();
    let mut data = Vec::new();
    for (i, (name, dtype, shape)) in tensors.iter().enumerate() {
        let n = crate::safetensors::dtype_size(dtype).unwrap() * shape.iter().product::<u64>();
        let begin = data.len();
        data.resize(begin + n as usize, i as u8);
        entries.push(format!(
            r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{begin},{}]}}"#,
            data.len()
        ));
    }
    let header = format!("{{{}}}", entries.join(","));
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&data);
    fs::write(path, out).unwrap();
}

const LLAMA_CONFIG: &str = r#"{"model_type":"llama","num_hidden_layers":2,"hidden_size":8,
    "num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":16,
    "max_position_embeddings":64,"rms_norm_eps":1e-6,"rope_theta":500000.0,
    "tie_word_embeddings":true,"vocab_size":5,"bos_token_id":1,"eos_token_id":[2,3],
    "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
    "high_freq_factor":4.0,"original_max_position_embeddings":32}}"#;

fn llama_tensors() -> Vec<(&'static str, &'static str, &'static [u64])> {
    vec![
        ("model.embed_tokens.weight", "BF16", &[5, 8]),
        ("model.norm.weight", "F32", &[8]),
        ("model.layers.0.self_attn.q_proj.weight", "F16", &[8, 8]),
        ("model.layers.1.input_layernorm.weight", "F32", &[8]),
        (
            "model.layers.1.post_attention_layernorm.weight",
            "F32",
            &[8],
        ),
    ]
}

fn llama_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), LLAMA_CONFIG).unwrap();
    write_st(&dir.path().join("model.safetensors"), &llama_tensors());
    dir
}

/// A llama folder: keys from config.json, NeoX pairing, llama3 scaling, names and dims
/// mapped, bytes zero-copy, tokenizer special ids resolved through added tokens.
#[test]
fn llama_folder() {
    let dir = llama_dir();
    let tok = r#"{"added_tokens":[{"id":1,"content":"<s>"}],"model":{"vocab":{"</s>":2}}}"#;
    fs::write(dir.path().join("tokenizer.json"), tok).unwrap();
    let tok_cfg = r#"{"bos_token":"<s>","eos_token":{"content":"</s>"},"add_bos_token":true,"chat_template":"{{ x }}"}"#;
    fs::write(dir.path().join("tokenizer_config.json"), tok_cfg).unwrap();
    let model = ModelFile::open(dir.path()).unwrap();
    let spec = model.spec();
    let h = &spec.hparams;
    assert_eq!(
        (
            spec.arch.as_str(),
            h.n_layers,
            h.d_model,
            h.n_heads,
            h.n_kv_heads
        ),
        ("llama", 2, 8, 2, 1)
    );
    assert_eq!(
        (h.head_dim, h.ffn_dim, h.n_vocab, h.max_seq_len, h.norm_eps),
        (4, 16, 5, 64, 1e-6)
    );
    assert_eq!(
        (h.rope.pairing, h.rope.theta),
        (RopePairing::Neox, 500_000.0)
    );
    let want = crate::spec::RopeScaling::Llama3 {
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_seq_len: 32,
    };
    assert_eq!(h.rope.scaling, want);
    assert!(h.tie_embeddings);
    assert_eq!(
        (spec.source.clone(), spec.norm_weight_offset),
        (SourceFormat::Safetensors, 0.0)
    );
    assert_eq!(spec.chat_template.as_deref(), Some("{{ x }}"));
    let TokenizerSpec::HfJson { json, special } = &spec.tokenizer else {
        panic!("HfJson expected")
    };
    assert_eq!(json.as_slice(), tok.as_bytes());
    assert_eq!(
        (special.bos, special.eos, special.add_bos),
        (Some(1), Some(2), Some(true))
    );
    let (info, bytes) = model.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(
        (info.dims.as_slice(), info.dtype, bytes.len()),
        (&[8u64, 8][..], DType::F16, 128)
    );
    assert!(bytes.iter().all(|&b| b == 2));
    assert_eq!(model.tensor("blk.1.ffn_norm.weight").unwrap().0.dims, [8]);
    assert_eq!(model.tensor("token_embd.weight").unwrap().0.dims, [8, 5]);
    // A single .safetensors file with config.json beside it opens the same way.
    let single = ModelFile::open(&dir.path().join("model.safetensors")).unwrap();
    assert_eq!(single.spec().tensors, spec.tensors);
    // Without tokenizer_config.json the eos id falls back to config.json's first id.
    fs::remove_file(dir.path().join("tokenizer_config.json")).unwrap();
    let TokenizerSpec::HfJson { special, .. } = ModelFile::open(dir.path())
        .unwrap()
        .spec()
        .tokenizer
        .clone()
    else {
        panic!("HfJson expected")
    };
    assert_eq!((special.bos, special.eos), (Some(1), Some(2)));
}

/// Gemma 3: sandwich norms, norm offset 1, synthesized window pattern, template list.
#[test]
fn gemma3_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"{"model_type":"gemma3_text","num_hidden_layers":1,"hidden_size":8,"num_attention_heads":1,
        "num_key_value_heads":1,"head_dim":16,"intermediate_size":16,"max_position_embeddings":64,
        "query_pre_attn_scalar":16,"sliding_window":4,"rope_local_base_freq":10000.0,
        "layer_types":["sliding_attention"],"final_logit_softcapping":null}"#;
    fs::write(dir.path().join("config.json"), cfg).unwrap();
    write_st(
        &dir.path().join("model.safetensors"),
        &[
            ("model.embed_tokens.weight", "F32", &[4, 8]),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "F32",
                &[8],
            ),
            (
                "model.layers.0.pre_feedforward_layernorm.weight",
                "F32",
                &[8],
            ),
            (
                "model.layers.0.post_feedforward_layernorm.weight",
                "F32",
                &[8],
            ),
        ],
    );
    let tmpl = r#"{"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D"}]}"#;
    fs::write(dir.path().join("tokenizer_config.json"), tmpl).unwrap();
    let model = ModelFile::open(dir.path()).unwrap();
    let spec = model.spec();
    assert_eq!(
        (
            spec.arch.as_str(),
            spec.norm_weight_offset,
            spec.hparams.head_dim
        ),
        ("gemma3", 1.0, 16)
    );
    assert_eq!(
        (
            spec.hparams.sliding_window,
            spec.hparams.final_logit_softcap
        ),
        (Some(4), None)
    );
    assert_eq!(spec.chat_template.as_deref(), Some("D"));
    assert_eq!(spec.tokenizer, TokenizerSpec::Missing);
    for name in [
        "blk.0.post_attention_norm.weight",
        "blk.0.ffn_norm.weight",
        "blk.0.post_ffw_norm.weight",
    ] {
        assert!(spec.tensor(name).is_some(), "{name}");
    }
    let pattern = &spec.metadata["gemma3.attention.sliding_window_pattern"];
    assert_eq!(
        pattern,
        &crate::MetaValue::Array(vec![crate::MetaValue::Bool(true)])
    );
    assert_eq!(
        spec.metadata["gemma3.attention.query_pre_attn_scalar"].as_f32(),
        Some(16.0)
    );
    fs::write(dir.path().join("tokenizer_config.json"), "{}").unwrap();
    fs::write(dir.path().join("chat_template.jinja"), "J").unwrap();
    assert_eq!(
        ModelFile::open(dir.path())
            .unwrap()
            .spec()
            .chat_template
            .as_deref(),
        Some("J")
    );
}

/// Writes a two-shard llama folder with `index` as its index file.
fn sharded(index: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), LLAMA_CONFIG).unwrap();
    let t = llama_tensors();
    write_st(&dir.path().join("a.safetensors"), &t[..2]);
    write_st(&dir.path().join("b.safetensors"), &t[2..]);
    fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    dir
}

fn index_json(entries: &[(&str, &str)]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(t, s)| format!(r#""{t}":"{s}""#))
        .collect();
    format!(r#"{{"metadata":{{}},"weight_map":{{{}}}}}"#, body.join(","))
}

fn good_entries() -> Vec<(&'static str, &'static str)> {
    llama_tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t.0,
                if i < 2 {
                    "a.safetensors"
                } else {
                    "b.safetensors"
                },
            )
        })
        .collect()
}

/// Shards listed by the index load, each tensor pointing at its own shard.
#[test]
fn sharded_folder_loads() {
    let dir = sharded(&index_json(&good_entries()));
    let model = ModelFile::open(dir.path()).unwrap();
    assert_eq!(model.spec().tensor("blk.0.attn_q.weight").unwrap().shard, 1);
    assert_eq!(model.spec().tensor("token_embd.weight").unwrap().shard, 0);
    assert_eq!(
        model.tensor("output_norm.weight").unwrap().1,
        &[1u8; 32][..]
    );
}

/// S3: `..`, absolute paths and symlinks out of the folder; missing shards; tensors listed
/// twice or in the wrong shard.
#[test]
fn s3_index_refusals() {
    let open = |entries: &[(&str, &str)]| ModelFile::open(sharded(&index_json(entries)).path());
    let mut e = good_entries();
    e[0].1 = "../a.safetensors";
    assert!(matches!(open(&e), Err(Error::PathEscapesModelDir { .. })));
    e[0].1 = "/etc/passwd";
    assert!(matches!(open(&e), Err(Error::PathEscapesModelDir { .. })));
    e[0].1 = "c.safetensors";
    assert!(matches!(open(&e), Err(Error::MissingShard { name }) if name == "c.safetensors"));
    let mut e = good_entries();
    e.push(e[0]);
    assert!(matches!(open(&e), Err(Error::DuplicateTensor { .. })));
    let mut e = good_entries();
    e[0].1 = "b.safetensors";
    assert!(matches!(open(&e), Err(Error::BadHeader { .. })));
    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().unwrap();
        write_st(&outside.path().join("x.safetensors"), &llama_tensors()[..2]);
        let mut e = good_entries();
        e[0].1 = "link.safetensors";
        e[1].1 = "link.safetensors";
        let dir = sharded(&index_json(&e));
        std::os::unix::fs::symlink(
            outside.path().join("x.safetensors"),
            dir.path().join("link.safetensors"),
        )
        .unwrap();
        assert!(matches!(
            ModelFile::open(dir.path()),
            Err(Error::PathEscapesModelDir { .. })
        ));
    }
}

/// S4: pickle-only folders and `.bin` files are refused, never loaded.
#[test]
fn s4_pickle_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), LLAMA_CONFIG).unwrap();
    fs::write(dir.path().join("pytorch_model.bin"), b"PK\x03\x04").unwrap();
    let r = ModelFile::open(dir.path());
    assert!(
        matches!(&r, Err(Error::UnsupportedFormat { reason }) if reason.contains("pickle")),
        "{r:?}"
    );
    let r = ModelFile::open(&dir.path().join("pytorch_model.bin"));
    assert!(matches!(r, Err(Error::UnsupportedFormat { .. })));
    fs::write(dir.path().join("weights.dat"), b"garbage!!").unwrap();
    assert!(matches!(
        ModelFile::open(&dir.path().join("weights.dat")),
        Err(Error::BadMagic { .. })
    ));
}

/// Unknown names, unsupported dtypes, missing lm_head when untied, vocab_size mismatch,
/// oversized tokenizer.json: each a typed error naming the culprit.
#[test]
fn folder_content_refusals() {
    let with_tensors = |extra: (&'static str, &'static str, &'static [u64]), cfg: &str| {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.json"), cfg).unwrap();
        let mut t = llama_tensors();
        t.push(extra);
        write_st(&dir.path().join("model.safetensors"), &t);
        ModelFile::open(dir.path())
    };
    let r = with_tensors(("model.vision.weight", "F32", &[2]), LLAMA_CONFIG);
    assert!(matches!(r, Err(Error::UnknownTensorName { name }) if name == "model.vision.weight"));
    let r = with_tensors(
        ("model.layers.0.mlp.up_proj.weight", "I64", &[2]),
        LLAMA_CONFIG,
    );
    assert!(matches!(r, Err(Error::UnsupportedDType { dtype, .. }) if dtype == "I64"));
    let untied = LLAMA_CONFIG.replace(
        r#""tie_word_embeddings":true"#,
        r#""tie_word_embeddings":false"#,
    );
    let r = with_tensors(
        ("model.layers.0.mlp.up_proj.weight", "F32", &[16, 8]),
        &untied,
    );
    assert!(matches!(r, Err(Error::MissingTensor { .. })), "{r:?}");
    let bad_vocab = LLAMA_CONFIG.replace(r#""vocab_size":5"#, r#""vocab_size":6"#);
    let r = with_tensors(
        ("model.layers.0.mlp.up_proj.weight", "F32", &[16, 8]),
        &bad_vocab,
    );
    assert!(matches!(r, Err(Error::BadHyperparameter { key, .. }) if key == "llama.vocab_size"));
    let dir = llama_dir();
    let f = fs::File::create(dir.path().join("tokenizer.json")).unwrap();
    f.set_len(tokenizer::MAX_TOKENIZER_JSON_LEN + 1).unwrap();
    assert!(matches!(
        ModelFile::open(dir.path()),
        Err(Error::FileTooLarge { .. })
    ));
    let dir = llama_dir();
    fs::write(dir.path().join("config.json"), r#"{"model_type":"bert"}"#).unwrap();
    assert!(matches!(
        ModelFile::open(dir.path()),
        Err(Error::UnsupportedArch { .. })
    ));
}

/// GGUF is recognised by its magic whatever the extension; empty files are refused.
#[test]
fn gguf_sniffed_by_magic() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/formats/tiny.gguf"
    ))
    .unwrap();
    fs::write(dir.path().join("weights.bin"), &tiny).unwrap();
    let model = ModelFile::open(&dir.path().join("weights.bin")).unwrap();
    assert_eq!(model.spec().arch, "llama");
    fs::write(dir.path().join("empty.gguf"), b"").unwrap();
    assert!(matches!(
        ModelFile::open(&dir.path().join("empty.gguf")),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        ModelFile::open(&dir.path().join("absent.gguf")),
        Err(Error::Io { .. })
    ));
}

//! The model shapes `skiff synth` knows: architecture hyperparameters exactly as the real
//! models' GGUF files declare them, and the tensor table llama.cpp's converter writes.

use skiff_formats::MetaValue;

/// One model shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// The `--shape` name.
    pub name: &'static str,
    /// `general.architecture`: `llama`, `qwen2` or `gemma3`.
    pub arch: &'static str,
    /// Decoder blocks.
    pub n_layers: usize,
    /// Residual width.
    pub d_model: usize,
    /// MLP hidden width.
    pub ffn_dim: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads.
    pub n_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Rows of the embedding table.
    pub n_vocab: usize,
    /// Training context.
    pub max_seq_len: usize,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
    /// No `output.weight`: the embedding table is the LM head.
    pub tie_embeddings: bool,
}

impl Shape {
    const fn new(name: &'static str, arch: &'static str, dims: [usize; 7], tie: bool) -> Shape {
        let [
            n_layers,
            d_model,
            ffn_dim,
            n_heads,
            n_kv_heads,
            head_dim,
            n_vocab,
        ] = dims;
        let (max_seq_len, rope_theta, norm_eps) = match arch.as_bytes() {
            b"llama" => (131_072, 500_000.0, 1e-5),
            b"gemma3" => (32_768, 1_000_000.0, 1e-6),
            _ => (32_768, 1_000_000.0, 1e-6),
        };
        Shape {
            name,
            arch,
            n_layers,
            d_model,
            ffn_dim,
            n_heads,
            n_kv_heads,
            head_dim,
            n_vocab,
            max_seq_len,
            rope_theta,
            norm_eps,
            tie_embeddings: tie,
        }
    }

    const fn with_rope(mut self, max_seq_len: usize, rope_theta: f32) -> Shape {
        self.max_seq_len = max_seq_len;
        self.rope_theta = rope_theta;
        self
    }
}

/// Every shape, by name. Dims: layers, d_model, ffn, heads, kv heads, head_dim, vocab.
pub const SHAPES: &[Shape] = &[
    Shape::new(
        "llama-3.2-3b",
        "llama",
        [28, 3072, 8192, 24, 8, 128, 128_256],
        true,
    ),
    Shape::new(
        "qwen2.5-7b",
        "qwen2",
        [28, 3584, 18944, 28, 4, 128, 152_064],
        false,
    ),
    Shape::new(
        "smollm2-135m",
        "llama",
        [30, 576, 1536, 9, 3, 64, 49_152],
        true,
    )
    .with_rope(8192, 100_000.0),
    Shape::new(
        "gemma-3-270m",
        "gemma3",
        [18, 640, 2048, 4, 1, 256, 262_144],
        true,
    ),
    Shape::new(
        "qwen2.5-coder-0.5b",
        "qwen2",
        [24, 896, 4864, 14, 2, 64, 151_936],
        false,
    ),
    Shape::new(
        "qwen2.5-coder-1.5b",
        "qwen2",
        [28, 1536, 8960, 12, 2, 128, 151_936],
        false,
    ),
    // Tiny shapes of each family, for tests (rows are multiples of 256 so K-quants apply).
    Shape::new("tiny-llama", "llama", [2, 256, 512, 4, 2, 64, 384], true).with_rope(512, 10_000.0),
    Shape::new("tiny-qwen2", "qwen2", [2, 256, 512, 4, 2, 64, 384], false).with_rope(512, 10_000.0),
    Shape::new("tiny-gemma3", "gemma3", [2, 256, 512, 2, 1, 128, 384], true)
        .with_rope(512, 10_000.0),
];

/// The shape called `name`.
pub fn find(name: &str) -> Option<&'static Shape> {
    SHAPES.iter().find(|s| s.name == name)
}

/// Comma-separated shape names, for error messages.
pub fn names() -> String {
    SHAPES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// What a synthesized tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// A weight matrix or embedding table: random values, quantized by the recipe.
    Weight,
    /// A norm scale: all ones.
    Ones,
    /// A bias: small random values, kept in f32.
    Bias,
}

/// One tensor: GGUF name, ggml dims (`dims[0]` contiguous) and content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorDef {
    /// GGUF tensor name.
    pub name: String,
    /// ggml-order dims.
    pub dims: Vec<u64>,
    /// Content.
    pub fill: Fill,
}

fn def(name: impl Into<String>, dims: &[usize], fill: Fill) -> TensorDef {
    TensorDef {
        name: name.into(),
        dims: dims.iter().map(|&d| d as u64).collect(),
        fill,
    }
}

/// The tensor table, in the order llama.cpp's converter writes it.
pub fn tensors(s: &Shape) -> Vec<TensorDef> {
    let (d, q_dim, kv_dim) = (s.d_model, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim);
    let mut out = vec![def("token_embd.weight", &[d, s.n_vocab], Fill::Weight)];
    for i in 0..s.n_layers {
        let b = |n: &str| format!("blk.{i}.{n}");
        out.push(def(b("attn_norm.weight"), &[d], Fill::Ones));
        out.push(def(b("attn_q.weight"), &[d, q_dim], Fill::Weight));
        out.push(def(b("attn_k.weight"), &[d, kv_dim], Fill::Weight));
        out.push(def(b("attn_v.weight"), &[d, kv_dim], Fill::Weight));
        if s.arch == "qwen2" {
            out.push(def(b("attn_q.bias"), &[q_dim], Fill::Bias));
            out.push(def(b("attn_k.bias"), &[kv_dim], Fill::Bias));
            out.push(def(b("attn_v.bias"), &[kv_dim], Fill::Bias));
        }
        if s.arch == "gemma3" {
            out.push(def(b("attn_q_norm.weight"), &[s.head_dim], Fill::Ones));
            out.push(def(b("attn_k_norm.weight"), &[s.head_dim], Fill::Ones));
        }
        out.push(def(b("attn_output.weight"), &[q_dim, d], Fill::Weight));
        if s.arch == "gemma3" {
            out.push(def(b("post_attention_norm.weight"), &[d], Fill::Ones));
        }
        out.push(def(b("ffn_norm.weight"), &[d], Fill::Ones));
        out.push(def(b("ffn_gate.weight"), &[d, s.ffn_dim], Fill::Weight));
        out.push(def(b("ffn_up.weight"), &[d, s.ffn_dim], Fill::Weight));
        out.push(def(b("ffn_down.weight"), &[s.ffn_dim, d], Fill::Weight));
        if s.arch == "gemma3" {
            out.push(def(b("post_ffw_norm.weight"), &[d], Fill::Ones));
        }
    }
    out.push(def("output_norm.weight", &[d], Fill::Ones));
    if !s.tie_embeddings {
        out.push(def("output.weight", &[d, s.n_vocab], Fill::Weight));
    }
    out
}

/// The architecture keys (`{arch}.*`) and `general.*` naming of the shape.
pub fn metadata(s: &Shape) -> Vec<(String, MetaValue)> {
    let a = s.arch;
    let u = |v: usize| MetaValue::U32(u32::try_from(v).unwrap_or(u32::MAX));
    let mut md = vec![
        (
            "general.architecture".to_string(),
            MetaValue::String(a.to_string()),
        ),
        (
            "general.type".to_string(),
            MetaValue::String("model".to_string()),
        ),
        (
            "general.name".to_string(),
            MetaValue::String(format!("synthetic {} (random weights)", s.name)),
        ),
        (format!("{a}.block_count"), u(s.n_layers)),
        (format!("{a}.context_length"), u(s.max_seq_len)),
        (format!("{a}.embedding_length"), u(s.d_model)),
        (format!("{a}.feed_forward_length"), u(s.ffn_dim)),
        (format!("{a}.attention.head_count"), u(s.n_heads)),
        (format!("{a}.attention.head_count_kv"), u(s.n_kv_heads)),
        (format!("{a}.rope.freq_base"), MetaValue::F32(s.rope_theta)),
        (
            format!("{a}.attention.layer_norm_rms_epsilon"),
            MetaValue::F32(s.norm_eps),
        ),
    ];
    if s.head_dim * s.n_heads != s.d_model || a == "gemma3" {
        md.push((format!("{a}.attention.key_length"), u(s.head_dim)));
        md.push((format!("{a}.attention.value_length"), u(s.head_dim)));
    }
    if a == "llama" {
        md.push((format!("{a}.vocab_size"), u(s.n_vocab)));
        md.push((format!("{a}.rope.dimension_count"), u(s.head_dim)));
    }
    if a == "gemma3" {
        md.push((format!("{a}.attention.sliding_window"), u(512)));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_consistent() {
        for s in SHAPES {
            assert_eq!(s.n_heads % s.n_kv_heads, 0, "{}", s.name);
            assert!(find(s.name).is_some());
            let t = tensors(s);
            let per_layer = match s.arch {
                "qwen2" => 12,
                "gemma3" => 13,
                _ => 9,
            };
            let top = if s.tie_embeddings { 2 } else { 3 };
            assert_eq!(t.len(), s.n_layers * per_layer + top, "{}", s.name);
        }
        assert!(find("nope").is_none());
        assert!(names().contains("qwen2.5-7b"));
    }

    #[test]
    fn llama_3b_and_qwen_7b_have_their_real_parameter_counts() {
        let n_params = |name: &str| -> u64 {
            let s = find(name).expect("shape exists");
            tensors(s)
                .iter()
                .map(|t| t.dims.iter().product::<u64>())
                .sum()
        };
        // Published sizes: Llama-3.2-3B 3.21 B, Qwen2.5-7B 7.62 B.
        assert_eq!(n_params("llama-3.2-3b") / 10_000_000, 321);
        assert_eq!(n_params("qwen2.5-7b") / 10_000_000, 761);
        // The shipped SmolLM2 file has 134.52 M values.
        assert_eq!(n_params("smollm2-135m"), 134_515_008);
    }
}

//! Hugging Face tensor names → GGUF tensor names, by table.

/// Whole-model tensors.
const GLOBAL: &[(&str, &str)] = &[
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Per-layer tensors shared by every architecture: `model.layers.{i}.<hf>` → `blk.{i}.<gguf>`.
const LAYER: &[(&str, &str)] = &[
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
    ("input_layernorm.weight", "attn_norm.weight"),
];

/// Per-layer norms of llama-like models (pre-norm only).
const LAYER_LLAMA: &[(&str, &str)] = &[("post_attention_layernorm.weight", "ffn_norm.weight")];

/// Per-layer norms of Gemma 3 (sandwich norms around attention and MLP).
const LAYER_GEMMA3: &[(&str, &str)] = &[
    (
        "post_attention_layernorm.weight",
        "post_attention_norm.weight",
    ),
    ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
    ("post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
];

/// Prefixes that wrap the text model in multimodal checkpoints; stripped to `model.`.
const WRAPPERS: &[&str] = &["model.language_model.", "language_model.model."];

/// What a Hugging Face tensor name maps to.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped {
    /// A weight with this GGUF name.
    Name(String),
    /// A non-weight buffer that skiff recomputes (`rotary_emb.inv_freq`): skip it.
    Skip,
}

/// The GGUF name of `hf_name` in a model of architecture `arch`, or `None` when unknown.
pub fn gguf_name(hf_name: &str, arch: &str) -> Option<Mapped> {
    let name = WRAPPERS
        .iter()
        .find_map(|w| hf_name.strip_prefix(w).map(|rest| format!("model.{rest}")))
        .unwrap_or_else(|| hf_name.to_string());
    if name == "language_model.lm_head.weight" {
        return Some(Mapped::Name("output.weight".into()));
    }
    if let Some((_, g)) = GLOBAL.iter().find(|(h, _)| *h == name) {
        return Some(Mapped::Name((*g).to_string()));
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (idx, suffix) = rest.split_once('.')?;
    let layer_idx: usize = idx.parse().ok()?;
    if suffix == "self_attn.rotary_emb.inv_freq" {
        return Some(Mapped::Skip);
    }
    let arch_table = if arch == "gemma3" {
        LAYER_GEMMA3
    } else {
        LAYER_LLAMA
    };
    let (_, g) = LAYER.iter().chain(arch_table).find(|(h, _)| *h == suffix)?;
    Some(Mapped::Name(format!("blk.{layer_idx}.{g}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(hf: &str, arch: &str) -> Option<String> {
        match gguf_name(hf, arch) {
            Some(Mapped::Name(n)) => Some(n),
            _ => None,
        }
    }

    /// The table covers llama-like and Gemma 3 names; unknown names map to nothing.
    #[test]
    fn names_map_by_arch() {
        assert_eq!(
            name("model.embed_tokens.weight", "llama").as_deref(),
            Some("token_embd.weight")
        );
        assert_eq!(
            name("model.layers.3.self_attn.q_proj.weight", "qwen2").as_deref(),
            Some("blk.3.attn_q.weight")
        );
        assert_eq!(
            name("model.layers.0.self_attn.k_norm.weight", "qwen3").as_deref(),
            Some("blk.0.attn_k_norm.weight")
        );
        assert_eq!(
            name("model.layers.1.post_attention_layernorm.weight", "llama").as_deref(),
            Some("blk.1.ffn_norm.weight")
        );
        assert_eq!(
            name("model.layers.1.post_attention_layernorm.weight", "gemma3").as_deref(),
            Some("blk.1.post_attention_norm.weight")
        );
        assert_eq!(
            name("model.layers.2.pre_feedforward_layernorm.weight", "gemma3").as_deref(),
            Some("blk.2.ffn_norm.weight")
        );
        assert_eq!(
            name("model.language_model.norm.weight", "gemma3").as_deref(),
            Some("output_norm.weight")
        );
        assert_eq!(
            name("lm_head.weight", "llama").as_deref(),
            Some("output.weight")
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq", "llama"),
            Some(Mapped::Skip)
        );
        assert_eq!(
            gguf_name("model.layers.0.pre_feedforward_layernorm.weight", "llama"),
            None
        );
        assert_eq!(
            gguf_name("model.layers.x.mlp.up_proj.weight", "llama"),
            None
        );
        assert_eq!(gguf_name("vision_tower.patch.weight", "gemma3"), None);
    }
}

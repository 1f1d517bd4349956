//! Which type each tensor gets: llama.cpp's `llama_tensor_get_type` for the file types
//! `skiff quantize` offers, ported from `src/llama-quant.cpp` (functions
//! `tensor_allows_quantization`, `tensor_get_category`, `llama_tensor_get_type_impl`,
//! `tensor_type_fallback`, `llama_ftype_get_default_type`).
//!
//! The rules that matter for llama / qwen2 / gemma3 (and Mixtral-style MoE, Falcon, the
//! Llama-2/3 70B special case, which are ported as written):
//! - Only tensors with ≥ 2 dimensions (trailing 1s ignored) whose name ends in `weight` are
//!   quantized; norms, biases, MoE routers (`ffn_gate_inp`) and a list of small special
//!   tensors keep their type and bytes.
//! - `output.weight`, and `token_embd.weight` when the embeddings are tied (no
//!   `output.weight`), get Q6_K unless the file type is Q8_0 (Q8_0 when the row length is not
//!   a multiple of the default type's block).
//! - `_M` mixes: `attn_v` (and fused `attn_qkv`/`attn_kv_b`) and `ffn_down` get Q6_K where
//!   `use_more_bits(i, n)`: the first and last eighth of the layers and every third layer in
//!   between. Fused `attn_qkv` gets Q5_K (Q4_K_M) / Q6_K (Q5_K_M).
//! - A row length that is not a multiple of 256 falls back: Q4_K → Q5_0, Q5_K → Q5_1,
//!   Q6_K → Q8_0 (F16 if even that does not fit).
//!
//! llama.cpp counts `attn_v` and `ffn_down` tensors in the order of its `weights_map`
//! (layer number, then name); [`plan`] computes the same ordinals.

use std::collections::HashMap;

use skiff_formats::{ModelSpec, TensorInfo};
use skiff_tensor::DType;

/// The file types `skiff quantize` writes (llama.cpp's `LLAMA_FTYPE_MOSTLY_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ftype {
    /// Q4_0 everywhere (output and tied embeddings Q6_K).
    #[value(name = "q4_0")]
    Q4_0,
    /// Q4_1 everywhere (output and tied embeddings Q6_K).
    #[value(name = "q4_1")]
    Q4_1,
    /// Q8_0 everywhere.
    #[value(name = "q8_0")]
    Q8_0,
    /// Q4_K with Q6_K for sensitive tensors.
    #[value(name = "q4_k_m")]
    Q4KM,
    /// Q5_K with Q6_K for sensitive tensors.
    #[value(name = "q5_k_m")]
    Q5KM,
    /// Q6_K everywhere.
    #[value(name = "q6_k")]
    Q6K,
}

impl Ftype {
    /// llama.cpp's `llama_ftype` number, written as `general.file_type`.
    pub fn llama_ftype_id(self) -> u32 {
        match self {
            Ftype::Q4_0 => 2,
            Ftype::Q4_1 => 3,
            Ftype::Q8_0 => 7,
            Ftype::Q4KM => 15,
            Ftype::Q5KM => 17,
            Ftype::Q6K => 18,
        }
    }

    /// `llama_ftype_get_default_type`: the type of every tensor no rule singles out.
    pub fn default_type(self) -> DType {
        match self {
            Ftype::Q4_0 => DType::Q4_0,
            Ftype::Q4_1 => DType::Q4_1,
            Ftype::Q8_0 => DType::Q8_0,
            Ftype::Q4KM => DType::Q4K,
            Ftype::Q5KM => DType::Q5K,
            Ftype::Q6K => DType::Q6K,
        }
    }
}

/// Why no type could be chosen for a tensor.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The row length fits neither the chosen type nor any fallback (llama.cpp aborts too).
    #[error(
        "tensor {name}: row length {row_len} is not a multiple of {block_len} (required for \
         {dtype}) and {dtype} has no fallback type"
    )]
    NoFallback {
        /// The tensor.
        name: String,
        /// Its row length (`dims[0]`).
        row_len: u64,
        /// The type chosen.
        dtype: DType,
        /// That type's block length.
        block_len: usize,
    },
}

/// llama.cpp's `tensor_category`: broad roles recognised by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

/// `tensor_get_category` (first match wins, in this order).
fn category(name: &str) -> Category {
    if name == "output.weight" {
        return Category::Output;
    }
    if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Category::TokenEmbd;
    }
    let by_substring = [
        ("attn_qkv.weight", Category::AttnQkv),
        ("attn_kv_b.weight", Category::AttnKvB),
        ("attn_v.weight", Category::AttnV),
        ("attn_k.weight", Category::AttnK),
        ("attn_q.weight", Category::AttnQ),
        ("attn_output.weight", Category::AttnOutput),
        ("ffn_up", Category::FfnUp),
        ("ffn_gate", Category::FfnGate),
        ("ffn_down", Category::FfnDown),
    ];
    by_substring
        .iter()
        .find(|(s, _)| name.contains(s))
        .map_or(Category::Other, |&(_, c)| c)
}

/// `category_is_attn_v`: attention-value-like tensors, more sensitive to quantization.
fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// Name fragments `tensor_allows_quantization` refuses to quantize.
const NEVER_QUANTIZED: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// `tensor_allows_quantization`: ≥ 2 real dimensions, a `weight`, and not on the keep list.
fn allows_quantization(t: &TensorInfo) -> bool {
    let n_dims = t.dims.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1);
    n_dims >= 2
        && t.name.ends_with("weight")
        && t.name != "position_embd.weight"
        && t.name != "token_types.weight"
        && !NEVER_QUANTIZED.iter().any(|s| t.name.contains(s))
}

/// `use_more_bits`: first and last eighth of the layers, and every third one in between.
fn use_more_bits(i_layer: usize, n_layers: usize) -> bool {
    let (i, n) = (i_layer as i64, n_layers as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// What llama.cpp's rules need to know about the model.
struct ModelFacts {
    arch: String,
    n_layers: usize,
    n_expert: u64,
    is_llama_70b: bool,
    tied_embeddings: bool,
    /// Ordinal of each attn_v-like / ffn_down tensor among its kind, in weights_map order.
    ordinal: HashMap<String, usize>,
    n_attention_wv: usize,
}

/// The `blk.N.` layer number of a tensor name (-1 for non-block tensors, as llama.cpp sorts).
fn layer_of(name: &str) -> i64 {
    name.strip_prefix("blk.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

impl ModelFacts {
    fn new(spec: &ModelSpec) -> ModelFacts {
        let hp = &spec.hparams;
        let expert_key = format!("{}.expert_count", spec.arch);
        let n_expert = spec
            .metadata
            .get(&expert_key)
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let is_llama_70b = spec.arch == "llama" && hp.n_layers == 80 && hp.n_heads != hp.n_kv_heads;
        ModelFacts::from_parts(
            &spec.arch,
            hp.n_layers,
            n_expert,
            is_llama_70b,
            &spec.tensors,
        )
    }

    fn from_parts(
        arch: &str,
        n_layers: usize,
        n_expert: u64,
        is_llama_70b: bool,
        tensors: &[TensorInfo],
    ) -> ModelFacts {
        let mut sorted: Vec<&TensorInfo> =
            tensors.iter().filter(|t| allows_quantization(t)).collect();
        sorted.sort_by(|a, b| (layer_of(&a.name), &a.name).cmp(&(layer_of(&b.name), &b.name)));
        let mut ordinal = HashMap::new();
        let (mut i_wv, mut i_down) = (0, 0);
        for t in sorted {
            let c = category(&t.name);
            let counter = if is_attn_v(c) {
                &mut i_wv
            } else if c == Category::FfnDown {
                &mut i_down
            } else {
                continue;
            };
            ordinal.insert(t.name.clone(), *counter);
            *counter += 1;
        }
        ModelFacts {
            arch: arch.to_string(),
            n_layers,
            n_expert,
            is_llama_70b,
            tied_embeddings: !tensors
                .iter()
                .any(|t| category(&t.name) == Category::Output),
            n_attention_wv: tensors
                .iter()
                .filter(|t| is_attn_v(category(&t.name)))
                .count(),
            ordinal,
        }
    }

    /// `layer_info`: the counter, or for MoE models the layer parsed from the name.
    fn ffn_layer(&self, name: &str) -> usize {
        if self.n_expert > 1 {
            return usize::try_from(layer_of(name)).unwrap_or(0);
        }
        self.ordinal.get(name).copied().unwrap_or(0)
    }
}

/// `llama_tensor_get_type_impl` for the file types of [`Ftype`].
fn choose_type(ftype: Ftype, facts: &ModelFacts, t: &TensorInfo) -> DType {
    let default = ftype.default_type();
    let c = category(&t.name);
    let falcon = facts.arch == "falcon";
    let m_mix = matches!(ftype, Ftype::Q4KM | Ftype::Q5KM);
    if c == Category::Output || (facts.tied_embeddings && c == Category::TokenEmbd) {
        let row_len = t.dims[0];
        return if falcon
            || !row_len.is_multiple_of(default.block_len() as u64)
            || default == DType::Q8_0
        {
            DType::Q8_0
        } else {
            DType::Q6K
        };
    }
    match c {
        c if is_attn_v(c) => {
            let i = facts.ordinal.get(&t.name).copied().unwrap_or(0);
            let mut new = if m_mix && use_more_bits(i, facts.n_attention_wv) {
                DType::Q6K
            } else {
                default
            };
            if facts.is_llama_70b && matches!(new, DType::Q3K | DType::Q4K) {
                new = DType::Q5K;
            }
            if facts.n_expert == 8 {
                DType::Q8_0
            } else {
                new
            }
        }
        Category::AttnK if facts.n_expert == 8 => DType::Q8_0,
        Category::FfnDown => ffn_down_type(ftype, facts, &t.name, falcon),
        Category::AttnOutput if !falcon && facts.n_expert == 8 && ftype == Ftype::Q4KM => {
            DType::Q5K
        }
        Category::AttnQkv if ftype == Ftype::Q4KM => DType::Q5K,
        Category::AttnQkv if ftype == Ftype::Q5KM => DType::Q6K,
        _ => default,
    }
}

/// The `ffn_down` branch of `llama_tensor_get_type_impl`.
fn ffn_down_type(ftype: Ftype, facts: &ModelFacts, name: &str, falcon: bool) -> DType {
    let i = facts.ffn_layer(name);
    let n = facts.n_layers;
    match ftype {
        Ftype::Q4KM if falcon => {
            if i < n / 16 {
                DType::Q6K
            } else if use_more_bits(i, n) {
                DType::Q5K
            } else {
                DType::Q4K
            }
        }
        Ftype::Q4KM | Ftype::Q5KM if use_more_bits(i, n) => DType::Q6K,
        _ => ftype.default_type(),
    }
}

/// `tensor_type_fallback`: a type whose block fits the row length.
fn fallback(t: &TensorInfo, dtype: DType) -> Result<DType, RecipeError> {
    let row_len = t.dims[0];
    if row_len.is_multiple_of(dtype.block_len() as u64) {
        return Ok(dtype);
    }
    let next = match dtype {
        DType::Q2K | DType::Q3K => DType::Q4_0,
        DType::Q4K => DType::Q5_0,
        DType::Q5K => DType::Q5_1,
        DType::Q6K => DType::Q8_0,
        _ => {
            let block_len = dtype.block_len();
            return Err(RecipeError::NoFallback {
                name: t.name.clone(),
                row_len,
                dtype,
                block_len,
            });
        }
    };
    Ok(if row_len.is_multiple_of(next.block_len() as u64) {
        next
    } else {
        DType::F16
    })
}

/// The output type of every tensor of `spec`, in file order: `None` keeps the tensor as it
/// is (type and bytes), `Some(t)` converts it to `t`.
pub fn plan(ftype: Ftype, spec: &ModelSpec) -> Result<Vec<Option<DType>>, RecipeError> {
    plan_with(ftype, &ModelFacts::new(spec), &spec.tensors)
}

/// [`plan`] over explicit model facts.
fn plan_with(
    ftype: Ftype,
    facts: &ModelFacts,
    tensors: &[TensorInfo],
) -> Result<Vec<Option<DType>>, RecipeError> {
    tensors
        .iter()
        .map(|t| {
            if !allows_quantization(t) {
                return Ok(None);
            }
            let target = fallback(t, choose_type(ftype, facts, t))?;
            Ok((target != t.dtype).then_some(target))
        })
        .collect()
}

#[cfg(test)]
#[path = "recipe_tests.rs"]
mod tests;

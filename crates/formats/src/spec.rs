//! The typed model description every loader produces: [`ModelSpec`].
//!
//! GGUF files and Hugging Face folders both end up here, so nothing above `formats` ever
//! branches on the file format. Conventions, fixed for all sources:
//! - Tensor names are GGUF's (`token_embd.weight`, `blk.{i}.attn_q.weight`, …); the
//!   Hugging Face loader maps its names onto these.
//! - Tensor dimensions are in ggml order: `dims[0]` is the contiguous (fastest) axis. A
//!   weight matrix `W` with `y = W x` has `dims = [in_features, out_features]`, each row of
//!   `in_features` values stored contiguously (the bytes of safetensors' `[out, in]`).
//! - Hyperparameters use skiff's dimension vocabulary (`n_layers`, `d_model`, …); the GGUF
//!   key each comes from is named on its field.

use std::collections::BTreeMap;

use skiff_tensor::DType;

use crate::gguf::MetaValue;

/// Which file format a model came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceFormat {
    /// A GGUF file of the given version (2 or 3).
    Gguf {
        /// The header's version field.
        version: u32,
    },
    /// A Hugging Face folder of `config.json` and one or more `.safetensors` shards.
    Safetensors,
}

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopePairing {
    /// Adjacent pairs `(2i, 2i+1)` (GPT-J style; llama.cpp's `LLAMA_ROPE_TYPE_NORM`). GGUF
    /// files of the `llama` family use it because the converter permutes Q and K.
    Interleaved,
    /// Halves `(i, i + rot_dim/2)` (GPT-NeoX style, `rotate_half` in transformers).
    Neox,
}

/// RoPE frequency scaling declared by the model (`{arch}.rope.scaling.*`).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// No scaling.
    None,
    /// Positions divided by `factor` (`rope.scaling.type = linear`).
    Linear {
        /// `rope.scaling.factor`.
        factor: f32,
    },
    /// YaRN (`rope.scaling.type = yarn`).
    Yarn {
        /// `rope.scaling.factor`.
        factor: f32,
        /// `rope.scaling.original_context_length`.
        original_max_seq_len: usize,
        /// `rope.scaling.yarn_beta_fast` (default 32).
        beta_fast: f32,
        /// `rope.scaling.yarn_beta_slow` (default 1).
        beta_slow: f32,
    },
    /// Llama 3.1 frequency-dependent scaling. GGUF files carry it as a precomputed
    /// `rope_freqs.weight` tensor, so it appears here only for Hugging Face folders.
    Llama3 {
        /// `rope_scaling.factor`.
        factor: f32,
        /// `rope_scaling.low_freq_factor`.
        low_freq_factor: f32,
        /// `rope_scaling.high_freq_factor`.
        high_freq_factor: f32,
        /// `rope_scaling.original_max_position_embeddings`.
        original_max_seq_len: usize,
    },
}

/// Rotary position embedding settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeSpec {
    /// `{arch}.rope.freq_base` (default 10000).
    pub theta: f32,
    /// `{arch}.rope.dimension_count`: how many dims of each head rotate (default `head_dim`).
    pub rot_dim: usize,
    /// Dimension pairing, fixed by architecture and source format.
    pub pairing: RopePairing,
    /// Frequency scaling.
    pub scaling: RopeScaling,
}

/// Architecture hyperparameters, validated: every count is non-zero and heads divide evenly.
#[derive(Clone, Debug, PartialEq)]
pub struct HParams {
    /// `{arch}.block_count`.
    pub n_layers: usize,
    /// `{arch}.embedding_length`.
    pub d_model: usize,
    /// `{arch}.attention.head_count`.
    pub n_heads: usize,
    /// `{arch}.attention.head_count_kv` (default `n_heads`).
    pub n_kv_heads: usize,
    /// `{arch}.attention.key_length` (default `d_model / n_heads`).
    pub head_dim: usize,
    /// `{arch}.attention.value_length` (default `head_dim`).
    pub head_dim_v: usize,
    /// `{arch}.feed_forward_length`.
    pub ffn_dim: usize,
    /// Rows of `token_embd.weight` (the tokenizer's vocabulary may be shorter).
    pub n_vocab: usize,
    /// `{arch}.context_length`: the training context.
    pub max_seq_len: usize,
    /// `{arch}.attention.layer_norm_rms_epsilon` (default 1e-5).
    pub norm_eps: f32,
    /// RoPE settings.
    pub rope: RopeSpec,
    /// `{arch}.attention.sliding_window`: window of local-attention layers, if any.
    pub sliding_window: Option<usize>,
    /// `{arch}.attn_logit_softcapping`, if set.
    pub attn_logit_softcap: Option<f32>,
    /// `{arch}.final_logit_softcapping`, if set.
    pub final_logit_softcap: Option<f32>,
    /// True when there is no `output.weight`: the LM head is `token_embd.weight`.
    pub tie_embeddings: bool,
}

/// The tokenizer a model declares.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerSpec {
    /// Vocabulary embedded in GGUF metadata (`tokenizer.ggml.*`).
    Gguf(GgufVocab),
    /// A Hugging Face `tokenizer.json`, held as its bytes (capped in size before reading).
    HfJson {
        /// The file's contents.
        json: Vec<u8>,
        /// `bos_token` / `eos_token` and friends from `tokenizer_config.json`, resolved
        /// to ids through the tokenizer's added tokens when possible.
        special: SpecialTokens,
    },
    /// The model ships no tokenizer.
    Missing,
}

/// Special token ids and flags. Ids are checked to be inside the vocabulary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecialTokens {
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token` (None when the file does not say).
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token` (None when the file does not say).
    pub add_eos: Option<bool>,
}

/// A vocabulary stored in GGUF metadata, validated: `tokens`, `scores` and `token_types`
/// have equal lengths (or are absent), and every special id is below `tokens.len()`.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE), `llama` (SentencePiece), …
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer profile of `gpt2` vocabularies.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (SentencePiece), empty when absent.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte), empty when absent.
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` (BPE), empty when absent.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece; None when the file does not say).
    pub add_space_prefix: Option<bool>,
    /// Special ids and flags.
    pub special: SpecialTokens,
}

/// One tensor of the model: where its bytes are and how to read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The GGUF-style name.
    pub name: String,
    /// Dimensions in ggml order (`dims[0]` contiguous); 1 to 4 of them, none zero.
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: DType,
    /// Index of the file (shard) holding the bytes; always 0 for GGUF.
    pub shard: usize,
    /// Absolute byte offset of the first byte inside that file.
    pub offset: u64,
    /// Byte length (`dtype.bytes_for(product of dims)`), checked to lie inside the file.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of values.
    pub fn n_values(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// Everything skiff knows about a model before running it.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// `general.architecture` (`llama`, `qwen2`, `qwen3`, `gemma3`, …). For Hugging Face
    /// folders, mapped from `config.json`'s `model_type`.
    pub arch: String,
    /// `general.name`, if present.
    pub name: Option<String>,
    /// Where it came from.
    pub source: SourceFormat,
    /// Architecture hyperparameters.
    pub hparams: HParams,
    /// The tokenizer.
    pub tokenizer: TokenizerSpec,
    /// `tokenizer.chat_template` (or `tokenizer_config.json`'s `chat_template`).
    pub chat_template: Option<String>,
    /// The tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// All metadata as GGUF keys (Hugging Face folders get keys synthesized from
    /// `config.json`), for arch-specific keys the fields above do not cover.
    pub metadata: BTreeMap<String, MetaValue>,
    /// Added to every RMSNorm weight before use: the norm computes `x̂ * (w + offset)`.
    /// Gemma's Hugging Face checkpoints store `w` and apply `(1 + w)`, while GGUF converters
    /// store `1 + w` already; so this is `1.0` for Gemma loaded from Hugging Face safetensors
    /// and `0.0` everywhere else.
    pub norm_weight_offset: f32,
}

/// The GGUF metadata arrays that hold a vocabulary (its typed copy is the spec's
/// [`GgufVocab`]).
const VOCAB_ARRAYS: [&str; 4] = [
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
];

impl ModelSpec {
    /// Frees the vocabulary once a tokenizer has been built from it: the token, score, type
    /// and merge lists of a GGUF vocabulary (both the typed [`GgufVocab`] lists and their
    /// `tokenizer.ggml.*` metadata arrays) and a Hugging Face `tokenizer.json`. Everything
    /// else stays, special token ids and flags included. For a vocabulary of 262k entries
    /// (Gemma 3) that is about 35 MiB a running model no longer holds. A spec without its
    /// vocabulary cannot build a tokenizer again, nor be written out whole by `quantize`.
    pub fn drop_vocabulary(&mut self) {
        match &mut self.tokenizer {
            TokenizerSpec::Gguf(vocab) => {
                vocab.tokens = Vec::new();
                vocab.scores = Vec::new();
                vocab.token_types = Vec::new();
                vocab.merges = Vec::new();
            }
            TokenizerSpec::HfJson { json, .. } => *json = Vec::new(),
            TokenizerSpec::Missing => {}
        }
        for key in VOCAB_ARRAYS {
            self.metadata.remove(key);
        }
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Total parameter count (values in all tensors).
    pub fn n_params(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::n_values).sum()
    }

    /// Total bytes of tensor data.
    pub fn n_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.n_bytes).sum()
    }
}

//! `skiff inspect MODEL [--ctx N] [--parallel P] [--json]`: what a model is and what it
//! needs to run.
//!
//! MODEL is a path (GGUF file or Hugging Face folder) or a store name. The memory estimate
//! for `--ctx` tokens of context (default: the model's own context length) times
//! `--parallel` sequences (default 1) is:
//! - weights: the bytes of tensor data, as stored (mapped, not converted);
//! - KV cache, f16: `n_layers × n_kv_heads × (head_dim + head_dim_v) × ctx × parallel × 2`;
//! - scratch, f32 activations for one prompt chunk of `chunk = min(512, ctx)` tokens:
//!   `4 × (chunk × (4·d_model + 3·ffn_dim + n_heads·ctx) + parallel × n_vocab)` — per chunk
//!   token, four `d_model` rows (residual, norm, attention output, projection), three
//!   `ffn_dim` rows (gate, up, activation) and one row of attention scores per head over the
//!   whole context; plus one row of logits per sequence. It is an upper bound for an
//!   engine that does not fuse attention, so real use should be at or below it.
//! - total: the sum.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::json;
use skiff_formats::{ModelFile, ModelSpec, TokenizerSpec};
use skiff_tensor::DType;

use super::list::{file_type_name, format_bytes};
use super::pull::StoreArgs;

/// Tokens of prompt processed per step in the scratch estimate.
const PROMPT_CHUNK: u64 = 512;

/// Arguments of `skiff inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A GGUF file, a Hugging Face folder, or a model name from `skiff list`.
    pub model: String,
    /// Context length for the memory estimate [default: the model's context length].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub ctx: Option<u64>,
    /// Sequences served at once, for the memory estimate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub parallel: u64,
    /// Print one JSON object (stable snake_case keys) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Memory needed to run a model, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Context length used.
    pub ctx: u64,
    /// Parallel sequences used.
    pub parallel: u64,
    /// Tensor data.
    pub weights: u64,
    /// f16 KV cache.
    pub kv_cache: u64,
    /// f32 activations for one prompt chunk.
    pub scratch: u64,
}

impl MemoryEstimate {
    /// Applies the formulas of the module docs (saturating, never overflowing).
    pub fn new(spec: &ModelSpec, ctx: u64, parallel: u64) -> MemoryEstimate {
        let hp = &spec.hparams;
        let n = |v: usize| v as u64;
        let kv_cache = [
            n(hp.n_layers),
            n(hp.n_kv_heads),
            n(hp.head_dim + hp.head_dim_v),
            ctx,
            parallel,
            2,
        ]
        .into_iter()
        .fold(1u64, u64::saturating_mul);
        let chunk = PROMPT_CHUNK.min(ctx);
        let per_token = (4 * n(hp.d_model))
            .saturating_add(3 * n(hp.ffn_dim))
            .saturating_add(n(hp.n_heads).saturating_mul(ctx));
        let scratch = chunk
            .saturating_mul(per_token)
            .saturating_add(parallel.saturating_mul(n(hp.n_vocab)))
            .saturating_mul(4);
        MemoryEstimate {
            ctx,
            parallel,
            weights: spec.n_bytes(),
            kv_cache,
            scratch,
        }
    }

    /// Weights + KV cache + scratch.
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.kv_cache)
            .saturating_add(self.scratch)
    }
}

/// Per-dtype tensor counts, values and bytes, largest first.
fn dtype_mix(spec: &ModelSpec) -> Vec<(DType, u64, u64, u64)> {
    let mut mix: BTreeMap<DType, (u64, u64, u64)> = BTreeMap::new();
    for t in &spec.tensors {
        let e = mix.entry(t.dtype).or_default();
        e.0 += 1;
        e.1 += t.n_values();
        e.2 += t.n_bytes;
    }
    let mut rows: Vec<_> = mix.into_iter().map(|(d, (n, v, b))| (d, n, v, b)).collect();
    rows.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)));
    rows
}

/// `gpt2 BPE (pre: smollm)`, `llama SentencePiece`, `tokenizer.json`, or `none`.
pub fn tokenizer_kind(tokenizer: &TokenizerSpec) -> String {
    match tokenizer {
        TokenizerSpec::Gguf(v) => {
            let kind = match v.model.as_str() {
                "gpt2" => "gpt2 BPE".to_string(),
                "llama" => "llama SentencePiece".to_string(),
                other => other.to_string(),
            };
            match v.pre.as_deref() {
                Some(pre) if !pre.is_empty() => format!("{kind} (pre: {pre})"),
                _ => kind,
            }
        }
        TokenizerSpec::HfJson { .. } => "tokenizer.json".to_string(),
        TokenizerSpec::Missing => "none".to_string(),
    }
}

/// Parameter counts for people: `950`, `12.3K`, `134.5M`, `1.54B`.
pub fn format_params(n: u64) -> String {
    let v = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}K", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", v / 1e6),
        _ => format!("{:.2}B", v / 1e9),
    }
}

/// Runs `skiff inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    // An existing path needs no store (and inspecting a file must not create one).
    let path = if std::path::Path::new(&args.model).exists() {
        std::path::PathBuf::from(&args.model)
    } else {
        args.store.open()?.resolve(&args.model)?
    };
    let model =
        ModelFile::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let shown = if path.as_os_str() == args.model.as_str() {
        args.model.clone()
    } else {
        format!("{} ({})", args.model, path.display())
    };
    let spec = model.spec();
    let ctx = args.ctx.unwrap_or(spec.hparams.max_seq_len as u64);
    let memory = MemoryEstimate::new(spec, ctx, args.parallel);
    if args.json {
        println!(
            "{}",
            report_json(spec, model.file_size(), &memory, args.ctx.is_none())
        );
    } else {
        print_report(&shown, spec, model.file_size(), &memory, args.ctx.is_none());
    }
    Ok(())
}

fn report_json(
    spec: &ModelSpec,
    file_size: u64,
    m: &MemoryEstimate,
    ctx_is_default: bool,
) -> serde_json::Value {
    let hp = &spec.hparams;
    let types: Vec<_> = dtype_mix(spec)
        .into_iter()
        .map(|(d, n, v, b)| json!({"dtype": d.to_string(), "n_tensors": n, "n_params": v, "n_bytes": b}))
        .collect();
    let n_tokens = match &spec.tokenizer {
        TokenizerSpec::Gguf(v) => Some(v.tokens.len()),
        _ => None,
    };
    json!({
        "arch": spec.arch,
        "name": spec.name,
        "n_params": spec.n_params(),
        "file_size": file_size,
        "file_type": file_type_name(spec),
        "tensor_bytes": spec.n_bytes(),
        "context_length": hp.max_seq_len,
        "n_layers": hp.n_layers,
        "d_model": hp.d_model,
        "n_heads": hp.n_heads,
        "n_kv_heads": hp.n_kv_heads,
        "head_dim": hp.head_dim,
        "head_dim_v": hp.head_dim_v,
        "ffn_dim": hp.ffn_dim,
        "n_vocab": hp.n_vocab,
        "tokenizer": tokenizer_kind(&spec.tokenizer),
        "tokenizer_n_tokens": n_tokens,
        "chat_template": spec.chat_template.is_some(),
        "tensor_types": types,
        "memory": {
            "ctx": m.ctx,
            "ctx_is_default": ctx_is_default,
            "parallel": m.parallel,
            "weights_bytes": m.weights,
            "kv_cache_bytes": m.kv_cache,
            "scratch_bytes": m.scratch,
            "total_bytes": m.total(),
        },
    })
}

fn print_report(
    path: &str,
    spec: &ModelSpec,
    file_size: u64,
    m: &MemoryEstimate,
    ctx_is_default: bool,
) {
    let hp = &spec.hparams;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("model           {path}");
    println!("architecture    {}", spec.arch);
    println!("name            {}", spec.name.as_deref().unwrap_or("-"));
    println!(
        "parameters      {} ({})",
        format_params(spec.n_params()),
        spec.n_params()
    );
    println!(
        "file size       {} ({file_size} bytes)",
        format_bytes(file_size)
    );
    println!("quantization    {}", file_type_name(spec).unwrap_or("-"));
    println!("context length  {}", hp.max_seq_len);
    println!(
        "shape           {} layers, d_model {}, {} heads ({} KV, head_dim {}), ffn_dim {}",
        hp.n_layers, hp.d_model, hp.n_heads, hp.n_kv_heads, hp.head_dim, hp.ffn_dim
    );
    println!(
        "vocabulary      {} ({})",
        hp.n_vocab,
        tokenizer_kind(&spec.tokenizer)
    );
    println!("chat template   {}", yes_no(spec.chat_template.is_some()));
    println!("tensor types");
    for (dtype, n, _, bytes) in dtype_mix(spec) {
        println!(
            "  {:<6} {n:>5} tensors  {:>10}",
            dtype.to_string(),
            format_bytes(bytes)
        );
    }
    let ctx_note = if ctx_is_default {
        " (the model's context length; set with --ctx)"
    } else {
        ""
    };
    println!(
        "memory at ctx {}{ctx_note} x parallel {}",
        m.ctx, m.parallel
    );
    println!("  weights       {:>10}", format_bytes(m.weights));
    println!(
        "  KV cache      {:>10}  (f16 K and V for every layer and position)",
        format_bytes(m.kv_cache)
    );
    println!(
        "  scratch       {:>10}  (f32 activations for a {}-token prompt chunk)",
        format_bytes(m.scratch),
        PROMPT_CHUNK.min(m.ctx)
    );
    println!("  total         {:>10}", format_bytes(m.total()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_formatted_with_si_suffixes() {
        assert_eq!(format_params(950), "950");
        assert_eq!(format_params(12_345), "12.3K");
        assert_eq!(format_params(134_515_008), "134.5M");
        assert_eq!(format_params(1_543_714_304), "1.54B");
    }
}

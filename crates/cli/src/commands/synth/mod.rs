//! `skiff synth OUT.gguf --shape NAME --type T`: a random-weight GGUF with a real model's
//! architecture, for benchmarking sizes we do not ship (a 3B or 7B model).
//!
//! The file carries the shape's exact architecture metadata and tensor table (names, dims in
//! llama.cpp's converter order) and llama.cpp's type recipe for `--type` (the same code as
//! `skiff quantize`), so both skiff and llama.cpp load it and read the same bytes per token.
//! Weights are random blocks (see [`blocks`]); norms are ones. The tokenizer is copied from
//! `--tokenizer-from FILE` (padded to the shape's vocabulary) or a small synthetic
//! byte-level BPE one. Tensors are generated and written one at a time with the streaming
//! GGUF writer, to `OUT.tmp` renamed over `OUT` when complete.

mod blocks;
mod shapes;
mod vocab;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use skiff_formats::{
    GgufWriter, HParams, MetaValue, ModelSpec, RopePairing, RopeScaling, RopeSpec, SourceFormat,
    TensorInfo, TokenizerSpec,
};
use skiff_tensor::DType;

use super::quantize::{Ftype, recipe};
use shapes::{Shape, TensorDef};

/// Arguments of `skiff synth`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file to write (replaced if it exists).
    pub output: PathBuf,
    /// The model shape: llama-3.2-3b, qwen2.5-7b, smollm2-135m, gemma-3-270m,
    /// qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, or tiny-llama / tiny-qwen2 / tiny-gemma3.
    #[arg(long)]
    pub shape: String,
    /// The quantization mix, as llama.cpp's `llama-quantize` names it.
    #[arg(long = "type", value_enum, default_value = "q4_k_m")]
    pub ftype: Ftype,
    /// Seed of the random weights (the same seed writes the same file).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Copy the tokenizer (vocabulary, merges, special tokens, chat template) of this GGUF
    /// model of the same family; default: a synthetic byte-level vocabulary.
    #[arg(long)]
    pub tokenizer_from: Option<PathBuf>,
}

/// Runs `skiff synth`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(shape) = shapes::find(&args.shape) else {
        bail!(
            "unknown --shape {}; known shapes: {}",
            args.shape,
            shapes::names()
        );
    };
    let started = Instant::now();
    let defs = shapes::tensors(shape);
    let plan = plan(shape, &defs, args.ftype)?;
    let mut writer = GgufWriter::new();
    for (key, value) in shapes::metadata(shape) {
        writer.add_meta(&key, value)?;
    }
    let tokenizer = match &args.tokenizer_from {
        Some(path) => vocab::copied_from(path, shape.n_vocab)?,
        None => vocab::synthetic(shape.n_vocab)?,
    };
    for (key, value) in tokenizer {
        writer
            .add_meta(&key, value)
            .with_context(|| format!("adding tokenizer key {key}"))?;
    }
    writer.add_meta(
        "general.file_type",
        MetaValue::U32(args.ftype.llama_ftype_id()),
    )?;
    writer.add_meta("general.quantization_version", MetaValue::U32(2))?;
    for (def, dtype) in defs.iter().zip(&plan) {
        writer
            .add_tensor_info(&def.name, &def.dims, *dtype)
            .with_context(|| format!("declaring tensor {}", def.name))?;
    }
    let tmp = tmp_path(&args.output);
    let written = write(writer, &defs, &plan, &tmp, args.seed);
    let n_bytes = match written {
        Ok(n) => n,
        Err(err) => {
            // Best effort: the error that matters is `err`; a leftover .tmp is harmless.
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
    };
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.output.display()))?;
    let n_params: u64 = defs.iter().map(|d| d.dims.iter().product::<u64>()).sum();
    eprintln!(
        "wrote {}: {} ({} {}), {:.2} M parameters, {:.2} MiB of tensors ({:.2} bits/weight) in {:.1?}",
        args.output.display(),
        shape.name,
        shape.arch,
        format!("{:?}", args.ftype).to_lowercase(),
        n_params as f64 / 1e6,
        n_bytes as f64 / (1u64 << 20) as f64,
        n_bytes as f64 * 8.0 / n_params as f64,
        started.elapsed(),
    );
    Ok(())
}

/// The type of every tensor: llama.cpp's recipe for `ftype`, applied as `skiff quantize`
/// would to an f32 model of this shape.
fn plan(shape: &Shape, defs: &[TensorDef], ftype: Ftype) -> anyhow::Result<Vec<DType>> {
    let spec = f32_spec(shape, defs);
    let planned = recipe::plan(ftype, &spec)?;
    Ok(planned
        .into_iter()
        .map(|p| p.unwrap_or(DType::F32))
        .collect())
}

/// A description of the shape as an all-f32 model: what the recipe reads (architecture,
/// layer and head counts, tensor names and dims).
fn f32_spec(shape: &Shape, defs: &[TensorDef]) -> ModelSpec {
    let tensors = defs
        .iter()
        .map(|d| TensorInfo {
            name: d.name.clone(),
            dims: d.dims.clone(),
            dtype: DType::F32,
            shard: 0,
            offset: 0,
            n_bytes: d.dims.iter().product::<u64>() * 4,
        })
        .collect();
    ModelSpec {
        arch: shape.arch.to_string(),
        name: Some(shape.name.to_string()),
        source: SourceFormat::Gguf { version: 3 },
        hparams: HParams {
            n_layers: shape.n_layers,
            d_model: shape.d_model,
            n_heads: shape.n_heads,
            n_kv_heads: shape.n_kv_heads,
            head_dim: shape.head_dim,
            head_dim_v: shape.head_dim,
            ffn_dim: shape.ffn_dim,
            n_vocab: shape.n_vocab,
            max_seq_len: shape.max_seq_len,
            norm_eps: shape.norm_eps,
            rope: RopeSpec {
                theta: shape.rope_theta,
                rot_dim: shape.head_dim,
                pairing: RopePairing::Interleaved,
                scaling: RopeScaling::None,
            },
            sliding_window: None,
            attn_logit_softcap: None,
            final_logit_softcap: None,
            tie_embeddings: shape.tie_embeddings,
        },
        tokenizer: TokenizerSpec::Missing,
        chat_template: None,
        tensors,
        metadata: BTreeMap::new(),
        norm_weight_offset: 0.0,
    }
}

/// Generates and writes every tensor; returns the bytes of tensor data.
fn write(
    writer: GgufWriter,
    defs: &[TensorDef],
    plan: &[DType],
    path: &std::path::Path,
    seed: u64,
) -> anyhow::Result<u64> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut stream = writer.begin(BufWriter::with_capacity(1 << 20, file))?;
    let mut filler = blocks::Filler::new(seed);
    let mut total = 0u64;
    for (def, &dtype) in defs.iter().zip(plan) {
        let n_values = usize::try_from(def.dims.iter().product::<u64>())
            .context("tensor too large for this machine")?;
        let bytes = filler
            .tensor(dtype, n_values, def.fill)
            .with_context(|| format!("generating {}", def.name))?;
        stream
            .write_tensor_data(&def.name, &bytes)
            .with_context(|| format!("writing {}", def.name))?;
        total += bytes.len() as u64;
    }
    let buffered = stream.finish()?;
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the output")?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(total)
}

/// `OUT.tmp`, beside `OUT`.
fn tmp_path(output: &std::path::Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

//! `skiff quantize IN OUT --type T`: re-quantize a model into a new GGUF file.
//!
//! Streams tensor by tensor: each tensor is dequantized to f32 (`skiff_tensor::quant`), then
//! quantized to the type llama.cpp's recipe picks for it ([`recipe`]), and written with the
//! streaming [`GgufWriter`]; only one tensor is ever held in memory. Tensors the recipe leaves
//! alone, and tensors already in their target type, are copied byte for byte. All metadata is
//! copied (minus split keys), with `general.file_type` and `general.quantization_version = 2`
//! set. The output is written to `OUT.tmp` and renamed over `OUT` only once complete, so a
//! crash never leaves a half-written model under the final name.

pub(crate) mod recipe;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use skiff_formats::{GgufWriter, MetaValue, ModelFile, ModelSpec, TensorInfo, TokenizerSpec};
use skiff_tensor::DType;
use skiff_tensor::quant::{QuantError, quantize, to_f32_vec};

pub use recipe::Ftype;

/// ggml's quantization format version (`GGML_QNT_VERSION`), written as
/// `general.quantization_version`.
const QUANTIZATION_VERSION: u32 = 2;

/// Metadata keys not copied: the ones this command sets, and split bookkeeping.
const DROPPED_KEYS: &[&str] = &[
    "general.file_type",
    "general.quantization_version",
    "split.no",
    "split.count",
    "split.tensors.count",
];

/// Arguments of `skiff quantize`.
#[derive(clap::Args)]
pub struct Args {
    /// The model to read: a GGUF file or a Hugging Face folder.
    pub input: PathBuf,
    /// The GGUF file to write (replaced if it exists).
    pub output: PathBuf,
    /// The quantization mix, as llama.cpp's `llama-quantize` names it.
    #[arg(long = "type", value_enum)]
    pub ftype: Ftype,
    /// Threads to quantize with (default: all cores). The output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<()> {
    let model = ModelFile::open(&args.input)
        .with_context(|| format!("opening {}", args.input.display()))?;
    let spec = model.spec();
    let plan = recipe::plan(args.ftype, spec)?;
    let writer = declare(spec, &plan, args.ftype)?;
    let tmp = tmp_path(&args.output);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let result = write_tensors(&model, &plan, writer, &tmp, threads.max(1));
    let sizes = match result {
        Ok(sizes) => sizes,
        Err(err) => {
            // Best effort: the error that matters is `err`; a leftover .tmp is harmless.
            let _ = std::fs::remove_file(&tmp);
            return Err(err);
        }
    };
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("renaming {} to {}", tmp.display(), args.output.display()))?;
    let n_params = spec.n_params() as f64;
    eprintln!(
        "wrote {}: {:.2} MiB ({:.2} bits/weight) -> {:.2} MiB ({:.2} bits/weight), {} tensors",
        args.output.display(),
        mib(sizes.0),
        sizes.0 as f64 * 8.0 / n_params,
        mib(sizes.1),
        sizes.1 as f64 * 8.0 / n_params,
        spec.tensors.len(),
    );
    Ok(())
}

/// `OUT.tmp`, beside `OUT`.
fn tmp_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The output type of tensor `i`.
fn target_type(info: &TensorInfo, planned: Option<DType>) -> DType {
    planned.unwrap_or(info.dtype)
}

/// The output header: the source's metadata, the file type, and every tensor's declaration.
fn declare(spec: &ModelSpec, plan: &[Option<DType>], ftype: Ftype) -> Result<GgufWriter> {
    let mut writer = GgufWriter::new();
    for (key, value) in &spec.metadata {
        if !DROPPED_KEYS.contains(&key.as_str()) {
            writer
                .add_meta(key, value.clone())
                .with_context(|| format!("copying metadata key {key}"))?;
        }
    }
    if !spec.metadata.contains_key("tokenizer.chat_template")
        && let Some(template) = &spec.chat_template
    {
        writer.add_meta(
            "tokenizer.chat_template",
            MetaValue::String(template.clone()),
        )?;
    }
    // A Hugging Face source has no tokenizer.ggml.* keys; GGUF's standard key for carrying
    // a tokenizer.json keeps the tokenizer with the model.
    if let TokenizerSpec::HfJson { json, .. } = &spec.tokenizer
        && !spec.metadata.contains_key("tokenizer.ggml.model")
        && !spec.metadata.contains_key("tokenizer.huggingface.json")
    {
        let text = String::from_utf8(json.clone()).context("tokenizer.json is not UTF-8")?;
        writer.add_meta("tokenizer.huggingface.json", MetaValue::String(text))?;
    }
    writer.add_meta("general.file_type", MetaValue::U32(ftype.llama_ftype_id()))?;
    writer.add_meta(
        "general.quantization_version",
        MetaValue::U32(QUANTIZATION_VERSION),
    )?;
    for (info, planned) in spec.tensors.iter().zip(plan) {
        writer
            .add_tensor_info(&info.name, &info.dims, target_type(info, *planned))
            .with_context(|| format!("declaring tensor {}", info.name))?;
    }
    Ok(writer)
}

/// Writes the whole file to `path`; returns (bytes of tensor data before, after).
fn write_tensors(
    model: &ModelFile,
    plan: &[Option<DType>],
    writer: GgufWriter,
    path: &Path,
    threads: usize,
) -> Result<(u64, u64)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut stream = writer.begin(BufWriter::new(file))?;
    let tensors = &model.spec().tensors;
    let (mut before, mut after) = (0u64, 0u64);
    for (i, (info, planned)) in tensors.iter().zip(plan).enumerate() {
        let src = model.tensor_bytes(info);
        let converted = match planned {
            Some(dtype) => Some(convert(info, src, *dtype, threads)?),
            None => None,
        };
        let out = converted.as_deref().unwrap_or(src);
        stream.write_tensor_data(&info.name, out)?;
        before += src.len() as u64;
        after += out.len() as u64;
        eprintln!(
            "[{:>4}/{}] {:<36} {:<18} {:>5} -> {:<5} {:>9.3} MiB -> {:.3} MiB",
            i + 1,
            tensors.len(),
            info.name,
            format!("{:?}", info.dims),
            info.dtype.to_string(),
            target_type(info, *planned).to_string(),
            mib(src.len() as u64),
            mib(out.len() as u64),
        );
    }
    let buffered = stream.finish()?;
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the output")?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok((before, after))
}

/// Dequantizes `src` (tensor `info`) to f32 and quantizes it to `dtype`.
fn convert(info: &TensorInfo, src: &[u8], dtype: DType, threads: usize) -> Result<Vec<u8>> {
    let values =
        to_f32_vec(info.dtype, src).with_context(|| format!("dequantizing {}", info.name))?;
    let n_bytes = dtype
        .bytes_for(values.len() as u64)
        .and_then(|n| usize::try_from(n).ok())
        .with_context(|| {
            format!(
                "{}: {} values do not fit {dtype} blocks",
                info.name,
                values.len()
            )
        })?;
    let mut out = vec![0u8; n_bytes];
    quantize_parallel(dtype, &values, &mut out, threads)
        .with_context(|| format!("quantizing {} to {dtype}", info.name))?;
    Ok(out)
}

/// Blocks per thread below which splitting the work is not worth a thread.
const MIN_BLOCKS_PER_THREAD: usize = 256;

/// [`quantize`] split over `threads` threads by whole blocks (blocks are independent, so the
/// bytes are the same as one call). On failure the whole tensor is redone on this thread, so
/// the error's indices are the tensor's, not a chunk's.
fn quantize_parallel(
    dtype: DType,
    values: &[f32],
    out: &mut [u8],
    threads: usize,
) -> Result<(), QuantError> {
    let n_blocks = values.len() / dtype.block_len();
    let threads = threads.min(n_blocks / MIN_BLOCKS_PER_THREAD).max(1);
    if threads == 1 {
        return quantize(dtype, values, out);
    }
    let blocks_per_thread = n_blocks.div_ceil(threads);
    let chunks = values
        .chunks(blocks_per_thread * dtype.block_len())
        .zip(out.chunks_mut(blocks_per_thread * dtype.block_bytes()));
    let all_ok = std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .map(|(x, y)| scope.spawn(move || quantize(dtype, x, y).is_ok()))
            .collect();
        workers.into_iter().all(|w| w.join().unwrap_or(false))
    });
    if all_ok {
        Ok(())
    } else {
        quantize(dtype, values, out)
    }
}

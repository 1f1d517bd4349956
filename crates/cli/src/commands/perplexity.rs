//! `skiff perplexity MODEL FILE --ctx N`: how well a model predicts a text.
//!
//! Computed exactly as llama.cpp's `llama-perplexity` (see `skiff_engine::perplexity`), so
//! the figures compare. Progress goes to stdout one window per line, and the LAST line is
//! always the final estimate in a stable form: `PPL = 19.2345 +/- 0.51234`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use skiff_engine::{ChunkProgress, PerplexityConfig, perplexity};

use super::run::load;

/// Arguments of `skiff perplexity`.
#[derive(clap::Args)]
pub struct Args {
    /// The model: a path, a store name or a source.
    model: String,
    /// The UTF-8 text file to score.
    file: PathBuf,
    /// Window size in tokens (llama.cpp's --ctx-size); the text needs at least twice this.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// Tokens per forward pass.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// CPU threads (default: the number of physical cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Runs `skiff perplexity`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid UTF-8 (invalid byte at offset {})",
            args.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let loaded = load(Some(&args.model), args.threads)?;
    let tok = &loaded.tokenizer;
    let tokens = tok.encode(&text, true)?;
    let config = PerplexityConfig {
        n_ctx: args.ctx,
        bos: tok.bos().filter(|_| tok.adds_bos()),
        n_batch: args.batch,
    };
    println!(
        "perplexity: {} tokens, {} windows of {} tokens, scoring the last {} of each",
        tokens.len(),
        tokens.len() / args.ctx.max(1),
        args.ctx,
        args.ctx.saturating_sub(1 + args.ctx / 2),
    );
    let started = Instant::now();
    let report = perplexity(
        &loaded.model,
        &loaded.cpu,
        &tokens,
        &config,
        |p: ChunkProgress| {
            println!("[{}/{}] {:.4}", p.chunk, p.n_chunks, p.ppl);
        },
    )?;
    eprintln!(
        "scored {} tokens in {:.2?} (nll {:.5} nats/token)",
        report.n_scored,
        started.elapsed(),
        report.nll
    );
    println!("PPL = {:.4} +/- {:.5}", report.ppl, report.ppl_error);
    Ok(())
}

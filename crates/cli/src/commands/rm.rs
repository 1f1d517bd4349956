//! `skiff rm NAME...`: remove models from the local store.
//!
//! The manifest goes; the blob goes too unless another model uses the same bytes. Models
//! that reference a Hugging Face folder are forgotten without touching the folder.

use super::list::short_sha;
use super::pull::StoreArgs;

/// Arguments of `skiff rm`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The names to remove (see `skiff list`).
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `skiff rm`. Stops at the first unknown name, which the error names along with
/// the models that do exist.
pub fn run(args: Args) -> anyhow::Result<()> {
    let store = args.store.open()?;
    for name in &args.names {
        let removed = store.remove(name)?;
        let sha = removed.manifest.as_ref().and_then(|m| m.sha256());
        let is_folder = removed
            .manifest
            .as_ref()
            .is_some_and(|m| m.sha256().is_none());
        match (&removed.blob, sha) {
            (Some(_), Some(sha)) => {
                println!("removed {name} (deleted blob sha256-{})", short_sha(sha))
            }
            (None, Some(_)) => println!("removed {name} (its blob is kept: another model uses it)"),
            _ if is_folder => println!("removed {name} (the referenced folder was not touched)"),
            _ => {
                println!("removed {name} (its manifest was unreadable; its blob, if any, is kept)")
            }
        }
    }
    Ok(())
}

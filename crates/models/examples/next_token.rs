//! Run with: `cargo run -p skiff-models --example next_token -- <model.gguf | hf-folder> <token ids...>`
//!
//! Loads a model, runs the token ids as one prompt, and prints the five most likely next
//! tokens with their logits, then greedily decodes five more token ids from the KV cache.
//! Set `SKIFF_TAP=1` to dump per-layer checksums along the way.

use std::path::PathBuf;
use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::{Batch, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .ok_or("usage: next_token <model> <token ids...>")?,
    );
    let prompt: Vec<u32> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    if prompt.is_empty() {
        return Err("give at least one token id".into());
    }
    let model = Model::load(Arc::new(ModelFile::open(&path)?))?;
    let cpu = Cpu::new(std::thread::available_parallelism().map_or(1, usize::from));
    let mut kv = model.new_kv_cache(1, prompt.len() + 16);
    let logits = model.forward(&Batch::for_sequence(&prompt, 0, 0), &mut kv, &cpu)?;
    let row = logits.row(0).ok_or("no logits")?;
    let mut ranked: Vec<usize> = (0..row.len()).collect();
    ranked.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    println!(
        "{} ({}), {} prompt tokens",
        path.display(),
        model.spec().arch,
        prompt.len()
    );
    for &id in &ranked[..5.min(ranked.len())] {
        println!("  token {id:>7}  logit {:>9.4}", row[id]);
    }
    let mut next = ranked[0] as u32;
    let mut greedy = vec![next];
    for pos in prompt.len()..prompt.len() + 4 {
        let logits = model.forward(&Batch::for_sequence(&[next], pos as u32, 0), &mut kv, &cpu)?;
        let row = logits.row(0).ok_or("no logits")?;
        next = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0) as u32;
        greedy.push(next);
    }
    println!("greedy: {greedy:?}");
    Ok(())
}

//! A loaded model is resident once: weights repacked for the backend are read from the file
//! with positional reads, and so are the embedding rows a batch looks up (SmolLM2's table is
//! also its LM head, repacked), so the file's mapping holds only what is read through it —
//! the header with the tokenizer, and the norm vectors — not the weights a second time.
//!
//! Linux only (it reads `/proc/self/smaps`); the model comes from `$SKIFF_TEST_MODEL_DIR`
//! (skipped with a message when unset).

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_formats::ModelFile;
use skiff_models::{Batch, Model};

/// Resident KiB of every mapping of `path` in this process.
fn mapped_resident_kib(path: &Path) -> u64 {
    let path = std::fs::canonicalize(path).expect("model path");
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut in_file = false;
    let mut total = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header line: range, perms, offset, dev, inode, path.
            in_file = fields.nth(4).is_some_and(|p| Path::new(p) == path);
        } else if in_file && first == "Rss:" {
            total += fields
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

#[test]
fn packed_weights_and_lookups_leave_the_file_unmapped() {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        println!("skipped: SKIFF_TEST_MODEL_DIR is not set");
        return;
    };
    let path = PathBuf::from(dir).join("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(path.is_file(), "{} does not exist", path.display());
    let file_kib = std::fs::metadata(&path).expect("stat").len() / 1024;
    let model = Model::load(Arc::new(ModelFile::open(&path).expect("opens"))).expect("loads");
    let cpu = Cpu::new(2);
    let mut kv = model.new_kv_cache(1, 300);
    // A prompt of 200 distinct tokens spread over the vocabulary, then 20 decode steps.
    let tokens: Vec<u32> = (0..200u32).map(|i| (i * 241 + 17) % 49152).collect();
    model
        .forward(&Batch::for_sequence(&tokens, 0, 0), &mut kv, &cpu)
        .expect("prompt");
    for step in 0..20u32 {
        let token = (step * 4099 + 5) % 49152;
        model
            .forward(&Batch::for_sequence(&[token], 200 + step, 0), &mut kv, &cpu)
            .expect("step");
    }
    let resident = mapped_resident_kib(&path);
    // The header (tokenizer: ~1.6 MiB here) plus the norm vectors and the pages around
    // them; the weights alone are 90 MiB, and 220 lookups through the mapping left up to
    // a readahead window each resident.
    assert!(
        resident < 4 * 1024,
        "{resident} KiB of the {file_kib} KiB file are resident through its mapping"
    );
}

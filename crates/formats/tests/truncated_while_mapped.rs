//! RELIABILITY F10: a model file truncated while mapped. The documented behaviour (see
//! `skiff_formats::mmap`) is that model files must be immutable while open; if one is
//! truncated anyway, touching the lost pages kills the process with SIGBUS — a clean,
//! immediate crash, never silently wrong weights. This test pins that behaviour by running
//! the scenario in a child process (this same test binary, selected by an env var).

#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use skiff_formats::ModelFile;

const CHILD_ENV: &str = "SKIFF_F10_CHILD_PATH";
const TEST_NAME: &str = "truncating_a_mapped_model_dies_with_sigbus";
const SIGBUS: i32 = 7;

/// In the child: open, truncate the file to zero, then read a tensor's bytes.
fn child(path: &Path) {
    let model = ModelFile::open(path).expect("fixture opens");
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0))
        .expect("truncate");
    let (_, bytes) = model.tensor("blk.0.attn_q.weight").expect("tensor present");
    let sum: u64 = bytes.iter().map(|&b| u64::from(b)).sum();
    println!("read {sum} after truncation");
}

/// The child is killed by SIGBUS when it touches the truncated mapping.
#[test]
fn truncating_a_mapped_model_dies_with_sigbus() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.gguf");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/formats/tiny.gguf");
    std::fs::copy(&fixture, &path).expect("copy fixture");
    let exe = std::env::current_exe().expect("test binary path");
    let status = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .status()
        .expect("spawn child");
    assert_eq!(
        status.signal(),
        Some(SIGBUS),
        "child should die of SIGBUS, got {status:?}"
    );
}

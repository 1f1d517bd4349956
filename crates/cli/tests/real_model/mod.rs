//! Finding the real test models for end-to-end tests: `SKIFF_TEST_MODEL_DIR` (filled by
//! `tools/fetch-test-models.sh`). Unset → the test prints that it was skipped; set but the
//! file is missing → the test fails.

use std::path::PathBuf;

/// SmolLM2-135M-Instruct Q4_1, the default model.
pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The path of `file` in `SKIFF_TEST_MODEL_DIR`, or `None` (after saying so) when unset.
pub fn test_model(file: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("SKIFF_TEST_MODEL_DIR") else {
        eprintln!("skipped: SKIFF_TEST_MODEL_DIR is not set (see tools/fetch-test-models.sh)");
        return None;
    };
    let path = PathBuf::from(dir).join(file);
    assert!(
        path.is_file(),
        "SKIFF_TEST_MODEL_DIR is set but {} is missing",
        path.display()
    );
    Some(path)
}

/// The default model, SmolLM2.
pub fn model() -> Option<PathBuf> {
    test_model(SMOLLM2)
}

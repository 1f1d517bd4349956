//! `skiff perplexity` end to end on the real SmolLM2-135M (`SKIFF_TEST_MODEL_DIR`;
//! skipped with a message when unset), compared with llama.cpp's figure for the same file
//! and context, recorded in `testdata/text/sample.llama-cpp-ppl-ctx128.txt` by
//! `tools/reference/perplexity_llama_cpp.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod real_model;

use real_model::model;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/text")
        .join(name)
}

fn perplexity(model: &Path, file: &Path, ctx: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("perplexity")
        .arg(model)
        .arg(file)
        .args(["--ctx", ctx, "--threads", "2"])
        .output()
        .expect("skiff runs")
}

/// Parses `PPL = 27.6037 +/- 5.76272`.
fn parse_ppl(line: &str) -> (f64, f64) {
    let rest = line
        .strip_prefix("PPL = ")
        .unwrap_or_else(|| panic!("not a PPL line: {line:?}"));
    let (ppl, err) = rest
        .split_once(" +/- ")
        .unwrap_or_else(|| panic!("no error term: {line:?}"));
    (
        ppl.parse().expect("a number"),
        err.parse().expect("a number"),
    )
}

#[test]
fn last_line_is_a_finite_ppl_within_one_percent_of_llama_cpp() {
    let Some(model) = model() else { return };
    let out = perplexity(&model, &testdata("sample.txt"), "128");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ppl, err) = parse_ppl(stdout.lines().last().expect("output"));
    assert!(ppl.is_finite() && err.is_finite() && ppl > 1.0, "{stdout}");
    let reference =
        std::fs::read_to_string(testdata("sample.llama-cpp-ppl-ctx128.txt")).expect("committed");
    let (want, want_err) = parse_ppl(reference.lines().last().expect("reference line"));
    assert!(
        (ppl - want).abs() / want < 0.01,
        "skiff PPL {ppl} vs llama.cpp {want}"
    );
    assert!(
        (err - want_err).abs() / want_err < 0.05,
        "skiff error {err} vs llama.cpp {want_err}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with('[')).count(),
        3,
        "one line per window: {stdout}"
    );
}

#[test]
fn too_short_or_non_utf8_text_fails_clearly() {
    let Some(model) = model() else { return };
    let out = perplexity(&model, &testdata("sample.txt"), "512");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs at least 1024 tokens"), "{stderr}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let bad = dir.path().join("latin1.txt");
    std::fs::write(&bad, b"caf\xe9").expect("writes");
    let out = perplexity(&model, &bad, "128");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not valid UTF-8 (invalid byte at offset 3)"),
        "{stderr}"
    );
}

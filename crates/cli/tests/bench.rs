//! `skiff bench` end to end on the tiny committed llama fixture (and on SmolLM2 when
//! `SKIFF_TEST_MODEL_DIR` is set): argument handling, llama-bench's JSON field names and
//! row shape, llama-batched-bench's JSON lines, the markdown table. Tiny -p/-n/-r so it runs
//! in seconds; nothing here asserts a speed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod real_model;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/q8_0.gguf")
}

fn bench(model: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("bench")
        .arg(model)
        .args(args)
        .output()
        .expect("skiff runs")
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "skiff bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn stderr_err(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// llama-bench's JSON fields that apply to a CPU run.
const LLAMA_BENCH_FIELDS: &[&str] = &[
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "samples_ns",
    "samples_ts",
];

fn rows(model: &Path, args: &[&str]) -> Vec<Value> {
    let text = stdout_ok(&bench(model, args));
    let v: Value = serde_json::from_str(&text).expect("stdout is one JSON document");
    v.as_array().expect("a JSON array").clone()
}

#[test]
fn json_rows_have_llama_bench_fields_per_test_and_thread_count() {
    let rows = rows(
        &fixture(),
        &["-p", "8", "-n", "4", "-t", "1,2", "-r", "2", "--json"],
    );
    let got: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            for field in LLAMA_BENCH_FIELDS {
                assert!(r.get(field).is_some(), "missing {field} in {r}");
            }
            let n = |k: &str| {
                r[k].as_u64()
                    .unwrap_or_else(|| panic!("{k} not an integer: {r}"))
            };
            (n("n_threads"), n("n_prompt"), n("n_gen"))
        })
        .collect();
    assert_eq!(got, vec![(1, 8, 0), (1, 0, 4), (2, 8, 0), (2, 0, 4)]);
    for r in &rows {
        let samples_ns = r["samples_ns"].as_array().expect("array");
        let samples_ts = r["samples_ts"].as_array().expect("array");
        assert_eq!((samples_ns.len(), samples_ts.len()), (2, 2), "{r}");
        let avg_ts = r["avg_ts"].as_f64().expect("number");
        assert!(avg_ts.is_finite() && avg_ts > 0.0, "{r}");
        // avg_ts is the mean of samples_ts, each tokens / seconds of its sample.
        let tokens =
            (r["n_prompt"].as_u64().unwrap_or(0) + r["n_gen"].as_u64().unwrap_or(0)) as f64;
        let mean: f64 = samples_ns
            .iter()
            .map(|ns| tokens * 1e9 / ns.as_f64().expect("number"))
            .sum::<f64>()
            / 2.0;
        assert!((mean - avg_ts).abs() <= 1e-6 * avg_ts, "{r}");
        assert_eq!(r["type_k"], "f16");
        assert_eq!(r["n_batch"], 512);
        assert!(
            r["model_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("llama ")),
            "{r}"
        );
        assert!(r.get("roofline_frac").is_none());
    }
}

#[test]
fn kv_type_and_batch_size_reach_the_rows() {
    let rows = rows(
        &fixture(),
        &[
            "-p",
            "6",
            "-n",
            "0",
            "-t",
            "1",
            "-r",
            "1",
            "-b",
            "4",
            "--kv-type",
            "q8_0",
            "--json",
        ],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["type_v"], "q8_0");
    assert_eq!(rows[0]["n_batch"], 4);
    assert_eq!(rows[0]["n_gen"], 0);
}

#[test]
fn markdown_table_has_llama_bench_columns_and_one_row_per_test() {
    let text = stdout_ok(&bench(
        &fixture(),
        &["-p", "4", "-n", "2", "-t", "1", "-r", "2"],
    ));
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split('|').map(str::trim).collect();
    assert_eq!(
        header,
        [
            "", "model", "size", "params", "backend", "threads", "test", "t/s", ""
        ]
    );
    assert!(lines[1].starts_with("| --"), "{text}");
    let tests: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l.split('|').map(str::trim).nth(6).expect("test column"))
        .collect();
    assert_eq!(tests, ["pp4", "tg2"]);
    assert!(lines[2].contains(" ± "), "{text}");
}

#[test]
fn roofline_annotates_tg_rows_only() {
    let rows = rows(
        &fixture(),
        &[
            "-p",
            "4",
            "-n",
            "3",
            "-t",
            "1",
            "-r",
            "1",
            "--roofline",
            "--json",
        ],
    );
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].get("roofline_frac").is_none(),
        "pp row: {}",
        rows[0]
    );
    let tg = &rows[1];
    for k in [
        "roofline_bw_gbs",
        "bytes_per_token",
        "roofline_ts",
        "roofline_frac",
    ] {
        let v = tg[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} missing: {tg}"));
        assert!(v.is_finite() && v > 0.0, "{k} = {v}");
    }
    // Bytes per token: at least every weight but the (untied) embedding table.
    assert!(tg["bytes_per_token"].as_f64().unwrap_or(0.0) > 0.0);
}

/// llama-batched-bench's `--output-format jsonl` fields.
const BATCHED_FIELDS: &[&str] = &[
    "pp", "tg", "pl", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg", "t", "speed",
];

#[test]
fn parallel_json_lines_have_batched_bench_fields() {
    let text = stdout_ok(&bench(
        &fixture(),
        &[
            "--parallel",
            "1,3",
            "-p",
            "5",
            "-n",
            "2",
            "-t",
            "2",
            "--json",
        ],
    ));
    let objs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(objs.len(), 2, "{text}");
    for (o, pl) in objs.iter().zip([1u64, 3]) {
        for field in BATCHED_FIELDS {
            assert!(o.get(field).is_some(), "missing {field} in {o}");
        }
        assert_eq!(
            (o["pp"].as_u64(), o["tg"].as_u64(), o["pl"].as_u64()),
            (Some(5), Some(2), Some(pl))
        );
        assert_eq!(o["n_kv"].as_u64(), Some(pl * 7));
        assert_eq!(o["n_threads"].as_u64(), Some(2));
        let t = o["t"].as_f64().expect("number");
        let sum = o["t_pp"].as_f64().expect("number") + o["t_tg"].as_f64().expect("number");
        assert!((t - sum).abs() <= 1e-9 * t.max(1.0), "{o}");
        let speed_tg = o["speed_tg"].as_f64().expect("number");
        let t_tg = o["t_tg"].as_f64().expect("number");
        assert!(
            (speed_tg * t_tg - (pl * 2) as f64).abs() < 1e-6 * (pl * 2) as f64,
            "{o}"
        );
    }
}

#[test]
fn parallel_plain_output_is_batched_bench_table() {
    let text = stdout_ok(&bench(
        &fixture(),
        &["--parallel", "2", "-p", "3", "-n", "2", "-t", "1"],
    ));
    let header = text
        .lines()
        .find(|l| l.starts_with("|    PP"))
        .unwrap_or_else(|| panic!("no table header: {text}"));
    assert!(header.contains("S_TG t/s"), "{header}");
    let row = text.lines().last().expect("a row");
    let cols: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cols[1..5], ["3", "2", "2", "10"], "{row}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let m = fixture();
    let cases: &[(&[&str], &str)] = &[
        (&["-t", "0"], "thread"),
        (&["-r", "0"], "repetitions"),
        (&["-b", "0"], "batch-size"),
        (&["-p", "0", "-n", "0"], "nothing to run"),
        (&["--kv-type", "q9"], "q9"),
        (&["--parallel", "0"], "--parallel"),
        (&["-p", "100000", "-n", "0", "-r", "1"], "context"),
        (&["--parallel", "1", "--roofline"], "--roofline"),
    ];
    for (args, needle) in cases {
        let err = stderr_err(&bench(&m, args));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let err = stderr_err(&bench(Path::new("/nonexistent/model.gguf"), &[]));
    assert!(err.contains("model.gguf"), "{err}");
}

#[test]
fn smollm2_json_rows() {
    let Some(model) = real_model::model() else {
        return;
    };
    let rows = rows(
        &model,
        &["-p", "16", "-n", "4", "-t", "2", "-r", "1", "--json"],
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["model_n_params"], 134_515_008);
    assert!(
        rows[0]["model_type"]
            .as_str()
            .is_some_and(|t| t.contains("Q4_1")),
        "{}",
        rows[0]
    );
}

/// `SKIFF_MAX_ISA` caps the kernels (the backend column names the one in use), and an unknown
/// value is reported on stderr, naming the accepted ones, while the run goes on with the best.
#[test]
fn max_isa_caps_the_kernels_and_an_unknown_value_is_reported() {
    let run = |cap: &str| {
        Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args(["bench", "-p", "0", "-n", "2", "-r", "1"])
            .arg(fixture())
            .env("SKIFF_MAX_ISA", cap)
            .env_remove("RUST_LOG")
            .output()
            .expect("skiff runs")
    };
    let scalar = run("scalar");
    assert!(stdout_ok(&scalar).contains("CPU scalar"));
    assert!(
        scalar.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&scalar.stderr)
    );
    let unknown = run("sse9");
    assert!(stdout_ok(&unknown).contains("| CPU "));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains(
            "ignoring SKIFF_MAX_ISA=\"sse9\": expected one of scalar, avx2, avxvnni, avx512"
        ),
        "{stderr}"
    );
}

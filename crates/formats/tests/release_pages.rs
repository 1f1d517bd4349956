//! `ModelFile::release_tensor_pages` drops a tensor's pages from memory without changing what
//! its bytes read as: a repacked copy can replace the file's pages and the bytes stay valid.

use std::path::PathBuf;

use skiff_formats::ModelFile;

#[test]
fn released_tensor_bytes_read_back_unchanged() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/q8_0.gguf");
    let file = ModelFile::open(&path).expect("fixture opens");
    let infos: Vec<_> = file.spec().tensors.to_vec();
    assert!(!infos.is_empty(), "fixture has tensors");
    let before: Vec<Vec<u8>> = infos
        .iter()
        .map(|i| file.tensor_bytes(i).to_vec())
        .collect();
    for info in &infos {
        file.release_tensor_pages(info);
    }
    for (info, want) in infos.iter().zip(&before) {
        assert_eq!(
            file.tensor_bytes(info),
            want.as_slice(),
            "{} changed",
            info.name
        );
    }
}

//! `ModelFile::read_tensor_range` reads a tensor's bytes with positional reads: the same bytes
//! the mapping shows, for any sub-range, and a clear error for a range outside the tensor.

use std::path::PathBuf;

use skiff_formats::{Error, ModelFile};

#[test]
fn positional_reads_match_the_mapping() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/q8_0.gguf");
    let file = ModelFile::open(&path).expect("fixture opens");
    let infos = file.spec().tensors.to_vec();
    assert!(infos.len() > 1, "fixture has tensors");
    for info in &infos {
        let mapped = file.tensor_bytes(info);
        let n = mapped.len();
        let mut whole = vec![0u8; n];
        file.read_tensor_range(info, 0, &mut whole)
            .expect("whole tensor");
        assert_eq!(whole, mapped, "{}", info.name);
        // A range in the middle, and the last byte alone.
        let (start, len) = (n / 3, n / 2 - n / 3);
        let mut part = vec![0u8; len];
        file.read_tensor_range(info, start, &mut part)
            .expect("part");
        assert_eq!(part, &mapped[start..start + len], "{}", info.name);
        let mut last = [0u8; 1];
        file.read_tensor_range(info, n - 1, &mut last)
            .expect("last byte");
        assert_eq!(last[0], mapped[n - 1], "{}", info.name);
    }
}

#[test]
fn a_range_past_the_tensor_is_an_error() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/models/llama/q8_0.gguf");
    let file = ModelFile::open(&path).expect("fixture opens");
    let info = file.spec().tensors[0].clone();
    let n = usize::try_from(info.n_bytes).expect("small fixture");
    for (start, len) in [(n, 1), (n - 1, 2), (usize::MAX, 1)] {
        let mut out = vec![0u8; len];
        let err = file
            .read_tensor_range(&info, start, &mut out)
            .expect_err("out of range");
        let msg = err.to_string();
        assert!(matches!(err, Error::Io { .. }), "{msg}");
        assert!(
            msg.contains(&info.name) && msg.contains("out of range"),
            "{msg}"
        );
    }
}

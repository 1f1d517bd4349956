//! Crafted-input tests of the safetensors header parser (RELIABILITY S1, S2).

use super::*;

/// A file with header `json` followed by `data_len` zero bytes.
pub(crate) fn file(json: &str, data_len: usize) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + data_len, 0);
    out
}

fn is_bad_header(r: Result<SafetensorsHeader>) -> bool {
    matches!(r, Err(Error::BadHeader { .. }))
}

/// A valid two-tensor file parses, in offset order, with metadata.
#[test]
fn valid_header() {
    let json = r#"{"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},
        "a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#;
    let h = parse_safetensors(&file(json, 12)).unwrap();
    assert_eq!(
        h.tensors
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(h.tensors[1].offset, h.data_offset + 8);
    assert_eq!(h.metadata["format"], "pt");
    assert!(parse_safetensors(&file("{}", 0)).is_ok());
}

/// S1: header over 100 MB, longer than the file, `n + 8` overflow, not UTF-8, not JSON,
/// not an object.
#[test]
fn s1_header_framing() {
    let mut huge = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&huge),
        Err(Error::HeaderTooLarge { .. })
    ));
    let mut max = u64::MAX.to_le_bytes().to_vec();
    max.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&max),
        Err(Error::HeaderTooLarge { .. })
    ));
    let mut short = 50u64.to_le_bytes().to_vec();
    short.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&short),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(
        parse_safetensors(&[1, 2, 3]),
        Err(Error::Truncated { .. })
    ));
    let mut not_utf8 = 2u64.to_le_bytes().to_vec();
    not_utf8.extend_from_slice(&[0x7b, 0xff]);
    assert!(is_bad_header(parse_safetensors(&not_utf8)));
    assert!(is_bad_header(parse_safetensors(&file(" {}", 0))));
    assert!(is_bad_header(parse_safetensors(&file("{", 0))));
    assert!(is_bad_header(parse_safetensors(&file("[1]", 0))));
    assert!(is_bad_header(parse_safetensors(&file(
        r#"{"__metadata__":{"a":1}}"#,
        0
    ))));
}

/// S2: offsets out of order, overlapping, with holes, not ending at EOF; shape × dtype
/// different from the span; unknown dtype; overflowing shapes.
#[test]
fn s2_spans_and_dtypes() {
    let t = |dtype: &str, shape: &str, offsets: &str| {
        format!(
            r#""{dtype}{offsets}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}"#
        )
    };
    let one = |entry: String, data: usize| parse_safetensors(&file(&format!("{{{entry}}}"), data));
    assert!(is_bad_header(one(t("F32", "[2]", "[8,0]"), 8)));
    assert!(is_bad_header(one(t("F32", "[3]", "[0,8]"), 8)));
    assert!(is_bad_header(one(t("Q4", "[2]", "[0,8]"), 8)));
    assert!(is_bad_header(one(t("F32", "[2]", "[0,8]"), 9)));
    assert!(is_bad_header(one(t("F32", "[2]", "[4,12]"), 12)));
    assert!(is_bad_header(one(t("F32", "[2]", "[0,8,9]"), 8)));
    assert!(is_bad_header(one(t("F32", "[-2]", "[0,8]"), 8)));
    assert!(matches!(
        one(t("F32", "[2]", "[0,8]"), 4),
        Err(Error::TensorOutOfBounds { .. })
    ));
    let overflow = t("F32", "[4294967296,4294967296,4294967296]", "[0,8]");
    assert!(matches!(one(overflow, 8), Err(Error::SizeOverflow { .. })));
    let overlap = format!(
        "{{{},{}}}",
        t("F32", "[2]", "[0,8]"),
        t("F16", "[4]", "[4,12]")
    );
    assert!(is_bad_header(parse_safetensors(&file(&overlap, 12))));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(is_bad_header(parse_safetensors(&file(
        &format!(r#"{{"x":{deep}}}"#),
        0
    ))));
}

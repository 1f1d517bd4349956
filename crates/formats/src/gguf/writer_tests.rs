//! Writer tests: byte-identical rewrite of a `gguf.GGUFWriter` file, round trips through our
//! reader, and every misuse the writer refuses.

use super::super::parse_gguf;
use super::*;

fn tiny() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/formats/tiny.gguf"
    ))
    .expect("tiny.gguf")
}

/// Re-writes a parsed file through the streaming writer.
fn rewrite(bytes: &[u8]) -> Vec<u8> {
    let file = parse_gguf(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &file.metadata {
        w.add_meta(k, v.clone()).unwrap();
    }
    for t in &file.tensors {
        w.add_tensor_info(&t.name, &t.dims, t.dtype).unwrap();
    }
    let mut out = w.begin(Vec::new()).unwrap();
    for t in &file.tensors {
        out.write_tensor_data(&t.name, &bytes[t.offset as usize..][..t.n_bytes as usize])
            .unwrap();
    }
    out.finish().unwrap()
}

/// Parsing the Python-written fixture and writing it back gives the same bytes, so the
/// layouts (header, padding, offsets) agree with gguf-py exactly.
#[test]
fn rewrite_of_python_fixture_is_byte_identical() {
    let original = tiny();
    assert_eq!(rewrite(&original), original);
}

/// Every value type, nested arrays and a custom alignment survive a round trip.
#[test]
fn round_trip_all_types_with_alignment() {
    let values = vec![
        MetaValue::U8(1),
        MetaValue::I8(-1),
        MetaValue::U16(2),
        MetaValue::I16(-2),
        MetaValue::U32(3),
        MetaValue::I32(-3),
        MetaValue::F32(0.25),
        MetaValue::Bool(true),
        MetaValue::String("s".into()),
        MetaValue::U64(u64::MAX),
        MetaValue::I64(i64::MIN),
        MetaValue::F64(-0.5),
        MetaValue::Array(vec![
            MetaValue::Array(vec![MetaValue::String("x".into())]),
            MetaValue::Array(vec![]),
        ]),
        MetaValue::Array(vec![]),
    ];
    let mut w = GgufWriter::with_alignment(64).unwrap();
    for (i, v) in values.iter().enumerate() {
        w.add_meta(&format!("k{i}"), v.clone()).unwrap();
    }
    w.add_tensor_info("a", &[32, 3], DType::Q8_0).unwrap();
    w.add_tensor_info("b", &[5], DType::F32).unwrap();
    let mut out = w.begin(Vec::new()).unwrap();
    out.write_tensor_data("a", &[7u8; 102]).unwrap();
    out.write_tensor_data("b", &[9u8; 20]).unwrap();
    let bytes = out.finish().unwrap();
    let file = parse_gguf(&bytes).unwrap();
    assert_eq!(file.alignment, 64);
    assert_eq!(file.data_offset % 64, 0);
    let got: Vec<&MetaValue> = file.metadata.iter().skip(1).map(|(_, v)| v).collect();
    assert_eq!(got, values.iter().collect::<Vec<_>>());
    let b = &file.tensors[1];
    assert_eq!((b.offset - file.data_offset, b.n_bytes), (128, 20));
    assert_eq!(&bytes[b.offset as usize..][..20], &[9u8; 20]);
    assert_eq!(bytes.len() % 64, 0);
}

/// Duplicates, bad shapes, bad alignment, deep or mixed arrays are refused when declared.
#[test]
fn declarations_validated() {
    let mut w = GgufWriter::new();
    w.add_meta("k", MetaValue::U8(1)).unwrap();
    assert!(matches!(
        w.add_meta("k", MetaValue::U8(2)),
        Err(Error::DuplicateKey { .. })
    ));
    let deep = MetaValue::Array(vec![MetaValue::Array(vec![MetaValue::Array(vec![])])]);
    assert!(matches!(
        w.add_meta("deep", deep),
        Err(Error::NestingTooDeep { .. })
    ));
    let mixed = MetaValue::Array(vec![MetaValue::U8(1), MetaValue::U16(1)]);
    assert!(matches!(
        w.add_meta("mixed", mixed),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        w.add_meta("general.alignment", MetaValue::U32(48)),
        Err(Error::BadAlignment { .. })
    ));
    assert!(matches!(
        w.add_meta("general.alignment", MetaValue::I32(32)),
        Err(Error::BadAlignment { .. })
    ));
    assert!(matches!(
        GgufWriter::with_alignment(0),
        Err(Error::BadAlignment { .. })
    ));
    w.add_tensor_info("t", &[32], DType::Q4_0).unwrap();
    assert!(matches!(
        w.add_tensor_info("t", &[32], DType::F32),
        Err(Error::DuplicateTensor { .. })
    ));
    assert!(matches!(
        w.add_tensor_info("u", &[33], DType::Q4_0),
        Err(Error::BadBlockShape { .. })
    ));
    assert!(matches!(
        w.add_tensor_info("u", &[1, 2, 3, 4, 5], DType::F32),
        Err(Error::BadDims { .. })
    ));
    assert!(matches!(
        w.add_tensor_info("u", &[u64::MAX, 2], DType::F32),
        Err(Error::SizeOverflow { .. })
    ));
}

/// Tensor data must come in declaration order, at its exact size, and all of it.
#[test]
fn data_order_size_and_completeness() {
    let mut w = GgufWriter::new();
    w.add_tensor_info("a", &[4], DType::F32).unwrap();
    w.add_tensor_info("b", &[4], DType::F32).unwrap();
    let mut out = w.clone().begin(Vec::new()).unwrap();
    assert!(matches!(
        out.write_tensor_data("b", &[0; 16]),
        Err(Error::Writer { .. })
    ));
    assert!(matches!(
        out.write_tensor_data("a", &[0; 15]),
        Err(Error::Writer { .. })
    ));
    out.write_tensor_data("a", &[0; 16]).unwrap();
    assert!(matches!(out.finish(), Err(Error::Writer { .. })));
    let mut out = w.begin(Vec::new()).unwrap();
    out.write_tensor_data("a", &[0; 16]).unwrap();
    out.write_tensor_data("b", &[0; 16]).unwrap();
    assert!(matches!(
        out.write_tensor_data("c", &[0; 16]),
        Err(Error::Writer { .. })
    ));
    assert!(parse_gguf(&out.finish().unwrap()).is_ok());
}

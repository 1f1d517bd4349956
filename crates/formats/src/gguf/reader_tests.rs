//! Crafted-input tests of the GGUF reader: one per bad-input class of RELIABILITY.md G1–G9
//! (G12 lives with the spec builder), built byte by byte with [`Buf`].

use super::*;

/// A GGUF file under construction.
struct Buf(Vec<u8>);

impl Buf {
    fn new(version: u32, n_tensors: u64, n_kv: u64) -> Buf {
        let mut b = Buf(Vec::new());
        b.u32(GGUF_MAGIC).u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u32(&mut self, v: u32) -> &mut Buf {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Buf {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Buf {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn kv_u32(&mut self, key: &str, v: u32) -> &mut Buf {
        self.str(key).u32(4).u32(v)
    }
    fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> &mut Buf {
        self.str(name).u32(dims.len() as u32);
        dims.iter().for_each(|&d| {
            self.u64(d);
        });
        self.u32(type_id).u64(offset)
    }
    /// Pads to 32 and appends `n` data bytes.
    fn data(&mut self, n: usize) -> Vec<u8> {
        let mut out = self.0.clone();
        out.resize(out.len().next_multiple_of(32) + n, 0);
        out
    }
}

fn tiny() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/formats/tiny.gguf"
    ))
    .expect("tiny.gguf")
}

/// G1: wrong magic, versions 1 and 4, and a file shorter than the header.
#[test]
fn g1_magic_version_short_header() {
    let mut bad = tiny();
    bad[0] = b'X';
    assert!(matches!(parse_gguf(&bad), Err(Error::BadMagic { .. })));
    for version in [0, 1, 4, u32::MAX] {
        let r = parse_gguf(&Buf::new(version, 0, 0).0);
        assert!(
            matches!(r, Err(Error::UnsupportedVersion { version: v }) if v == version),
            "{r:?}"
        );
    }
    let r = parse_gguf(&tiny()[..10]);
    assert!(
        matches!(
            r,
            Err(Error::Truncated {
                needed: 8,
                have: 2,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(matches!(parse_gguf(&[]), Err(Error::Truncated { .. })));
    // Version 2 has the same little-endian layout and is accepted.
    let mut v2 = tiny();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(parse_gguf(&v2).unwrap().version, 2);
}

/// G2 / G13: counts larger than the file could hold fail before allocating, fast.
#[test]
fn g2_huge_counts_rejected_up_front() {
    for (n_tensors, n_kv) in [
        (1u64 << 62, 0u64),
        (0, 1 << 63),
        (u64::MAX, u64::MAX),
        (6, 0),
    ] {
        let mut b = Buf::new(3, n_tensors, n_kv);
        b.0.resize(160, 0);
        let start = std::time::Instant::now();
        let r = parse_gguf(&b.0);
        assert!(matches!(r, Err(Error::CountTooLarge { .. })), "{r:?}");
        assert!(
            start.elapsed().as_millis() < 10,
            "took {:?}",
            start.elapsed()
        );
    }
}

/// G3: string lengths of 2^64−1, past the end, and over the 16 MiB cap.
#[test]
fn g3_strings() {
    let mut b = Buf::new(3, 0, 1);
    b.u64(u64::MAX);
    b.0.resize(64, 0);
    assert!(matches!(
        parse_gguf(&b.0),
        Err(Error::StringTooLong { len: u64::MAX, .. })
    ));
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(8).u64(100).str("short");
    assert!(matches!(
        parse_gguf(&b.0),
        Err(Error::Truncated { needed: 100, .. })
    ));
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(8).u64(MAX_STRING_LEN + 1);
    assert!(matches!(parse_gguf(&b.0), Err(Error::StringTooLong { .. })));
    let mut b = Buf::new(3, 0, 1);
    b.u64(2);
    b.0.extend_from_slice(&[0xc3, 0x28]);
    b.0.resize(64, 0);
    assert!(matches!(parse_gguf(&b.0), Err(Error::BadUtf8 { .. })));
}

/// G4: array counts past the bytes left, nesting too deep, unknown type tags.
#[test]
fn g4_arrays_and_type_tags() {
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(9).u32(10).u64(u64::MAX / 2);
    assert!(matches!(parse_gguf(&b.0), Err(Error::CountTooLarge { .. })));
    let mut b = Buf::new(3, 0, 1);
    b.str("k")
        .u32(9)
        .u32(9)
        .u64(1)
        .u32(9)
        .u64(1)
        .u32(4)
        .u64(1)
        .u32(7);
    assert!(matches!(
        parse_gguf(&b.0),
        Err(Error::NestingTooDeep {
            max: MAX_ARRAY_NESTING,
            ..
        })
    ));
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(13).u32(0);
    assert!(matches!(
        parse_gguf(&b.0),
        Err(Error::BadValueType { type_id: 13, .. })
    ));
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(9).u32(u32::MAX).u64(0);
    assert!(matches!(
        parse_gguf(&b.0),
        Err(Error::BadValueType {
            type_id: u32::MAX,
            ..
        })
    ));
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(7);
    b.0.push(2);
    assert!(matches!(parse_gguf(&b.0), Err(Error::WrongType { .. })));
    // Two levels are fine.
    let mut b = Buf::new(3, 0, 1);
    b.str("k").u32(9).u32(9).u64(1).u32(4).u64(1).u32(7);
    let file = parse_gguf(&b.0).unwrap();
    assert_eq!(
        file.metadata[0].1,
        MetaValue::Array(vec![MetaValue::Array(vec![MetaValue::U32(7)])])
    );
}

/// G5: duplicate metadata keys and tensor names.
#[test]
fn g5_duplicates() {
    let mut b = Buf::new(3, 0, 2);
    b.kv_u32("a", 1).kv_u32("a", 2);
    assert!(matches!(parse_gguf(&b.0), Err(Error::DuplicateKey { key }) if key == "a"));
    let mut b = Buf::new(3, 2, 0);
    b.tensor("t", &[8], 0, 0).tensor("t", &[8], 0, 32);
    assert!(matches!(parse_gguf(&b.data(64)), Err(Error::DuplicateTensor { name }) if name == "t"));
}

fn one_tensor(dims: &[u64], type_id: u32, offset: u64, data: usize) -> Result<GgufFile> {
    let mut b = Buf::new(3, 1, 0);
    b.tensor("t", dims, type_id, offset);
    parse_gguf(&b.data(data))
}

/// G6: n_dims 0, 5 and 2^32−1, a zero dim, and products that overflow.
#[test]
fn g6_dims() {
    for n_dims in [0u32, 5, u32::MAX] {
        let mut b = Buf::new(3, 1, 0);
        b.str("t").u32(n_dims);
        b.0.resize(200, 0);
        assert!(
            matches!(parse_gguf(&b.0), Err(Error::BadDims { .. })),
            "n_dims {n_dims}"
        );
    }
    assert!(matches!(
        one_tensor(&[4, 0], 0, 0, 64),
        Err(Error::BadDims { .. })
    ));
    assert!(matches!(
        one_tensor(&[1 << 40, 1 << 30, 1 << 10], 0, 0, 64),
        Err(Error::SizeOverflow { .. })
    ));
    assert!(matches!(
        one_tensor(&[u64::MAX, 1], 0, 0, 64),
        Err(Error::SizeOverflow { .. })
    ));
    let r = one_tensor(&[(1 << 42) + 1, 1152], 0, 0, 64);
    assert!(matches!(r, Err(Error::TensorOutOfBounds { .. })), "{r:?}");
}

/// G7: unknown ggml type ids and rows that are not whole blocks.
#[test]
fn g7_types_and_block_shape() {
    for type_id in [4, 5, 16, 31, 1000, u32::MAX] {
        let r = one_tensor(&[32], type_id, 0, 64);
        assert!(
            matches!(r, Err(Error::BadTensorType { type_id: t, .. }) if t == type_id),
            "{r:?}"
        );
    }
    let r = one_tensor(&[33, 2], DType::Q4_0.ggml_id(), 0, 64);
    assert!(
        matches!(
            r,
            Err(Error::BadBlockShape {
                ne0: 33,
                block_len: 32,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(one_tensor(&[64, 2], DType::Q4_0.ggml_id(), 0, 72).is_ok());
}

/// G8: alignment 0, 3, 2^30, and stored as INT32 or STRING.
#[test]
fn g8_alignment() {
    for a in [0u32, 3, 1 << 30] {
        let mut b = Buf::new(3, 0, 1);
        b.kv_u32("general.alignment", a);
        assert!(
            matches!(parse_gguf(&b.0), Err(Error::BadAlignment { .. })),
            "{a}"
        );
    }
    let mut b = Buf::new(3, 0, 1);
    b.str("general.alignment").u32(5).u32(32);
    assert!(matches!(parse_gguf(&b.0), Err(Error::BadAlignment { .. })));
    let mut b = Buf::new(3, 0, 1);
    b.str("general.alignment").u32(8).str("32");
    assert!(matches!(parse_gguf(&b.0), Err(Error::BadAlignment { .. })));
    let mut b = Buf::new(3, 0, 1);
    b.kv_u32("general.alignment", 64);
    assert_eq!(parse_gguf(&b.0).unwrap().alignment, 64);
}

/// G9: misaligned offsets, bytes past EOF, overlapping tensors, a truncated file.
#[test]
fn g9_offsets() {
    assert!(matches!(
        one_tensor(&[8], 0, 4, 64),
        Err(Error::Misaligned {
            offset: 4,
            alignment: 32,
            ..
        })
    ));
    let r = one_tensor(&[8], 0, 32, 40);
    assert!(
        matches!(r, Err(Error::TensorOutOfBounds { size: 32, .. })),
        "{r:?}"
    );
    assert!(matches!(
        one_tensor(&[8], 0, u64::MAX - 31, 64),
        Err(Error::TensorOutOfBounds { .. })
    ));
    let mut b = Buf::new(3, 2, 0);
    b.tensor("a", &[16], 0, 0).tensor("b", &[8], 0, 32);
    assert!(matches!(
        parse_gguf(&b.data(64)),
        Err(Error::TensorsOverlap { .. })
    ));
    let whole = tiny();
    let r = parse_gguf(&whole[..whole.len() - 1]);
    assert!(
        matches!(r, Err(Error::TensorOutOfBounds { name, .. }) if name == "output_norm.weight")
    );
}

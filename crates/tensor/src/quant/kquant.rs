//! The K-quant super-block formats (256 values): layouts and dequantization.
//!
//! Layouts, exactly ggml's `block_q*_K` structs in `ggml-common.h` (little-endian, no padding):
//!
//! | type | bytes | fields (byte offset: field) |
//! |---|---|---|
//! | Q2_K | 84 | 0: `scales[16]` (low nibble scale, high nibble min); 16: `qs[64]`; 80: `d` f16; 82: `dmin` f16 |
//! | Q3_K | 110 | 0: `hmask[32]`; 32: `qs[64]`; 96: `scales[12]` (16 × 6 bits); 108: `d` f16 |
//! | Q4_K | 144 | 0: `d` f16; 2: `dmin` f16; 4: `scales[12]` (8 scales + 8 mins, 6 bits); 16: `qs[128]` |
//! | Q5_K | 176 | 0: `d` f16; 2: `dmin` f16; 4: `scales[12]`; 16: `qh[32]`; 48: `qs[128]` |
//! | Q6_K | 210 | 0: `ql[128]`; 128: `qh[64]`; 192: `scales[16]` i8; 208: `d` f16 |
//! | Q8_K | 292 | 0: `d` f32; 4: `qs[256]` i8; 260: `bsums[16]` i16 (sums of 16 quants) |
//!
//! Bit placement (value index `i` within the super-block):
//! - 2-bit fields (Q2_K `qs`, Q3_K `qs`): half `h = i / 128`, value `(qs[32h + i % 32] >> 2·((i % 128) / 32)) & 3`.
//! - Q3_K high bit: bit `i / 32` of `hmask[i % 32]`; a *clear* bit subtracts 4.
//! - 4-bit fields (Q4_K, Q5_K `qs`): chunk `c = i / 64`, nibble `(i % 64) / 32` of `qs[32c + i % 32]`.
//! - Q5_K fifth bit: bit `i / 32` of `qh[i % 32]`.
//! - Q6_K: low nibble `(ql[64h + i % 64] >> 4·((i % 128) / 64)) & 15`, high two bits
//!   `(qh[32h + i % 32] >> 2·((i % 128) / 32)) & 3`, minus 32; `h = i / 128`.
//! - Q4_K/Q5_K 6-bit scales and mins of sub-block `j` (0..8), from `scales[12]`: for `j < 4`,
//!   `sc = s[j] & 63`, `m = s[j + 4] & 63`; else `sc = (s[j + 4] & 15) | (s[j − 4] >> 6) << 4`,
//!   `m = (s[j + 4] >> 4) | (s[j] >> 6) << 4` (ggml `get_scale_min_k4`).
//! - Q3_K 6-bit scale `j` (0..16): low 4 bits from nibble `j / 8` of `scales[j % 8]`, high 2
//!   bits `(scales[8 + j % 4] >> 2·(j / 4)) & 3`; the scale is that minus 32.
//!
//! Dequantization computes in the order `gguf.quants` does (each step an f32 rounding):
//! Q2_K `(d·sc)·q − (dmin·m)`, Q3_K `(d·sc)·q`, Q4_K/Q5_K `(d·sc)·q − (dmin·m)`,
//! Q6_K `(d·sc)·q`, Q8_K `d·q`.

use super::f16_at;

/// Values per super-block.
const QK_K: usize = crate::dtype::QK_K;

/// 2-bit value `i` of a Q2_K/Q3_K `qs[64]` field.
fn two_bits(qs: &[u8], i: usize) -> u8 {
    (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3
}

/// 4-bit value `i` of a Q4_K/Q5_K `qs[128]` field.
fn four_bits(qs: &[u8], i: usize) -> u8 {
    (qs[32 * (i / 64) + i % 32] >> (4 * ((i % 64) / 32))) & 0x0f
}

/// Bit `i / 32` of `bits[i % 32]`: the Q3_K `hmask` and Q5_K `qh` layout.
fn high_bit(bits: &[u8], i: usize) -> u8 {
    (bits[i % 32] >> (i / 32)) & 1
}

/// Scale and min of sub-block `j` (0..8) from a Q4_K/Q5_K `scales[12]` (ggml `get_scale_min_k4`).
pub(super) fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// Signed scale `j` (0..16) of a Q3_K `scales[12]`: the 6-bit field minus 32.
pub(super) fn scale_q3_k(j: usize, s: &[u8]) -> i8 {
    let low = (s[j % 8] >> (4 * (j / 8))) & 0x0f;
    let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    (low | (high << 4)) as i8 - 32
}

/// Q2_K bytes to f32.
pub(super) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(84).zip(dst.chunks_exact_mut(QK_K)) {
        let (scales, qs) = (&b[0..16], &b[16..80]);
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for (g, y) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scales[g] & 0x0f);
            let ml = dmin * f32::from(scales[g] >> 4);
            for (l, y) in y.iter_mut().enumerate() {
                *y = dl * f32::from(two_bits(qs, 16 * g + l)) - ml;
            }
        }
    }
}

/// Q3_K bytes to f32.
pub(super) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(110).zip(dst.chunks_exact_mut(QK_K)) {
        let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
        let d = f16_at(b, 108);
        for (g, y) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scale_q3_k(g, scales));
            for (l, y) in y.iter_mut().enumerate() {
                let i = 16 * g + l;
                let q = two_bits(qs, i) as i8 - (((high_bit(hmask, i) ^ 1) << 2) as i8);
                *y = dl * f32::from(q);
            }
        }
    }
}

/// Q4_K and Q5_K share everything but the fifth bit: `fifth(i)` is 0 or 16.
fn dequantize_q45_k(b: &[u8], qs: &[u8], y: &mut [f32], fifth: impl Fn(usize) -> u8) {
    let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
    for (j, y) in y.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(j, scales);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        for (l, y) in y.iter_mut().enumerate() {
            let i = 32 * j + l;
            *y = dl * f32::from(four_bits(qs, i) | fifth(i)) - ml;
        }
    }
}

/// Q4_K bytes to f32.
pub(super) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(144).zip(dst.chunks_exact_mut(QK_K)) {
        dequantize_q45_k(b, &b[16..144], y, |_| 0);
    }
}

/// Q5_K bytes to f32.
pub(super) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(176).zip(dst.chunks_exact_mut(QK_K)) {
        let qh = &b[16..48];
        dequantize_q45_k(b, &b[48..176], y, |i| high_bit(qh, i) << 4);
    }
}

/// Q6_K bytes to f32.
pub(super) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(210).zip(dst.chunks_exact_mut(QK_K)) {
        let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
        let d = f16_at(b, 208);
        for (g, y) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scales[g] as i8);
            for (l, y) in y.iter_mut().enumerate() {
                let i = 16 * g + l;
                let (h, r) = (i / 128, i % 128);
                let low = (ql[64 * h + i % 64] >> (4 * (r / 64))) & 0x0f;
                let high = (qh[32 * h + i % 32] >> (2 * (r / 32))) & 3;
                *y = dl * f32::from((low | (high << 4)) as i8 - 32);
            }
        }
    }
}

/// Q8_K bytes to f32: `d * q` with an f32 `d`.
pub(super) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(292).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (y, &q) in y.iter_mut().zip(&b[4..260]) {
            *y = d * f32::from(q as i8);
        }
    }
}

//! The 32-value block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
//!
//! Layouts, exactly ggml's `block_*` structs in `ggml-common.h` (little-endian, no padding):
//!
//! | type | bytes | fields (byte offset: field) |
//! |---|---|---|
//! | Q4_0 | 18 | 0: `d` f16; 2: `qs[16]` |
//! | Q4_1 | 20 | 0: `d` f16; 2: `m` f16; 4: `qs[16]` |
//! | Q5_0 | 22 | 0: `d` f16; 2: `qh[4]` (u32 LE); 6: `qs[16]` |
//! | Q5_1 | 24 | 0: `d` f16; 2: `m` f16; 4: `qh[4]` (u32 LE); 8: `qs[16]` |
//! | Q8_0 | 34 | 0: `d` f16; 2: `qs[32]` i8 |
//! | Q8_1 | 36 | 0: `d` f16; 2: `s` f16 (= d · Σq); 4: `qs[32]` i8 |
//!
//! The 4-bit formats pack value `j` (j < 16) in the low nibble of `qs[j]` and value `j + 16`
//! in its high nibble. Q5 formats take the fifth bit of value `j` from bit `j` of `qh`.
//! Dequantization: `x = d · (q − 8)` (Q4_0), `d · q + m` (Q4_1), `d · (q − 16)` (Q5_0),
//! `d · q + m` (Q5_1), `d · q` (Q8_0, Q8_1).
//!
//! The quantizers follow `gguf.quants` (Q4_0..Q8_0, byte-identical with it) and ggml's
//! `quantize_row_q8_1_ref` (Q8_1, which gguf lacks). They agree with ggml's
//! `quantize_row_*_ref` too, except that ggml may contract `x * id + 8.5f` into an FMA when
//! built for a CPU that has one; we never do.

use super::{f16_at, put_f16};

/// Values per block of every format in this file.
const QK: usize = 32;

/// The low nibble of `qs[j]` is value `j`; the high nibble is value `j + 16`.
fn nibbles(qs: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let low = qs.iter().enumerate().map(|(j, q)| (j, q & 0x0f));
    let high = qs.iter().enumerate().map(|(j, q)| (j + QK / 2, q >> 4));
    low.chain(high)
}

/// Q4_0 bytes to f32: `d * (q - 8)`.
pub(super) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(18).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (j, q) in nibbles(&b[2..18]) {
            y[j] = d * f32::from(q as i8 - 8);
        }
    }
}

/// Q4_1 bytes to f32: `(d * q) + m`.
pub(super) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(20).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (j, q) in nibbles(&b[4..20]) {
            y[j] = d * f32::from(q) + m;
        }
    }
}

/// The 5-bit values of a Q5 block: low nibbles from `qs`, fifth bits from `qh`.
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; QK] {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut q = [0u8; QK];
    for (j, low) in nibbles(qs) {
        q[j] = low | ((((high >> j) & 1) as u8) << 4);
    }
    q
}

/// Q5_0 bytes to f32: `d * (q - 16)`.
pub(super) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(22).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, q) in y.iter_mut().zip(q5_values(&b[2..6], &b[6..22])) {
            *y = d * f32::from(q as i8 - 16);
        }
    }
}

/// Q5_1 bytes to f32: `(d * q) + m`.
pub(super) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(24).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (y, q) in y.iter_mut().zip(q5_values(&b[4..8], &b[8..24])) {
            *y = d * f32::from(q) + m;
        }
    }
}

/// Q8_0 bytes to f32: `q * d`.
pub(super) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(34).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, &q) in y.iter_mut().zip(&b[2..34]) {
            *y = f32::from(q as i8) * d;
        }
    }
}

/// Q8_1 bytes to f32: `q * d` (the stored sum `s` is for dot products only).
pub(super) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(36).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (y, &q) in y.iter_mut().zip(&b[4..36]) {
            *y = f32::from(q as i8) * d;
        }
    }
}

/// The value of largest magnitude (the first one on ties), as ggml and numpy's argmax pick it.
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// `1 / d`, or 0 when `d` is zero (an all-zero block).
fn inverse(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

/// Packs 32 values of at most 5 bits: low nibbles into `qs[16]`, fifth bits into `qh` (u32 LE).
fn pack_q5(q: &[u8; QK], qh: &mut [u8], qs: &mut [u8]) {
    let mut high = 0u32;
    for j in 0..QK / 2 {
        qs[j] = (q[j] & 0x0f) | (q[j + QK / 2] << 4);
        high |= u32::from(q[j] >> 4) << j | u32::from(q[j + QK / 2] >> 4) << (j + QK / 2);
    }
    qh.copy_from_slice(&high.to_le_bytes());
}

/// Symmetric quantization `q = min(nmax, trunc(x / d + offset))` with `d = max / -(nmax_half)`.
fn quantize_symmetric(x: &[f32], half_range: f32, q_max: u8) -> (f32, [u8; QK]) {
    let d = signed_absmax(x) / -half_range;
    let id = inverse(d);
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = ((v * id + (half_range + 0.5)).trunc() as u8).min(q_max);
    }
    (d, q)
}

/// Asymmetric quantization `q = min(q_max, trunc((x - min) / d + 0.5))`, `d = (max - min) / q_max`.
fn quantize_affine(x: &[f32], q_max: u8) -> (f32, f32, [u8; QK]) {
    let min = x.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
    let max = x.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let d = (max - min) / f32::from(q_max);
    let id = inverse(d);
    let mut q = [0u8; QK];
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (((v - min) * id + 0.5).trunc() as u8).min(q_max);
    }
    (d, min, q)
}

/// f32 to Q4_0 (gguf `Q4_0.quantize_blocks`).
pub(super) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(18)) {
        let (d, q) = quantize_symmetric(x, 8.0, 15);
        put_f16(b, 0, d);
        for j in 0..QK / 2 {
            b[2 + j] = q[j] | (q[j + QK / 2] << 4);
        }
    }
}

/// f32 to Q4_1 (gguf `Q4_1.quantize_blocks`).
pub(super) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(20)) {
        let (d, min, q) = quantize_affine(x, 15);
        put_f16(b, 0, d);
        put_f16(b, 2, min);
        for j in 0..QK / 2 {
            b[4 + j] = q[j] | (q[j + QK / 2] << 4);
        }
    }
}

/// f32 to Q5_0 (gguf `Q5_0.quantize_blocks`).
pub(super) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(22)) {
        let (d, q) = quantize_symmetric(x, 16.0, 31);
        put_f16(b, 0, d);
        let (qh, qs) = b[2..].split_at_mut(4);
        pack_q5(&q, qh, qs);
    }
}

/// f32 to Q5_1 (gguf `Q5_1.quantize_blocks`).
pub(super) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(24)) {
        let (d, min, q) = quantize_affine(x, 31);
        put_f16(b, 0, d);
        put_f16(b, 2, min);
        let (qh, qs) = b[4..].split_at_mut(4);
        pack_q5(&q, qh, qs);
    }
}

/// Q8 quantization of one block: `d = amax / 127`, `q = round(x / d)` (half away from zero).
fn quantize_q8(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        let qi = (v * id).round() as i8;
        sum += i32::from(qi);
        *q = qi as u8;
    }
    (d, sum)
}

/// f32 to Q8_0 (gguf `Q8_0.quantize_blocks`).
pub(super) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(34)) {
        let (d, _) = quantize_q8(x, &mut b[2..34]);
        put_f16(b, 0, d);
    }
}

/// f32 to Q8_1 (ggml `quantize_row_q8_1_ref`): Q8_0 plus `s = f16(Σq · d)`.
pub(super) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(36)) {
        let (d, sum) = quantize_q8(x, &mut b[4..36]);
        put_f16(b, 0, d);
        put_f16(b, 2, sum as f32 * d);
    }
}

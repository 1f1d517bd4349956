//! Scalar activation quantizers, bit-exact with ggml's `quantize_row_q8_0_ref`,
//! `quantize_row_q8_1_ref` and `quantize_row_q8_K_ref` (ggml-quants.c).
//!
//! Traps kept on purpose for parity: Q8_0/Q8_1 round half away from zero (`roundf`) with
//! `d = amax / 127` and `id = 1 / d`; Q8_K rounds half to even (`nearest_int`) with
//! `iscale = -127 / max` where `max` is the signed value of largest magnitude, so its `d` is
//! negative when that value is positive.

use half::f16;

use crate::kernels::ActFormat;

const QK8: usize = 32;
const QK_K: usize = skiff_tensor::QK_K;

fn check(x: &[f32], out: &[u8], format: ActFormat) {
    let block_len = format.block_len();
    assert!(
        x.len().is_multiple_of(block_len),
        "{} values is not whole blocks of {block_len}",
        x.len()
    );
    assert_eq!(
        out.len(),
        format.row_bytes(x.len()),
        "output bytes for {} values",
        x.len()
    );
}

fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Quantizes an activation row to ggml `block_q8_0` blocks (`out` = 34 bytes per 32 values).
pub fn quantize_row_q8_0(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8_0);
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(34)) {
        let d = amax(xb) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        ob[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        for (q, v) in ob[2..].iter_mut().zip(xb) {
            *q = ((v * id).round() as i8) as u8;
        }
    }
}

/// Quantizes an activation row to ggml `block_q8_1` blocks (`out` = 36 bytes per 32 values),
/// with `s = d * Σq` as the block's second f16.
pub fn quantize_row_q8_1(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8_1);
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(36)) {
        let d = amax(xb) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in ob[4..].iter_mut().zip(xb) {
            let qv = (v * id).round() as i8;
            sum += i32::from(qv);
            *q = qv as u8;
        }
        ob[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        ob[2..4].copy_from_slice(&f16::from_f32(sum as f32 * d).to_le_bytes());
    }
}

/// ggml's `nearest_int`: round half to even, valid for |v| ≤ 2^22.
fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// Quantizes an activation row to ggml `block_q8_K` blocks (`out` = 292 bytes per 256 values).
pub fn quantize_row_q8_k(x: &[f32], out: &mut [u8]) {
    check(x, out, ActFormat::Q8K);
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(292)) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            ob.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in ob[4..4 + QK_K].iter_mut().zip(xb) {
            *q = (nearest_int(iscale * v).min(127) as i8) as u8;
        }
        for j in 0..QK_K / 16 {
            let sum: i32 = ob[4 + 16 * j..4 + 16 * (j + 1)]
                .iter()
                .map(|&q| i32::from(q as i8))
                .sum();
            let at = 4 + QK_K + 2 * j;
            ob[at..at + 2].copy_from_slice(&(sum as i16).to_le_bytes());
        }
        ob[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

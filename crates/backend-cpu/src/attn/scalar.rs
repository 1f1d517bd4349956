//! The scalar attention kernels: the specification the SIMD variants are tested against.
//! Sums run in row order, one value at a time, in f32.

use super::{AttnKernels, KvRowType, Q8_0_BLOCK_BYTES, Q8_0_BLOCK_LEN};
use crate::kernels::Isa;

/// The scalar table for rows of `row_type`.
pub(crate) fn kernels(row_type: KvRowType) -> AttnKernels {
    let (key_dot, value_axpy): (super::KeyDotFn, super::ValueAxpyFn) = match row_type {
        KvRowType::F32 => (key_dot_f32, value_axpy_f32),
        KvRowType::F16 => (key_dot_f16, value_axpy_f16),
        KvRowType::Q8_0 => (key_dot_q8_0, value_axpy_q8_0),
    };
    AttnKernels {
        isa: Isa::Scalar,
        row_type,
        key_dot,
        value_axpy,
        exp_sum,
    }
}

/// Value `d` of the `row_type` row `row`.
#[inline]
pub(crate) fn value_at(row_type: KvRowType, row: &[u8], d: usize) -> f32 {
    match row_type {
        KvRowType::F32 => {
            f32::from_le_bytes([row[4 * d], row[4 * d + 1], row[4 * d + 2], row[4 * d + 3]])
        }
        KvRowType::F16 => half::f16::from_le_bytes([row[2 * d], row[2 * d + 1]]).to_f32(),
        KvRowType::Q8_0 => {
            let block = &row[d / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES..];
            let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            scale * f32::from(block[2 + d % Q8_0_BLOCK_LEN] as i8)
        }
    }
}

/// Checks a key-dot or value-axpy call and returns `(n_q, n_rows, row_bytes)`.
///
/// `per_q` is the length of one query's slice of `q_side` (`head_dim` for queries and
/// accumulators); `w_side` is `[n_q, n_rows]`. Every kernel calls this first: SIMD variants
/// rely on it for the soundness of their loads.
pub(crate) fn check_args(
    row_type: KvRowType,
    head_dim: usize,
    q_side: usize,
    w_side: usize,
    rows: &[u8],
) -> (usize, usize, usize) {
    assert!(head_dim > 0 && q_side > 0, "empty head or no queries");
    assert!(
        q_side.is_multiple_of(head_dim),
        "{q_side} values is not whole heads of {head_dim}"
    );
    let n_q = q_side / head_dim;
    assert!(
        w_side.is_multiple_of(n_q),
        "{w_side} scores for {n_q} queries"
    );
    let n_rows = w_side / n_q;
    let row_bytes = row_type.row_bytes(head_dim);
    assert!(
        n_rows
            .checked_mul(row_bytes)
            .is_some_and(|need| rows.len() >= need),
        "{n_rows} rows of {row_bytes} bytes, got {} bytes",
        rows.len()
    );
    (n_q, n_rows, row_bytes)
}

/// Values `c0..c0 + out.len()` of a row (all inside one 32-value chunk), decoded.
fn decode_chunk(row_type: KvRowType, row: &[u8], c0: usize, out: &mut [f32]) {
    match row_type {
        KvRowType::F32 => {
            for (o, b) in out.iter_mut().zip(row[4 * c0..].chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        KvRowType::F16 => {
            for (o, b) in out.iter_mut().zip(row[2 * c0..].chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        KvRowType::Q8_0 => {
            let block = &row[c0 / Q8_0_BLOCK_LEN * Q8_0_BLOCK_BYTES..];
            let scale = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            let quants = &block[2 + c0 % Q8_0_BLOCK_LEN..];
            for (o, &q) in out.iter_mut().zip(quants) {
                *o = scale * f32::from(q as i8);
            }
        }
    }
}

fn key_dot(row_type: KvRowType, q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, q.len(), scores.len(), keys);
    scores.fill(0.0);
    let mut buf = [0.0f32; Q8_0_BLOCK_LEN];
    for r in 0..n_rows {
        let row = &keys[r * row_bytes..(r + 1) * row_bytes];
        for c0 in (0..head_dim).step_by(Q8_0_BLOCK_LEN) {
            let k = &mut buf[..(head_dim - c0).min(Q8_0_BLOCK_LEN)];
            decode_chunk(row_type, row, c0, k);
            for i in 0..n_q {
                let qi = &q[i * head_dim + c0..][..k.len()];
                let sum = &mut scores[i * n_rows + r];
                for (qv, kv) in qi.iter().zip(k.iter()) {
                    *sum += qv * kv;
                }
            }
        }
    }
}

fn value_axpy(row_type: KvRowType, w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, acc.len(), w.len(), values);
    let mut buf = [0.0f32; Q8_0_BLOCK_LEN];
    for r in 0..n_rows {
        let row = &values[r * row_bytes..(r + 1) * row_bytes];
        for c0 in (0..head_dim).step_by(Q8_0_BLOCK_LEN) {
            let v = &mut buf[..(head_dim - c0).min(Q8_0_BLOCK_LEN)];
            decode_chunk(row_type, row, c0, v);
            for i in 0..n_q {
                let wi = w[i * n_rows + r];
                let acc_i = &mut acc[i * head_dim + c0..][..v.len()];
                for (a, x) in acc_i.iter_mut().zip(v.iter()) {
                    *a += wi * x;
                }
            }
        }
    }
}

/// f32 key rows.
pub fn key_dot_f32(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    key_dot(KvRowType::F32, q, head_dim, keys, scores);
}

/// f16 key rows.
pub fn key_dot_f16(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    key_dot(KvRowType::F16, q, head_dim, keys, scores);
}

/// `block_q8_0` key rows.
pub fn key_dot_q8_0(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    key_dot(KvRowType::Q8_0, q, head_dim, keys, scores);
}

/// f32 value rows.
pub fn value_axpy_f32(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    value_axpy(KvRowType::F32, w, values, head_dim, acc);
}

/// f16 value rows.
pub fn value_axpy_f16(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    value_axpy(KvRowType::F16, w, values, head_dim, acc);
}

/// `block_q8_0` value rows.
pub fn value_axpy_q8_0(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    value_axpy(KvRowType::Q8_0, w, values, head_dim, acc);
}

/// Lowest argument of [`exp_approx`]: below it the result would be subnormal; it is clamped.
pub(crate) const EXP_MIN: f32 = -87.336_55;

/// `exp(x)` for `x ≤ 0` within a few ulp: `2^n · p(r)` with `n = round(x / ln 2)`,
/// `r = x − n ln 2` (two-part ln 2) and a degree-6 Taylor polynomial. The AVX2 kernel evaluates
/// the same formula lane by lane (with fused multiply-adds).
#[inline]
pub(crate) fn exp_approx(x: f32) -> f32 {
    let x = x.max(EXP_MIN);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = EXP_C6;
    for c in [EXP_C5, EXP_C4, EXP_C3, EXP_C2, 1.0, 1.0] {
        p = p * r + c;
    }
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// High part of ln 2: Cephes' `C1` = 0.693359375 (the f32 this literal denotes), few
/// significant bits, so `n · LN2_HI` is exact.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
/// ln 2 − [`LN2_HI`] (Cephes' `C2`).
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
pub(crate) const EXP_C2: f32 = 1.0 / 2.0;
pub(crate) const EXP_C3: f32 = 1.0 / 6.0;
pub(crate) const EXP_C4: f32 = 1.0 / 24.0;
pub(crate) const EXP_C5: f32 = 1.0 / 120.0;
pub(crate) const EXP_C6: f32 = 1.0 / 720.0;

/// Softmax numerators with [`exp_approx`]: `x[j] ← exp(x[j] − max)`; returns `Σ x[j]`.
pub fn exp_sum(x: &mut [f32], max: f32) -> f32 {
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = exp_approx(*v - max);
        sum += *v;
    }
    sum
}

//! NEON attention kernels over f32 and f16 KV rows (the f16 cache is the default): key dots
//! and value sums on 4-lane f32 vectors with fused multiply-adds, the f16 rows widened 8 at a
//! time with `fcvtl`/`fcvtl2`. A row's last `head_dim % 8` values go through the scalar
//! decoder. q8_0 rows and the softmax exponentials use the scalar kernels (`attn::scalar`),
//! which the compiler vectorizes with NEON.
//!
//! The scalar kernels sum each dot in value order; these sum 8 lanes and then reduce, so a
//! result may differ from the scalar one in the last bits (within the tolerance the tests
//! hold every table to). Each query's result depends only on its own query and the rows, as
//! on every table.

use std::arch::aarch64::*;

use super::{Neon, f16x8};
use crate::attn::scalar::{self, check_args, value_at};
use crate::attn::{AttnKernels, KvRowType};
use crate::kernels::Isa;

/// The NEON attention table for rows of `row_type`, reported as `isa` (both NEON tables run
/// these kernels).
pub(crate) fn kernels(_proof: Neon, isa: Isa, row_type: KvRowType) -> AttnKernels {
    let base = AttnKernels {
        isa,
        ..scalar::kernels(row_type)
    };
    match row_type {
        KvRowType::F32 => AttnKernels {
            key_dot: key_dot_f32,
            value_axpy: value_axpy_f32,
            ..base
        },
        KvRowType::F16 => AttnKernels {
            key_dot: key_dot_f16,
            value_axpy: value_axpy_f16,
            ..base
        },
        KvRowType::Q8_0 => base,
    }
}

/// Row values `d..d + 8` as f32 (values 0-3, values 4-7).
///
/// # Safety
/// `row` holds at least `d + 8` values of the row type (`F16` or `F32`).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn values8<const F16: bool>(row: *const u8, d: usize) -> [float32x4_t; 2] {
    // SAFETY: values `d..d + 8` are inside the row (caller).
    unsafe {
        if F16 {
            f16x8(row.add(2 * d))
        } else {
            let p = row.add(4 * d).cast::<f32>();
            [vld1q_f32(p), vld1q_f32(p.add(4))]
        }
    }
}

/// `Σ_d q[d] · row[d]` over the first `n` values (`n` a multiple of 8), in 8 lanes.
///
/// # Safety
/// `q` holds `n` values and `row` at least `n` values of the row type.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot<const F16: bool>(q: *const f32, row: *const u8, n: usize) -> f32 {
    let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    for d in (0..n).step_by(8) {
        // SAFETY: `d + 8 ≤ n`, inside both (caller).
        unsafe {
            let [k0, k1] = values8::<F16>(row, d);
            a0 = vfmaq_f32(a0, vld1q_f32(q.add(d)), k0);
            a1 = vfmaq_f32(a1, vld1q_f32(q.add(d + 4)), k1);
        }
    }
    vaddvq_f32(vaddq_f32(a0, a1))
}

/// `acc[d] += w · row[d]` over the first `n` values (`n` a multiple of 8).
///
/// # Safety
/// `acc` holds `n` values and `row` at least `n` values of the row type.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn axpy<const F16: bool>(acc: *mut f32, w: f32, row: *const u8, n: usize) {
    for d in (0..n).step_by(8) {
        // SAFETY: `d + 8 ≤ n`, inside both (caller).
        unsafe {
            let [v0, v1] = values8::<F16>(row, d);
            let (p0, p1) = (acc.add(d), acc.add(d + 4));
            vst1q_f32(p0, vfmaq_n_f32(vld1q_f32(p0), v0, w));
            vst1q_f32(p1, vfmaq_n_f32(vld1q_f32(p1), v1, w));
        }
    }
}

/// [`crate::attn::KeyDotFn`] over `F16` (or `F32`) rows.
///
/// # Safety
/// Only through [`kernels`] (the NEON proof token).
#[target_feature(enable = "neon")]
unsafe fn key_dot<const F16: bool>(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    let row_type = if F16 { KvRowType::F16 } else { KvRowType::F32 };
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, q.len(), scores.len(), keys);
    let full = head_dim / 8 * 8;
    for r in 0..n_rows {
        let row = &keys[r * row_bytes..(r + 1) * row_bytes];
        for i in 0..n_q {
            let qi = &q[i * head_dim..(i + 1) * head_dim];
            // SAFETY: `qi` and `row` hold `head_dim ≥ full` values (checked above).
            let mut sum = unsafe { dot::<F16>(qi.as_ptr(), row.as_ptr(), full) };
            for (d, qv) in qi.iter().enumerate().skip(full) {
                sum += qv * value_at(row_type, row, d);
            }
            scores[i * n_rows + r] = sum;
        }
    }
}

/// [`crate::attn::ValueAxpyFn`] over `F16` (or `F32`) rows.
///
/// # Safety
/// Only through [`kernels`] (the NEON proof token).
#[target_feature(enable = "neon")]
unsafe fn value_axpy<const F16: bool>(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    let row_type = if F16 { KvRowType::F16 } else { KvRowType::F32 };
    let (n_q, n_rows, row_bytes) = check_args(row_type, head_dim, acc.len(), w.len(), values);
    let full = head_dim / 8 * 8;
    for r in 0..n_rows {
        let row = &values[r * row_bytes..(r + 1) * row_bytes];
        for i in 0..n_q {
            let wi = w[i * n_rows + r];
            let acc_i = &mut acc[i * head_dim..(i + 1) * head_dim];
            // SAFETY: `acc_i` and `row` hold `head_dim ≥ full` values (checked above).
            unsafe { axpy::<F16>(acc_i.as_mut_ptr(), wi, row.as_ptr(), full) };
            for (d, a) in acc_i.iter_mut().enumerate().skip(full) {
                *a += wi * value_at(row_type, row, d);
            }
        }
    }
}

fn key_dot_f16(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    // SAFETY: reachable only through `kernels`, which takes the NEON proof token.
    unsafe { key_dot::<true>(q, head_dim, keys, scores) }
}

fn key_dot_f32(q: &[f32], head_dim: usize, keys: &[u8], scores: &mut [f32]) {
    // SAFETY: as `key_dot_f16`.
    unsafe { key_dot::<false>(q, head_dim, keys, scores) }
}

fn value_axpy_f16(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    // SAFETY: as `key_dot_f16`.
    unsafe { value_axpy::<true>(w, values, head_dim, acc) }
}

fn value_axpy_f32(w: &[f32], values: &[u8], head_dim: usize, acc: &mut [f32]) {
    // SAFETY: as `key_dot_f16`.
    unsafe { value_axpy::<false>(w, values, head_dim, acc) }
}

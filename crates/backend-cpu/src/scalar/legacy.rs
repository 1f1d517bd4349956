//! Scalar dot products of the 32-value block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) with
//! Q8_0 / Q8_1 activations, after ggml's `ggml_vec_dot_*_generic`.
//!
//! Block layouts (ggml-common.h): `q4_0 {f16 d; u8 qs[16]}`, `q4_1 {f16 d, m; u8 qs[16]}`,
//! `q5_0 {f16 d; u8 qh[4]; u8 qs[16]}`, `q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}`,
//! `q8_0 {f16 d; i8 qs[32]}`, `q8_1 {f16 d, s; i8 qs[32]}`. Value `j < 16` of a block is the low
//! nibble of `qs[j]`, value `j + 16` the high nibble; Q5's fifth bit of value `j` is bit `j` of
//! the little-endian u32 `qh`.

use super::{dot_rows, f16_at};

/// Σ_j (q_w[j] + w_offset) · q_a[j] for a block of 32 whose weight values come from `val(j)`.
#[inline]
fn block_sum(a_qs: &[u8], val: impl Fn(usize) -> i32) -> i32 {
    (0..32).map(|j| val(j) * i32::from(a_qs[j] as i8)).sum()
}

fn nibble(qs: &[u8], j: usize) -> i32 {
    i32::from(if j < 16 {
        qs[j] & 0x0F
    } else {
        qs[j - 16] >> 4
    })
}

fn fifth_bit(qh: &[u8], j: usize) -> i32 {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    (((qh >> j) & 1) << 4) as i32
}

/// Q4_0 weights · Q8_0 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q4_0_q8_0(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((18, 34), w, acts, act_stride, out, |w, a| {
        let sumi = block_sum(&a[2..], |j| nibble(&w[2..], j) - 8);
        sumi as f32 * (f16_at(w, 0) * f16_at(a, 0))
    });
}

/// Q4_1 weights · Q8_1 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q4_1_q8_1(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((20, 36), w, acts, act_stride, out, |w, a| {
        let sumi = block_sum(&a[4..], |j| nibble(&w[4..], j));
        (f16_at(w, 0) * f16_at(a, 0)) * sumi as f32 + f16_at(w, 2) * f16_at(a, 2)
    });
}

/// Q5_0 weights · Q8_0 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q5_0_q8_0(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((22, 34), w, acts, act_stride, out, |w, a| {
        let sumi = block_sum(&a[2..], |j| {
            (nibble(&w[6..], j) | fifth_bit(&w[2..], j)) - 16
        });
        sumi as f32 * (f16_at(w, 0) * f16_at(a, 0))
    });
}

/// Q5_1 weights · Q8_1 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q5_1_q8_1(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((24, 36), w, acts, act_stride, out, |w, a| {
        let sumi = block_sum(&a[4..], |j| nibble(&w[8..], j) | fifth_bit(&w[4..], j));
        (f16_at(w, 0) * f16_at(a, 0)) * sumi as f32 + f16_at(w, 2) * f16_at(a, 2)
    });
}

/// Q8_0 weights · Q8_0 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q8_0_q8_0(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((34, 34), w, acts, act_stride, out, |w, a| {
        let sumi = block_sum(&a[2..], |j| i32::from(w[2 + j] as i8));
        sumi as f32 * (f16_at(w, 0) * f16_at(a, 0))
    });
}

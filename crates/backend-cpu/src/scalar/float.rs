//! Scalar dot products of f32 / f16 / bf16 weight rows with f32 activations.

use super::{dot_rows, f16_at, f32_at};

/// f32 weights · f32 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_f32(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((4, 4), w, acts, act_stride, out, |w, a| {
        f32_at(w, 0) * f32_at(a, 0)
    });
}

/// f16 weights · f32 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_f16_f32(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((2, 4), w, acts, act_stride, out, |w, a| {
        f16_at(w, 0) * f32_at(a, 0)
    });
}

/// bf16 weights · f32 activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_bf16_f32(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((2, 4), w, acts, act_stride, out, |w, a| {
        half::bf16::from_le_bytes([w[0], w[1]]).to_f32() * f32_at(a, 0)
    });
}

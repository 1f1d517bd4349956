//! Scalar dot products of the 256-value K-quant super-blocks with Q8_K activations, after
//! ggml's `ggml_vec_dot_q{2..6}_K_q8_K_generic`.
//!
//! Super-block layouts (ggml-common.h, byte offsets):
//! - `q2_K` (84): `scales[16]` @0 (low nibble scale, high nibble min), `qs[64]` @16, `d` @80,
//!   `dmin` @82.
//! - `q3_K` (110): `hmask[32]` @0, `qs[64]` @32, `scales[12]` @96 (16 packed 6-bit scales,
//!   biased by 32), `d` @108.
//! - `q4_K` (144): `d` @0, `dmin` @2, `scales[12]` @4 (8 packed 6-bit scales and mins),
//!   `qs[128]` @16.
//! - `q5_K` (176): as q4_K with `qh[32]` @16 and `qs[128]` @48.
//! - `q6_K` (210): `ql[128]` @0, `qh[64]` @128, `scales[16]` (i8) @192, `d` @208.
//! - `q8_K` (292): `d` (f32) @0, `qs[256]` @4, `bsums[16]` (i16, sums of 16 values) @260.
//!
//! Each kernel first unpacks a weight super-block into its 256 integer values in value order,
//! then sums `scale · Σ q_w · q_a` per sub-block; the mins of Q2_K/Q4_K/Q5_K are applied through
//! the activation block sums, as ggml does.

use super::{dot_rows, f16_at, f32_at};

const QK_K: usize = skiff_tensor::QK_K;

fn act_q(a: &[u8], v: usize) -> i32 {
    i32::from(a[4 + v] as i8)
}

fn act_bsum(a: &[u8], j: usize) -> i32 {
    i32::from(i16::from_le_bytes([a[260 + 2 * j], a[261 + 2 * j]]))
}

/// Σ_j scale(j) · Σ_{v in sub-block j} q_w[v] · q_a[v], for sub-blocks of `sub_len` values.
fn scaled_sum(values: &[i32; QK_K], a: &[u8], sub_len: usize, scale: impl Fn(usize) -> i32) -> i32 {
    (0..QK_K / sub_len)
        .map(|j| {
            let s: i32 = (j * sub_len..(j + 1) * sub_len)
                .map(|v| values[v] * act_q(a, v))
                .sum();
            scale(j) * s
        })
        .sum()
}

/// The 6-bit scale and min of sub-block `j < 8` of a Q4_K/Q5_K `scales[12]` field
/// (ggml's `get_scale_min_k4`).
pub fn q4_k_scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 16 signed scales (6-bit values minus 32) of a Q3_K `scales[12]` field.
pub fn q3_k_scales(sc: &[u8]) -> [i32; 16] {
    let mut out = [0i32; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = if j < 8 { sc[j] & 0xF } else { sc[j - 8] >> 4 };
        let high = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = i32::from(low | (high << 4)) - 32;
    }
    out
}

/// Q2_K weights · Q8_K activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q2_k_q8_k(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((84, 292), w, acts, act_stride, out, |w, a| {
        let (sc, qs) = (&w[..16], &w[16..80]);
        let values: [i32; QK_K] = std::array::from_fn(|v| {
            let (h, g, l) = (v / 128, (v % 128) / 32, v % 32);
            i32::from((qs[32 * h + l] >> (2 * g)) & 3)
        });
        let isum = scaled_sum(&values, a, 16, |j| i32::from(sc[j] & 0xF));
        let summs: i32 = (0..16)
            .map(|j| act_bsum(a, j) * i32::from(sc[j] >> 4))
            .sum();
        let yd = f32_at(a, 0);
        let (dall, dmin) = (yd * f16_at(w, 80), yd * f16_at(w, 82));
        dall * isum as f32 - dmin * summs as f32
    });
}

/// Q3_K weights · Q8_K activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q3_k_q8_k(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((110, 292), w, acts, act_stride, out, |w, a| {
        let (hm, qs) = (&w[..32], &w[32..96]);
        let scales = q3_k_scales(&w[96..108]);
        let values: [i32; QK_K] = std::array::from_fn(|v| {
            let (h, g, l) = (v / 128, (v % 128) / 32, v % 32);
            let low = i32::from((qs[32 * h + l] >> (2 * g)) & 3);
            let high_set = hm[l] & (1 << (4 * h + g)) != 0;
            if high_set { low } else { low - 4 }
        });
        let isum = scaled_sum(&values, a, 16, |j| scales[j]);
        f16_at(w, 108) * f32_at(a, 0) * isum as f32
    });
}

/// Shared by Q4_K and Q5_K: `d·yd·Σ sc·Σq·q8 − dmin·yd·Σ m·bsums`.
fn q45_k_sum(w: &[u8], a: &[u8], values: &[i32; QK_K]) -> f32 {
    let sc = &w[4..16];
    let isum = scaled_sum(values, a, 32, |j| i32::from(q4_k_scale_min(j, sc).0));
    let msum: i32 = (0..8)
        .map(|j| i32::from(q4_k_scale_min(j, sc).1) * (act_bsum(a, 2 * j) + act_bsum(a, 2 * j + 1)))
        .sum();
    let yd = f32_at(a, 0);
    yd * f16_at(w, 0) * isum as f32 - yd * f16_at(w, 2) * msum as f32
}

/// The 4-bit part of Q4_K/Q5_K value `v` from `qs[128]`.
fn q4_k_nibble(qs: &[u8], v: usize) -> i32 {
    let (c, hi, l) = (v / 64, (v % 64) / 32, v % 32);
    i32::from(if hi == 1 {
        qs[32 * c + l] >> 4
    } else {
        qs[32 * c + l] & 0xF
    })
}

/// Q4_K weights · Q8_K activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q4_k_q8_k(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((144, 292), w, acts, act_stride, out, |w, a| {
        let values: [i32; QK_K] = std::array::from_fn(|v| q4_k_nibble(&w[16..144], v));
        q45_k_sum(w, a, &values)
    });
}

/// Q5_K weights · Q8_K activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q5_k_q8_k(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((176, 292), w, acts, act_stride, out, |w, a| {
        let (qh, qs) = (&w[16..48], &w[48..176]);
        let values: [i32; QK_K] = std::array::from_fn(|v| {
            let high = if qh[v % 32] & (1 << (v / 32)) != 0 {
                16
            } else {
                0
            };
            q4_k_nibble(qs, v) + high
        });
        q45_k_sum(w, a, &values)
    });
}

/// Value `v < 256` of a Q6_K super-block `w` as stored, `0..64` (the weight is `value − 32`):
/// its low nibble from `ql`, its high 2 bits from `qh`.
pub fn q6_k_value(w: &[u8], v: usize) -> u8 {
    let (ql, qh) = (&w[..128], &w[128..192]);
    let (h, g, l) = (v / 128, (v % 128) / 32, v % 32);
    let low_byte = ql[64 * h + l + 32 * (g % 2)];
    let low = if g < 2 { low_byte & 0xF } else { low_byte >> 4 };
    let high = (qh[32 * h + l] >> (2 * g)) & 3;
    low | (high << 4)
}

/// Q6_K weights · Q8_K activations (see [`crate::kernels::DotFn`]).
pub fn vec_dot_q6_k_q8_k(w: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    dot_rows((210, 292), w, acts, act_stride, out, |w, a| {
        let sc = &w[192..208];
        let values: [i32; QK_K] = std::array::from_fn(|v| i32::from(q6_k_value(w, v)) - 32);
        let isum = scaled_sum(&values, a, 16, |j| i32::from(sc[j] as i8));
        f16_at(w, 208) * f32_at(a, 0) * isum as f32
    });
}

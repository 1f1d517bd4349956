//! Scalar kernels for 8-row interleaved packed Q4_0 / Q4_1 / Q5_0 / Q8_0 / Q4_K / Q6_K weights
//! (layout: see `crate::packed`): each output is the ggml block formula of `legacy.rs` /
//! `kquants.rs`, summed in block order.

use super::{f16_at, f32_at};
use crate::kernels::ActFormat;

/// Checks a [`PackedFn`](crate::kernels::PackedFn) call whose activation rows are
/// `format`'s packed rows ([`ActFormat::packed_row_bytes`]); returns the blocks per row.
pub(crate) fn check_packed_args(
    (groups, n_groups, packed_block): (&[u8], usize, usize),
    (acts, act_stride, format): (&[u8], usize, ActFormat),
    out: &[f32],
) -> usize {
    // Checked products: a count so large that they wrap must fail, not pass as a small one
    // and send a SIMD kernel past the buffers.
    let group_bytes = n_groups.checked_mul(packed_block).filter(|&b| b > 0);
    let Some(group_bytes) = group_bytes.filter(|&b| groups.len().is_multiple_of(b)) else {
        panic!(
            "{} packed bytes are not {n_groups} groups of whole {packed_block}-byte blocks",
            groups.len()
        );
    };
    let per_act = n_groups.checked_mul(8);
    let Some(per_act) = per_act.filter(|&p| !out.is_empty() && out.len().is_multiple_of(p)) else {
        panic!(
            "{} outputs is not 8 per group ({n_groups}) and activation row",
            out.len()
        );
    };
    let nb = groups.len() / group_bytes;
    let act_row = format.packed_row_bytes(nb * format.block_len());
    crate::kernels::check_act_rows(acts, out.len() / per_act, act_stride, act_row);
    nb
}

/// Every output of a packed kernel call: `out[8 · n_groups · r + 8g + i]` (activation row
/// `r`, group `g`, weight row `i`) is `Σ_b block(blk_gb, a_rb, i)` in block order, `blk_gb`
/// being packed block `b` of group `g` (`packed_block` bytes) and `a_rb` block `b` of
/// activation row `r` (`format`'s blocks).
fn packed_outputs(
    (groups, n_groups, packed_block): (&[u8], usize, usize),
    (acts, act_stride, format): (&[u8], usize, ActFormat),
    out: &mut [f32],
    block: impl Fn(&[u8], &[u8], usize) -> f32,
) {
    let nb = check_packed_args(
        (groups, n_groups, packed_block),
        (acts, act_stride, format),
        out,
    );
    let act_block = format.block_bytes();
    for (r, row) in out.chunks_exact_mut(8 * n_groups).enumerate() {
        for (g, o) in row.chunks_exact_mut(8).enumerate() {
            let group = &groups[g * nb * packed_block..(g + 1) * nb * packed_block];
            for (i, res) in o.iter_mut().enumerate() {
                let mut sum = 0.0f32;
                for b in 0..nb {
                    let blk = &group[b * packed_block..(b + 1) * packed_block];
                    let a = &acts[r * act_stride + b * act_block..][..act_block];
                    sum += block(blk, a, i);
                }
                *res = sum;
            }
        }
    }
}

/// Value `v < 32` of row `i` in a packed block whose nibble vectors start at `qs`.
fn value(qs: &[u8], i: usize, v: usize) -> i32 {
    let (k, j, high) = ((v % 16) / 4, v % 4, v >= 16);
    let byte = qs[32 * k + 4 * i + j];
    i32::from(if high { byte >> 4 } else { byte & 0x0F })
}

/// One kernel: a [`PackedFn`](crate::kernels::PackedFn) over `packed_block`-byte blocks and
/// activation rows of `format`, whose per-block term for weight row `i` is `block(blk, a, i)`.
macro_rules! packed_kernel {
    ($(#[$doc:meta])* $name:ident, $packed_block:expr, $format:expr, $block:expr) => {
        $(#[$doc])*
        pub fn $name(
            groups: &[u8],
            n_groups: usize,
            acts: &[u8],
            act_stride: usize,
            out: &mut [f32],
        ) {
            packed_outputs(
                (groups, n_groups, $packed_block),
                (acts, act_stride, $format),
                out,
                $block,
            );
        }
    };
}

/// Q4_0 / Q4_1 block term: unsigned nibbles; Q4_1 adds `m·s`, Q4_0 subtracts 8.
fn q4_block(q4_1: bool, blk: &[u8], a: &[u8], i: usize) -> f32 {
    let sb = if q4_1 { 4 } else { 2 };
    let qs = &blk[8 * sb..];
    let sumi: i32 = (0..32)
        .map(|v| {
            let w = value(qs, i, v) - if q4_1 { 0 } else { 8 };
            w * i32::from(a[sb + v] as i8)
        })
        .sum();
    let d = f16_at(blk, 2 * i) * f16_at(a, 0);
    if q4_1 {
        d * sumi as f32 + f16_at(blk, 16 + 2 * i) * f16_at(a, 2)
    } else {
        sumi as f32 * d
    }
}

/// Q5_0 block term: value `v` of row `i` is its 5-bit `u` (low bits of one of the 5 vectors,
/// or gathered from their spare bits; layout in `crate::packed`) minus 16.
fn q5_0_block(blk: &[u8], a: &[u8], i: usize) -> f32 {
    let sumi: i32 = (0..32)
        .map(|v| {
            let (k, j, h) = ((v % 16) / 4, v % 4, v / 16);
            let b = |m: usize| blk[16 + 32 * m + 4 * i + j];
            let u = match 2 * k + h {
                m @ 0..=4 => b(m) & 0x1F,
                5 => (b(0) >> 5) | (((b(1) >> 5) & 3) << 3),
                6 => (b(2) >> 5) | (((b(3) >> 5) & 3) << 3),
                _ => (b(4) >> 5) | ((b(1) >> 7) << 3) | ((b(3) >> 7) << 4),
            };
            i32::from(u) - 16
        })
        .zip(&a[2..])
        .map(|(w, &q)| w * i32::from(q as i8))
        .sum();
    sumi as f32 * (f16_at(blk, 2 * i) * f16_at(a, 0))
}

/// Q8_0 block term.
fn q8_0_block(blk: &[u8], a: &[u8], i: usize) -> f32 {
    let sumi: i32 = (0..32)
        .map(|v| i32::from(blk[16 + 32 * (v / 4) + 4 * i + v % 4] as i8))
        .zip(&a[2..])
        .map(|(w, &q)| w * i32::from(q as i8))
        .sum();
    sumi as f32 * (f16_at(blk, 2 * i) * f16_at(a, 0))
}

/// Q4_K super-block term: ggml's formula (`q45_k_sum` of `kquants.rs`) with the scales and
/// mins read from the unpacked bytes.
fn q4_k_block(blk: &[u8], a: &[u8], i: usize) -> f32 {
    let bsum = |k: usize| i32::from(i16::from_le_bytes([a[260 + 2 * k], a[261 + 2 * k]]));
    let (mut isum, mut msum) = (0i32, 0i32);
    for j in 0..8 {
        let (c, high) = (j / 2, j % 2 == 1);
        let s: i32 = (0..32)
            .map(|l| {
                let byte = blk[160 + 32 * (8 * c + l / 4) + 4 * i + l % 4];
                let q = if high { byte >> 4 } else { byte & 0x0F };
                i32::from(q) * i32::from(a[4 + 32 * j + l] as i8)
            })
            .sum();
        isum += i32::from(blk[32 + 8 * j + i]) * s;
        msum += i32::from(blk[96 + 8 * j + i]) * (bsum(2 * j) + bsum(2 * j + 1));
    }
    let yd = f32_at(a, 0);
    yd * f16_at(blk, 2 * i) * isum as f32 - yd * f16_at(blk, 16 + 2 * i) * msum as f32
}

/// Value `v < 256` (`u = q + 32`, `0..64`) of row `i` in a packed Q6_K block.
fn q6_k_packed_value(blk: &[u8], i: usize, v: usize) -> i32 {
    let (j, k, l) = (v / 16, (v % 16) / 4, v % 4);
    let byte = |k: usize| blk[144 + 96 * j + 32 * k + 4 * i + l];
    i32::from(if k < 3 {
        byte(k) & 0x3F
    } else {
        (byte(0) >> 6) << 4 | (byte(1) >> 6) << 2 | byte(2) >> 6
    })
}

/// Q6_K super-block term: ggml's formula (`vec_dot_q6_k_q8_k` of `kquants.rs`) with the
/// values and scales read from the packed layout.
fn q6_k_block(blk: &[u8], a: &[u8], i: usize) -> f32 {
    let isum: i32 = (0..16)
        .map(|j| {
            let s: i32 = (16 * j..16 * j + 16)
                .map(|v| (q6_k_packed_value(blk, i, v) - 32) * i32::from(a[4 + v] as i8))
                .sum();
            i32::from(blk[16 + 8 * j + i] as i8) * s
        })
        .sum();
    f16_at(blk, 2 * i) * f32_at(a, 0) * isum as f32
}

packed_kernel!(
    /// Packed Q4_0 weights · Q8_0 activations (see [`crate::kernels::PackedFn`]).
    packed8_q4_0_q8_0, 144, ActFormat::Q8_0, |blk, a, i| q4_block(false, blk, a, i)
);
packed_kernel!(
    /// Packed Q4_1 weights · Q8_1 activations (see [`crate::kernels::PackedFn`]).
    packed8_q4_1_q8_1, 160, ActFormat::Q8_1, |blk, a, i| q4_block(true, blk, a, i)
);
packed_kernel!(
    /// Packed Q5_0 weights · Q8_0 activations (see [`crate::kernels::PackedFn`]).
    packed8_q5_0_q8_0, 176, ActFormat::Q8_0, q5_0_block
);
packed_kernel!(
    /// Packed Q8_0 weights · Q8_0 activations (see [`crate::kernels::PackedFn`]).
    packed8_q8_0_q8_0, 272, ActFormat::Q8_0, q8_0_block
);
packed_kernel!(
    /// Packed Q4_K weights · Q8_K activations (see [`crate::kernels::PackedFn`]).
    packed8_q4_k_q8_k, 1184, ActFormat::Q8K, q4_k_block
);
packed_kernel!(
    /// Packed Q6_K weights · Q8_K activations (see [`crate::kernels::PackedFn`]).
    packed8_q6_k_q8_k, 1680, ActFormat::Q8K, q6_k_block
);

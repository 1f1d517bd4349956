//! Scalar kernels for 8-row interleaved packed Q4_0 / Q4_1 weights (layout: see
//! `crate::packed`): each output is the ggml block formula of `legacy.rs`, summed in block order.

use super::f16_at;

/// Checks a [`PackedFn`](crate::kernels::PackedFn) call; returns the blocks per row.
pub(crate) fn check_packed_args(
    group: &[u8],
    packed_block: usize,
    acts: &[u8],
    act_stride: usize,
    out: &[f32],
    act_block: usize,
) -> usize {
    assert!(
        group.len().is_multiple_of(packed_block),
        "packed group of {} bytes is not whole blocks",
        group.len()
    );
    assert!(
        !out.is_empty() && out.len().is_multiple_of(8),
        "{} outputs is not 8 per activation row",
        out.len()
    );
    let nb = group.len() / packed_block;
    let (n_acts, act_row) = (out.len() / 8, nb * act_block);
    assert!(
        n_acts == 1 || act_stride >= act_row,
        "stride {act_stride} < row {act_row}"
    );
    let need = (n_acts - 1) * act_stride + act_row;
    assert!(
        acts.len() >= need,
        "activations of {} bytes, need {need}",
        acts.len()
    );
    nb
}

/// Value `v < 32` of row `i` in a packed block whose nibble vectors start at `qs`.
fn value(qs: &[u8], i: usize, v: usize) -> i32 {
    let (k, j, high) = ((v % 16) / 4, v % 4, v >= 16);
    let byte = qs[32 * k + 4 * i + j];
    i32::from(if high { byte >> 4 } else { byte & 0x0F })
}

/// Shared body: `unsigned` formats (Q4_1) add `m·s`, signed ones (Q4_0) subtract 8.
fn packed_dot(q4_1: bool, group: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    let (pb, ab, sb) = if q4_1 { (160, 36, 4) } else { (144, 34, 2) };
    let nb = check_packed_args(group, pb, acts, act_stride, out, ab);
    for (r, o) in out.chunks_exact_mut(8).enumerate() {
        for (i, res) in o.iter_mut().enumerate() {
            let mut sum = 0.0f32;
            for b in 0..nb {
                let blk = &group[b * pb..(b + 1) * pb];
                let a = &acts[r * act_stride + b * ab..][..ab];
                let qs = &blk[8 * sb..];
                let sumi: i32 = (0..32)
                    .map(|v| {
                        let w = value(qs, i, v) - if q4_1 { 0 } else { 8 };
                        w * i32::from(a[sb + v] as i8)
                    })
                    .sum();
                let d = f16_at(blk, 2 * i) * f16_at(a, 0);
                sum += if q4_1 {
                    d * sumi as f32 + f16_at(blk, 16 + 2 * i) * f16_at(a, 2)
                } else {
                    sumi as f32 * d
                };
            }
            *res = sum;
        }
    }
}

/// Packed Q4_0 weights · Q8_0 activations (see [`crate::kernels::PackedFn`]).
pub fn packed8_q4_0_q8_0(group: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    packed_dot(false, group, acts, act_stride, out);
}

/// Packed Q4_1 weights · Q8_1 activations (see [`crate::kernels::PackedFn`]).
pub fn packed8_q4_1_q8_1(group: &[u8], acts: &[u8], act_stride: usize, out: &mut [f32]) {
    packed_dot(true, group, acts, act_stride, out);
}

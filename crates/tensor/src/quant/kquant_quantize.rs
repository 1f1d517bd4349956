//! The K-quant reference quantizers, ported from ggml's `quantize_row_q{2,3,4,5,6,8}_K_ref`
//! (llama.cpp `ggml/src/ggml-quants.c`): what `llama-quantize` runs without an importance
//! matrix. Block layouts are documented in `kquant.rs`.
//!
//! Each super-block is fitted in two levels: a scale search per sub-block
//! (`kquant_search.rs`), then the sub-block scales are themselves quantized (4, 6 or 8 bits)
//! against one f16 super-scale, and finally every value is re-quantized against the scale it
//! will actually be decoded with. Integer stores truncate exactly as C's conversions do.

use super::kquant::{scale_min_k4, scale_q3_k};
use super::kquant_search::{
    GROUP_MAX_EPS, Qkx2Grid, make_q3_quants, make_qkx2_quants, make_qx_quants, nearest_int,
};
use super::{put_f16, round_f16};

/// Values per super-block.
const QK_K: usize = crate::dtype::QK_K;

/// Packs 256 2-bit quants the Q2_K/Q3_K way: `qs[32h + l]` holds values `128h + l + 32s`
/// at bits `2s`.
fn pack_two_bits(l: &[u8; QK_K], qs: &mut [u8]) {
    for h in 0..2 {
        for i in 0..32 {
            let j = 128 * h + i;
            qs[32 * h + i] = l[j] | (l[j + 32] << 2) | (l[j + 64] << 4) | (l[j + 96] << 6);
        }
    }
}

/// Largest value of `v` above zero (0 when none is), as ggml's `max_scale`/`max_min` loops.
fn positive_max(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &s| if s > m { s } else { m })
}

/// f32 to Q2_K (ggml `quantize_row_q2_K_ref`).
pub(super) fn quantize_q2_k(src: &[f32], dst: &mut [u8]) {
    let grid = Qkx2Grid {
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(84)) {
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins) = ([0.0f32; 16], [0.0f32; 16]);
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let mut weights = [0.0f32; 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(3, xs, &weights, ls, &grid);
        }
        let (max_scale, max_min) = (positive_max(&scales), positive_max(&mins));
        let mut packed = [0u8; 16];
        let mut d = 0.0f32;
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for (p, &s) in packed.iter_mut().zip(&scales) {
                *p = nearest_int(iscale * s) as u8;
            }
            d = max_scale / 15.0;
        }
        let mut dmin = 0.0f32;
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for (p, &m) in packed.iter_mut().zip(&mins) {
                *p |= (nearest_int(iscale * m) << 4) as u8;
            }
            dmin = max_min / 15.0;
        }
        let (d, dmin) = (round_f16(d), round_f16(dmin));
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let dl = d * f32::from(packed[j] & 0x0f);
            if dl == 0.0 {
                continue;
            }
            let ml = dmin * f32::from(packed[j] >> 4);
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = nearest_int((v + ml) / dl).clamp(0, 3) as u8;
            }
        }
        b[0..16].copy_from_slice(&packed);
        pack_two_bits(&l, &mut b[16..80]);
        put_f16(b, 80, d);
        put_f16(b, 82, dmin);
    }
}

/// Packs 16 6-bit Q3_K scales (already offset by +32) into `scales[12]`.
fn pack_q3_scales(ls: &[i8; 16], out: &mut [u8]) {
    out.fill(0);
    for (j, &l) in ls.iter().enumerate() {
        let l = l as u8;
        if j < 8 {
            out[j] = l & 0x0f;
        } else {
            out[j - 8] |= (l & 0x0f) << 4;
        }
        out[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
    }
}

/// f32 to Q3_K (ggml `quantize_row_q3_K_ref`).
pub(super) fn quantize_q3_k(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(110)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            scales[j] = make_q3_quants(4, xs, ls);
        }
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for &s in &scales {
            if s.abs() > amax {
                amax = s.abs();
                max_scale = s;
            }
        }
        let mut packed = [0u8; 12];
        let mut d = 0.0f32;
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            let mut ls = [0i8; 16];
            for (q, &s) in ls.iter_mut().zip(&scales) {
                *q = (nearest_int(iscale * s) as i8).clamp(-32, 31) + 32;
            }
            pack_q3_scales(&ls, &mut packed);
            d = 1.0 / iscale;
        }
        let d = round_f16(d);
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let dl = d * f32::from(scale_q3_k(j, &packed));
            if dl == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = nearest_int(v / dl).clamp(-4, 3) as i8 + 4;
            }
        }
        let (hmask, rest) = b.split_at_mut(32);
        hmask.fill(0);
        let mut low = [0u8; QK_K];
        for (j, (&q, lo)) in l.iter().zip(low.iter_mut()).enumerate() {
            let mut q = q as u8;
            if q > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                q -= 4;
            }
            *lo = q;
        }
        pack_two_bits(&low, &mut rest[0..64]);
        rest[64..76].copy_from_slice(&packed);
        put_f16(b, 108, d);
    }
}

/// The first level of Q4_K/Q5_K: per 32-value sub-block, weights `rms + |x|` and an affine
/// fit. Returns the sub-block scales and mins; writes first-guess quants into `l`.
fn fit_sub_blocks(
    x: &[f32],
    nmax: i32,
    grid: &Qkx2Grid,
    l: &mut [u8; QK_K],
) -> ([f32; 8], [f32; 8]) {
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let sum_x2 = xs.iter().fold(0.0f32, |s, &v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0.0f32; 32];
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(nmax, xs, &weights, ls, grid);
    }
    (scales, mins)
}

/// The second level of Q4_K/Q5_K: 6-bit scales and mins packed into `b[4..16]`, the f16
/// super-scales into `b[0..4]`; then every value re-quantized to `0..=nmax` into `l`.
fn pack_q45_k(
    x: &[f32],
    nmax: i32,
    scales: &[f32; 8],
    mins: &[f32; 8],
    b: &mut [u8],
    l: &mut [u8; QK_K],
) {
    let (max_scale, max_min) = (positive_max(scales), positive_max(mins));
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let s = &mut b[4..16];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            s[j - 4] |= (ls >> 4) << 6;
            s[j] |= (lm >> 4) << 6;
        }
    }
    put_f16(b, 0, max_scale / 63.0);
    put_f16(b, 2, max_min / 63.0);
    let (d, dmin) = (round_f16(max_scale / 63.0), round_f16(max_min / 63.0));
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        let dl = d * f32::from(sc);
        if dl == 0.0 {
            continue;
        }
        let ml = dmin * f32::from(m);
        for (q, &v) in ls.iter_mut().zip(xs) {
            *q = nearest_int((v + ml) / dl).clamp(0, nmax) as u8;
        }
    }
}

/// f32 to Q4_K (ggml `quantize_row_q4_K_ref`).
pub(super) fn quantize_q4_k(src: &[f32], dst: &mut [u8]) {
    let grid = Qkx2Grid {
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(144)) {
        let mut l = [0u8; QK_K];
        let (scales, mins) = fit_sub_blocks(x, 15, &grid, &mut l);
        b[4..16].fill(0);
        pack_q45_k(x, 15, &scales, &mins, b, &mut l);
        let qs = &mut b[16..144];
        for c in 0..4 {
            for i in 0..32 {
                qs[32 * c + i] = l[64 * c + i] | (l[64 * c + i + 32] << 4);
            }
        }
    }
}

/// f32 to Q5_K (ggml `quantize_row_q5_K_ref`).
pub(super) fn quantize_q5_k(src: &[f32], dst: &mut [u8]) {
    let grid = Qkx2Grid {
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(176)) {
        let mut l = [0u8; QK_K];
        let (scales, mins) = fit_sub_blocks(x, 31, &grid, &mut l);
        b[4..16].fill(0);
        pack_q45_k(x, 31, &scales, &mins, b, &mut l);
        let (qh, qs) = b[16..176].split_at_mut(32);
        qh.fill(0);
        for c in 0..4 {
            for i in 0..32 {
                let (l1, l2) = (l[64 * c + i], l[64 * c + i + 32]);
                qh[i] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
                qs[32 * c + i] = (l1 & 0x0f) | ((l2 & 0x0f) << 4);
            }
        }
    }
}

/// f32 to Q6_K (ggml `quantize_row_q6_K_ref`).
pub(super) fn quantize_q6_k(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(210)) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; 16];
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            scales[j] = make_qx_quants(32, xs, ls);
        }
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for &s in &scales {
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = s;
            }
        }
        b.fill(0);
        if max_abs_scale < GROUP_MAX_EPS {
            continue;
        }
        let iscale = -128.0 / max_scale;
        put_f16(b, 208, 1.0 / iscale);
        let d = f16_scale(b);
        for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let sc = nearest_int(iscale * scales[j]).min(127) as i8;
            b[192 + j] = sc as u8;
            let dl = d * f32::from(sc);
            if dl == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = nearest_int(v / dl).clamp(-32, 31) as i8 + 32;
            }
        }
        let (ql, qh) = b[0..192].split_at_mut(128);
        for h in 0..2 {
            for i in 0..32 {
                let q = |k: usize| l[128 * h + i + 32 * k] as u8;
                ql[64 * h + i] = (q(0) & 0x0f) | ((q(2) & 0x0f) << 4);
                ql[64 * h + i + 32] = (q(1) & 0x0f) | ((q(3) & 0x0f) << 4);
                qh[32 * h + i] =
                    (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
            }
        }
    }
}

/// The f16 super-scale just written at Q6_K's offset 208, as f32.
fn f16_scale(b: &[u8]) -> f32 {
    super::f16_at(b, 208)
}

/// f32 to Q8_K (ggml `quantize_row_q8_K_ref`): f32 scale, `q = min(127, nearest(-127·x/max))`.
pub(super) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(292)) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        b.fill(0);
        if amax == 0.0 {
            continue;
        }
        let iscale = -127.0 / max;
        let mut qs = [0i8; QK_K];
        for (q, &v) in qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        b[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
        for (o, &q) in b[4..260].iter_mut().zip(&qs) {
            *o = q as u8;
        }
        for (g, sums) in qs.chunks_exact(16).zip(b[260..292].chunks_exact_mut(2)) {
            let sum: i32 = g.iter().map(|&q| i32::from(q)).sum();
            sums.copy_from_slice(&(sum as i16).to_le_bytes());
        }
    }
}

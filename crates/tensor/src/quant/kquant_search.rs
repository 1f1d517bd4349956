//! The scale searches behind the K-quant reference quantizers, ported from ggml
//! (`ggml/src/ggml-quants.c`: `nearest_int`, `make_qx_quants`, `make_q3_quants`,
//! `make_qkx2_quants`).
//!
//! Every expression keeps ggml's evaluation order and f32 precision (`w*x*l` is `(w*x)*l`,
//! integer operands converted to f32 where C converts them), so the chosen scales and quants
//! match ggml's reference bit for bit on builds without FMA contraction.

/// Values at or below this magnitude count as an all-zero group (ggml `GROUP_MAX_EPS`).
pub(super) const GROUP_MAX_EPS: f32 = 1e-15;

/// Round to nearest, ties to even, by ggml's trick of adding 1.5 · 2^23 and reading the
/// mantissa. Valid for |v| ≤ 4194303; like ggml, larger inputs give a wrong but deterministic
/// integer that callers clamp.
pub(super) fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0f32).to_bits();
    (bits & 0x007f_ffff) as i32 - 0x0040_0000
}

/// The value of largest magnitude (first on ties) and that magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

/// Weighted sums `(Σ w·x·l, Σ w·l·l)` for quants `l = clamp(nearest(iscale·x), -nmax, nmax-1)`
/// with weights `w = x²` (ggml `rmse_type == 1` without importance weights).
fn weighted_sums(
    x: &[f32],
    iscale: f32,
    nmax: i32,
    mut store: impl FnMut(usize, i32),
) -> (f32, f32) {
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (i, &v) in x.iter().enumerate() {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        store(i, l);
        let w = v * v;
        let lf = l as f32;
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    (sumlx, suml2)
}

/// ggml `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: a symmetric scale for `x`
/// minimising the x²-weighted squared error over 19 candidate scales. Writes quants
/// `l + nmax` (in `0..2·nmax`) into `out` and returns the scale (`x ≈ scale · (L − nmax)`).
pub(super) fn make_qx_quants(nmax: i32, x: &[f32], out: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        out.fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = weighted_sums(x, iscale, nmax, |i, l| out[i] = (l + nmax) as i8);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1f32 * is as f32) / max;
        (sumlx, suml2) = weighted_sums(x, iscale, nmax, |_, _| {});
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            weighted_sums(x, iscale, nmax, |i, l| out[i] = (l + nmax) as i8);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml `make_q3_quants(n, nmax, x, L, do_rmse = true)`: a symmetric scale refined by up to
/// five passes of coordinate descent on the x²-weighted error. Writes `l + nmax` into `out`.
pub(super) fn make_q3_quants(nmax: i32, x: &[f32], out: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = weighted_sums(x, iscale, nmax, |i, l| out[i] = l as i8);
    for _ in 0..5 {
        let mut n_changed = 0;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let li = f32::from(out[i]);
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(out[i]) {
                    let nl = new_l as f32;
                    slx += w * v * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        out[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for l in out.iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Search grid of [`make_qkx2_quants`]: candidate `iscale = (rmin + rdelta·is + nmax) / range`
/// for `is` in `0..=nstep`; `use_mad` scores by absolute instead of squared error.
pub(super) struct Qkx2Grid {
    /// Offset of the first candidate.
    pub rmin: f32,
    /// Step between candidates.
    pub rdelta: f32,
    /// Number of steps.
    pub nstep: i32,
    /// Score by weighted absolute error (Q2_K) instead of squared error.
    pub use_mad: bool,
}

/// Weighted error of `x ≈ scale · l + min`.
fn affine_error(x: &[f32], w: &[f32], l: &[u8], scale: f32, min: f32, use_mad: bool) -> f32 {
    let mut err = 0.0f32;
    for ((&v, &w), &l) in x.iter().zip(w).zip(l) {
        let diff = scale * f32::from(l) + min - v;
        err += w * if use_mad { diff.abs() } else { diff * diff };
    }
    err
}

/// The data of one [`make_qkx2_quants`] fit, with the weighted sums every candidate reuses.
struct AffineFit<'a> {
    x: &'a [f32],
    weights: &'a [f32],
    nmax: i32,
    use_mad: bool,
    sum_w: f32,
    sum_x: f32,
}

impl AffineFit<'_> {
    /// One candidate: quantize `x - min` with `iscale` into `aux`, then refit scale and min by
    /// weighted least squares (min clamped to ≤ 0). `(scale, min, error)`, or `None` when the
    /// normal equations are degenerate.
    fn candidate(&self, iscale: f32, min: f32, aux: &mut [u8]) -> Option<(f32, f32, f32)> {
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((a, &v), &w) in aux.iter_mut().zip(self.x).zip(self.weights) {
            let l = nearest_int(iscale * (v - min)).clamp(0, self.nmax);
            *a = l as u8;
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * v;
        }
        let det = self.sum_w * sum_l2 - sum_l * sum_l;
        if det <= 0.0 {
            return None;
        }
        let mut this_scale = (self.sum_w * sum_xl - self.sum_x * sum_l) / det;
        let mut this_min = (sum_l2 * self.sum_x - sum_l * sum_xl) / det;
        if this_min > 0.0 {
            this_min = 0.0;
            this_scale = sum_xl / sum_l2;
        }
        let error = affine_error(
            self.x,
            self.weights,
            aux,
            this_scale,
            this_min,
            self.use_mad,
        );
        Some((this_scale, this_min, error))
    }
}

/// ggml `make_qkx2_quants`: an affine fit `x ≈ scale · L + min` (with `min ≤ 0`) to the
/// weighted data, trying `grid.nstep + 1` scales with a least-squares refit of each. Writes
/// quants in `0..=nmax` to `out`; returns `(scale, -min)`.
pub(super) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    out: &mut [u8],
    grid: &Qkx2Grid,
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        out.fill(0);
        return (0.0, -min);
    }
    let iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    for (l, &v) in out.iter_mut().zip(x) {
        *l = nearest_int(iscale * (v - min)).clamp(0, nmax) as u8;
    }
    let mut best_error = affine_error(x, weights, out, scale, min, grid.use_mad);
    if grid.nstep < 1 {
        return (scale, -min);
    }
    let fit = AffineFit {
        x,
        weights,
        nmax,
        use_mad: grid.use_mad,
        sum_w,
        sum_x,
    };
    let mut aux = [0u8; 32];
    let aux = &mut aux[..x.len()];
    for is in 0..=grid.nstep {
        let iscale = (grid.rmin + grid.rdelta * is as f32 + nmax as f32) / (max - min);
        if let Some((this_scale, this_min, error)) = fit.candidate(iscale, min, aux)
            && error < best_error
        {
            out.copy_from_slice(aux);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    (scale, -min)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nearest_int` rounds half to even and handles negatives, like `rintf`.
    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (v, want) in [
            (0.5f32, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
            (-7.7, -8),
        ] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
    }

    /// An all-zero group gets scale 0 and zero quants from every search.
    #[test]
    fn zero_groups_get_zero_scale() {
        let x = [0.0f32; 16];
        let mut l = [5i8; 16];
        assert_eq!(make_qx_quants(32, &x, &mut l), 0.0);
        assert_eq!(l, [0; 16]);
        let mut l = [5i8; 16];
        assert_eq!(make_q3_quants(4, &x, &mut l), 0.0);
        assert_eq!(l, [0; 16]);
        let mut l = [5u8; 16];
        let grid = Qkx2Grid {
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: true,
        };
        assert_eq!(
            make_qkx2_quants(3, &x, &[0.0; 16], &mut l, &grid),
            (0.0, -0.0)
        );
        assert_eq!(l, [0; 16]);
    }
}

//! RMSNorm (Zhang & Sennrich 2019, <https://arxiv.org/abs/1910.07467>):
//! `y = x / sqrt(mean(x²) + eps) * w`, row by row.
//!
//! Gemma trap: Hugging Face's `Gemma3RMSNorm` multiplies by `(1 + w)` and stores `w`
//! centred on zero, while llama.cpp's converter adds the 1 before writing GGUF. The offset
//! is folded into the weight once at load ([`RmsNorm::new`]'s `offset`), so the forward
//! pass is the same for every family and source.

use skiff_backend_cpu::{Cpu, ops};

/// An RMSNorm with its (offset-folded) weight.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    weight: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    /// A norm over rows of `weight.len()` values, scaling by `offset + weight[i]`.
    pub fn new(mut weight: Vec<f32>, offset: f32, eps: f32) -> RmsNorm {
        if offset != 0.0 {
            weight.iter_mut().for_each(|w| *w += offset);
        }
        RmsNorm { weight, eps }
    }

    /// Width of a normalized row.
    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// Normalizes every row of `x` (`[n_rows, dim]`, or `[n_rows * n_heads, head_dim]` for
    /// per-head QK-norm) in place, with the backend's kernel.
    pub fn apply(&self, cpu: &Cpu, x: &mut [f32]) {
        cpu.rms_norm(x, &self.weight, self.eps);
    }

    /// `out ← norm(x)` row by row (`x` and `out` both `[n_rows, dim]`).
    pub fn apply_to(&self, cpu: &Cpu, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        cpu.rms_norm(out, &self.weight, self.eps);
    }

    /// The residual add fused with this norm: `x ← x + delta`, then `out ← norm(x)`.
    pub fn add_apply(&self, cpu: &Cpu, x: &mut [f32], delta: &[f32], out: &mut [f32]) {
        cpu.add_rms_norm(x, delta, &self.weight, self.eps, out);
    }

    /// Normalizes every row of `x` in place with the scalar reference kernel.
    pub fn forward_inplace(&self, x: &mut [f32]) {
        let dim = self.weight.len();
        debug_assert_eq!(x.len() % dim, 0, "rows of {dim}");
        for row in x.chunks_exact_mut(dim) {
            ops::scalar::rms_norm(row, &self.weight, self.eps);
        }
    }

    /// Normalized copy of `x` (`[n_rows, dim]`), with the scalar reference kernel.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        self.forward_inplace(&mut y);
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of equal values normalizes to ±1 times the weight; the offset adds to it.
    #[test]
    fn constant_rows_normalize_to_weight() {
        let norm = RmsNorm::new(vec![0.5, 2.0, -1.0], 0.0, 0.0);
        let y = norm.forward(&[3.0, 3.0, 3.0, -2.0, -2.0, -2.0]);
        let want = [0.5, 2.0, -1.0, -0.5, -2.0, 1.0];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{y:?}");
        }
        let gemma = RmsNorm::new(vec![0.0, 1.0, -1.0], 1.0, 0.0);
        let y = gemma.forward(&[1.0, 1.0, 1.0]);
        assert_eq!(y, vec![1.0, 2.0, 0.0]);
    }

    /// Matches the formula on an uneven row, with eps.
    #[test]
    fn matches_formula_with_eps() {
        let x = [1.0f32, -2.0, 4.0, 0.5];
        let eps = 1e-2;
        let norm = RmsNorm::new(vec![1.0; 4], 0.0, eps);
        let ms = x.iter().map(|v| v * v).sum::<f32>() / 4.0;
        let y = norm.forward(&x);
        for (a, b) in y.iter().zip(x) {
            assert!((a - b / (ms + eps).sqrt()).abs() < 1e-6);
        }
    }

    /// The backend kernels (every ISA the host runs) agree with the scalar forward, and
    /// the fused add + norm updates the residual too.
    #[test]
    fn backend_kernels_match_scalar() {
        let norm = RmsNorm::new((0..9).map(|i| i as f32 * 0.25 - 1.0).collect(), 0.0, 1e-6);
        let x: Vec<f32> = (0..27).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let delta: Vec<f32> = (0..27).map(|i| ((i * 5) % 3) as f32).collect();
        for kernels in skiff_backend_cpu::Kernels::all_supported() {
            let cpu = Cpu::with_kernels(1, kernels);
            let want = norm.forward(&x);
            let mut got = vec![0.0; x.len()];
            norm.apply_to(&cpu, &x, &mut got);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{}: {got:?} vs {want:?}", cpu.isa());
            }
            let mut sum: Vec<f32> = x.iter().zip(&delta).map(|(a, b)| a + b).collect();
            let want = norm.forward(&sum);
            let mut residual = x.clone();
            norm.add_apply(&cpu, &mut residual, &delta, &mut got);
            assert_eq!(residual, sum, "{}", cpu.isa());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{}: {got:?} vs {want:?}", cpu.isa());
            }
            norm.apply(&cpu, &mut sum);
            assert_eq!(sum, got, "{}", cpu.isa());
        }
    }
}

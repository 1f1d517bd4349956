//! Rotary position embedding (Su et al. 2021, <https://arxiv.org/abs/2104.09864>).
//!
//! Pair `i` of a head (for `i < rot_dim / 2`) is rotated by the angle `pos * inv_freq[i]`,
//! `inv_freq[i] = theta^(-2i / rot_dim)`, adjusted by the scaling the model declares. Dims
//! from `rot_dim` to `head_dim` are left alone (partial rotation).
//!
//! Pairing trap (the bug everybody hits once): [`RopePairing::Neox`] rotates `(i, i +
//! rot_dim/2)` like transformers' `rotate_half`; [`RopePairing::Interleaved`] rotates
//! `(2i, 2i+1)`. llama.cpp's converter permutes the Q and K rows of `llama`-family models
//! so that their GGUF files need the interleaved form, while the same model's safetensors
//! need NeoX. The pairing comes from the spec, never from the architecture name.
//!
//! Every scaling reduces to a per-pair `inv_freq` and one magnitude factor `mscale`:
//! linear divides all frequencies by `factor`; Llama 3 (from `rope_freqs.weight` in GGUF
//! or the `Llama3` rule from Hugging Face) divides each by its own factor; YaRN blends
//! interpolated and extrapolated frequencies per pair and scales magnitudes by
//! `1 + 0.1 ln(factor)` (llama.cpp `ggml_rope_yarn_corr_dims` / `rope_yarn`, and
//! transformers `_compute_yarn_parameters`, which agree).

use std::f64::consts::PI;

use skiff_backend_cpu::Cpu;
use skiff_backend_cpu::ops::{self, RopeStyle};
use skiff_formats::{RopePairing, RopeScaling, RopeSpec};

use crate::error::{Error, Result};

/// A RoPE configuration with its frequencies precomputed.
#[derive(Clone, Debug)]
pub struct Rope {
    pairing: RopePairing,
    rot_dim: usize,
    head_dim: usize,
    /// `[rot_dim / 2]` angular frequency of each pair, scaling included.
    inv_freq: Vec<f64>,
    /// Magnitude factor applied to cos and sin (YaRN's attention factor; 1 otherwise).
    mscale: f64,
}

impl Rope {
    /// Precomputes the frequencies for heads of `head_dim` values. `freq_factors` is the
    /// GGUF `rope_freqs.weight` tensor (`[rot_dim / 2]`, Llama 3.1 scaling), if present.
    pub fn new(spec: &RopeSpec, head_dim: usize, freq_factors: Option<&[f32]>) -> Result<Rope> {
        let rot_dim = spec.rot_dim;
        if rot_dim == 0 || !rot_dim.is_multiple_of(2) || rot_dim > head_dim {
            return Err(Error::BadHParam {
                field: "rope.dimension_count",
                value: rot_dim.to_string(),
                reason: "must be even, non-zero and at most head_dim",
            });
        }
        if !(spec.theta.is_finite() && spec.theta > 0.0) {
            return Err(Error::BadHParam {
                field: "rope.freq_base",
                value: spec.theta.to_string(),
                reason: "must be finite and positive",
            });
        }
        let n_pairs = rot_dim / 2;
        let theta = f64::from(spec.theta);
        let mut inv_freq: Vec<f64> = (0..n_pairs)
            .map(|i| theta.powf(-2.0 * i as f64 / rot_dim as f64))
            .collect();
        let mut mscale = 1.0;
        match spec.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => {
                let factor = positive_factor(factor)?;
                inv_freq.iter_mut().for_each(|f| *f /= factor);
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_seq_len,
            } => {
                let factor = positive_factor(factor)?;
                let rule = Llama3Rule {
                    factor,
                    low: f64::from(low_freq_factor),
                    high: f64::from(high_freq_factor),
                    old_ctx: original_max_seq_len as f64,
                };
                inv_freq.iter_mut().for_each(|f| *f = rule.apply(*f));
            }
            RopeScaling::Yarn {
                factor,
                original_max_seq_len,
                beta_fast,
                beta_slow,
            } => {
                let factor = positive_factor(factor)?;
                let corr =
                    yarn_corr_dims(rot_dim, original_max_seq_len, theta, [beta_fast, beta_slow]);
                for (i, f) in inv_freq.iter_mut().enumerate() {
                    let y = (i as f64 - corr[0]) / (corr[1] - corr[0]).max(0.001);
                    let extrap_mix = 1.0 - y.clamp(0.0, 1.0);
                    *f *= (1.0 - extrap_mix) / factor + extrap_mix;
                }
                mscale = 1.0 + 0.1 * factor.ln();
            }
        }
        if let Some(factors) = freq_factors {
            if factors.len() != n_pairs {
                return Err(Error::BadHParam {
                    field: "rope_freqs.weight",
                    value: factors.len().to_string(),
                    reason: "must hold rot_dim / 2 factors",
                });
            }
            inv_freq
                .iter_mut()
                .zip(factors)
                .for_each(|(f, &ff)| *f /= f64::from(ff));
        }
        Ok(Rope {
            pairing: spec.pairing,
            rot_dim,
            head_dim,
            inv_freq,
            mscale,
        })
    }

    /// Pairs rotated per head (`rot_dim / 2`).
    pub fn n_pairs(&self) -> usize {
        self.rot_dim / 2
    }

    /// Fills `table` with the cosines and sines (times `mscale`) of every pair's angle at
    /// each of `positions`, computed in f64: `[positions.len(), rot_dim / 2]` each.
    pub fn fill_table(&self, positions: &[u32], table: &mut RopeTable) {
        let n_pairs = self.n_pairs();
        table.n_pairs = n_pairs;
        table.cos.clear();
        table.sin.clear();
        for &pos in positions {
            for &f in &self.inv_freq {
                let (sin, cos) = (f64::from(pos) * f).sin_cos();
                table.cos.push((cos * self.mscale) as f32);
                table.sin.push((sin * self.mscale) as f32);
            }
        }
    }

    /// Rotates every head of `x` (`[n_tokens, n_heads * head_dim]`) in place, token `t` by
    /// the angles of row `t` of `table` (filled by [`Rope::fill_table`] for this batch).
    pub fn apply_table(&self, cpu: &Cpu, x: &mut [f32], n_heads: usize, table: &RopeTable) {
        let row_len = n_heads * self.head_dim;
        debug_assert_eq!(x.len(), table.n_rows() * row_len);
        let style = self.style();
        for (t, row) in x.chunks_exact_mut(row_len).enumerate() {
            let (cos, sin) = table.row(t);
            cpu.rope(row, self.head_dim, cos, sin, style);
        }
    }

    /// Rotates every head of `x` (`[n_tokens, n_heads * head_dim]`) in place, token `t`
    /// by `positions[t]`, with the scalar reference kernel.
    pub fn apply(&self, x: &mut [f32], n_heads: usize, positions: &[u32]) {
        let row_len = n_heads * self.head_dim;
        debug_assert_eq!(x.len(), positions.len() * row_len);
        let mut table = RopeTable::default();
        self.fill_table(positions, &mut table);
        let style = self.style();
        for (t, row) in x.chunks_exact_mut(row_len).enumerate() {
            let (cos, sin) = table.row(t);
            for head in row.chunks_exact_mut(self.head_dim) {
                ops::scalar::rope(head, cos, sin, style);
            }
        }
    }

    fn style(&self) -> RopeStyle {
        match self.pairing {
            RopePairing::Interleaved => RopeStyle::Interleaved,
            RopePairing::Neox => RopeStyle::Neox,
        }
    }
}

/// Cosines and sines of one batch's positions: `[n_tokens, n_pairs]` each.
#[derive(Clone, Debug, Default)]
pub struct RopeTable {
    n_pairs: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTable {
    /// Token rows held.
    pub fn n_rows(&self) -> usize {
        self.cos.len().checked_div(self.n_pairs).unwrap_or(0)
    }

    /// Cosines and sines of token `t`.
    pub fn row(&self, t: usize) -> (&[f32], &[f32]) {
        let range = t * self.n_pairs..(t + 1) * self.n_pairs;
        (&self.cos[range.clone()], &self.sin[range])
    }

    /// Values allocated (both tables).
    pub(crate) fn capacity(&self) -> usize {
        self.cos.capacity() + self.sin.capacity()
    }
}

fn positive_factor(factor: f32) -> Result<f64> {
    if factor.is_finite() && factor > 0.0 {
        Ok(f64::from(factor))
    } else {
        Err(Error::BadHParam {
            field: "rope.scaling.factor",
            value: factor.to_string(),
            reason: "must be finite and positive",
        })
    }
}

/// Llama 3.1's frequency-dependent scaling (transformers `_compute_llama3_parameters`):
/// long wavelengths are divided by `factor`, short ones kept, the band between blended.
struct Llama3Rule {
    factor: f64,
    low: f64,
    high: f64,
    old_ctx: f64,
}

impl Llama3Rule {
    fn apply(&self, inv_freq: f64) -> f64 {
        let wavelen = 2.0 * PI / inv_freq;
        let (low_wavelen, high_wavelen) = (self.old_ctx / self.low, self.old_ctx / self.high);
        if wavelen < high_wavelen {
            inv_freq
        } else if wavelen > low_wavelen {
            inv_freq / self.factor
        } else {
            let smooth = (self.old_ctx / wavelen - self.low) / (self.high - self.low);
            (1.0 - smooth) * inv_freq / self.factor + smooth * inv_freq
        }
    }
}

/// YaRN's correction range in pair indices: pairs below `dims[0]` extrapolate, above
/// `dims[1]` interpolate (llama.cpp `ggml_rope_yarn_corr_dims`).
fn yarn_corr_dims(rot_dim: usize, n_ctx_orig: usize, theta: f64, betas: [f32; 2]) -> [f64; 2] {
    let corr_dim = |beta: f32| {
        rot_dim as f64 * (n_ctx_orig as f64 / (f64::from(beta) * 2.0 * PI)).ln()
            / (2.0 * theta.ln())
    };
    let start = corr_dim(betas[0]).floor().max(0.0);
    let end = corr_dim(betas[1]).ceil().min(rot_dim as f64 - 1.0);
    [start, end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pairing: RopePairing, rot_dim: usize, scaling: RopeScaling) -> RopeSpec {
        RopeSpec {
            theta: 100.0,
            rot_dim,
            pairing,
            scaling,
        }
    }

    /// Interleaved rotates (0,1),(2,3); NeoX rotates (0,2),(1,3); dims past rot_dim stay.
    #[test]
    fn pairings_rotate_the_right_dims() {
        let x0 = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        for pairing in [RopePairing::Interleaved, RopePairing::Neox] {
            let rope = Rope::new(&spec(pairing, 4, RopeScaling::None), 6, None).expect("valid");
            let mut x = x0;
            rope.apply(&mut x, 1, &[1]);
            let (f0, f1) = (1.0f64, 100f64.powf(-0.5));
            let rot = |a: f32, b: f32, f: f64| {
                let (c, s) = (f.cos() as f32, f.sin() as f32);
                (a * c - b * s, a * s + b * c)
            };
            let want = match pairing {
                RopePairing::Interleaved => {
                    let (a, b) = rot(1.0, 2.0, f0);
                    let (c, d) = rot(3.0, 4.0, f1);
                    [a, b, c, d, 5.0, 6.0]
                }
                RopePairing::Neox => {
                    let (a, c) = rot(1.0, 3.0, f0);
                    let (b, d) = rot(2.0, 4.0, f1);
                    [a, b, c, d, 5.0, 6.0]
                }
            };
            for (g, w) in x.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{pairing:?}: {x:?} vs {want:?}");
            }
        }
    }

    /// The backend kernels with a per-batch table rotate exactly as the scalar `apply`,
    /// for both pairings, partial rotation and several positions, on every ISA the host runs.
    #[test]
    fn table_path_matches_scalar_apply() {
        let positions = [0u32, 1, 7, 300];
        for pairing in [RopePairing::Interleaved, RopePairing::Neox] {
            let rope = Rope::new(&spec(pairing, 12, RopeScaling::None), 16, None).expect("valid");
            let x0: Vec<f32> = (0..positions.len() * 2 * 16)
                .map(|i| ((i * 13) % 17) as f32 * 0.5 - 4.0)
                .collect();
            let mut want = x0.clone();
            rope.apply(&mut want, 2, &positions);
            let mut table = RopeTable::default();
            rope.fill_table(&positions, &mut table);
            assert_eq!(table.n_rows(), positions.len());
            for kernels in skiff_backend_cpu::Kernels::all_supported() {
                let cpu = Cpu::with_kernels(1, kernels);
                let mut got = x0.clone();
                rope.apply_table(&cpu, &mut got, 2, &table);
                assert_eq!(got, want, "{pairing:?} {}", cpu.isa());
            }
        }
    }

    /// Position 0 is the identity; linear scaling by 4 at position 8 equals none at 2.
    #[test]
    fn linear_scaling_divides_positions() {
        let x0: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
        let plain =
            Rope::new(&spec(RopePairing::Neox, 8, RopeScaling::None), 8, None).expect("valid");
        let mut x = x0.clone();
        plain.apply(&mut x, 1, &[0]);
        assert_eq!(x, x0);
        let linear = Rope::new(
            &spec(RopePairing::Neox, 8, RopeScaling::Linear { factor: 4.0 }),
            8,
            None,
        )
        .expect("valid");
        let (mut a, mut b) = (x0.clone(), x0.clone());
        linear.apply(&mut a, 1, &[8]);
        plain.apply(&mut b, 1, &[2]);
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5);
        }
    }

    /// GGUF frequency factors divide each pair's frequency; the Llama 3 rule keeps high
    /// frequencies and divides the lowest by `factor`.
    #[test]
    fn per_pair_factors() {
        let base =
            Rope::new(&spec(RopePairing::Neox, 8, RopeScaling::None), 8, None).expect("valid");
        let ff = Rope::new(
            &spec(RopePairing::Neox, 8, RopeScaling::None),
            8,
            Some(&[1.0, 2.0, 4.0, 8.0]),
        )
        .expect("valid");
        for i in 0..4 {
            assert!((ff.inv_freq[i] * f64::from(1u32 << i) - base.inv_freq[i]).abs() < 1e-12);
        }
        let scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_seq_len: 64,
        };
        let l3 = Rope::new(&spec(RopePairing::Neox, 8, scaling), 8, None).expect("valid");
        assert_eq!(l3.inv_freq[0], base.inv_freq[0]);
        assert!((l3.inv_freq[3] * 8.0 - base.inv_freq[3]).abs() < 1e-12);
        assert!(matches!(
            Rope::new(
                &spec(RopePairing::Neox, 8, RopeScaling::None),
                8,
                Some(&[1.0])
            ),
            Err(Error::BadHParam {
                field: "rope_freqs.weight",
                ..
            })
        ));
    }

    /// YaRN keeps the fastest pairs, interpolates the slowest, and scales magnitudes.
    #[test]
    fn yarn_blends_and_scales() {
        let scaling = RopeScaling::Yarn {
            factor: 4.0,
            original_max_seq_len: 64,
            beta_fast: 32.0,
            beta_slow: 1.0,
        };
        let base =
            Rope::new(&spec(RopePairing::Neox, 16, RopeScaling::None), 16, None).expect("valid");
        let yarn = Rope::new(&spec(RopePairing::Neox, 16, scaling), 16, None).expect("valid");
        assert_eq!(yarn.inv_freq[0], base.inv_freq[0]);
        assert!((yarn.inv_freq[7] * 4.0 - base.inv_freq[7]).abs() < 1e-12);
        assert!((yarn.mscale - (1.0 + 0.1 * 4f64.ln())).abs() < 1e-12);
    }

    /// Odd or oversized rotation widths are refused.
    #[test]
    fn bad_rot_dim_is_refused() {
        for rot_dim in [0, 3, 10] {
            let err = Rope::new(
                &spec(RopePairing::Neox, rot_dim, RopeScaling::None),
                8,
                None,
            );
            assert!(
                matches!(
                    err,
                    Err(Error::BadHParam {
                        field: "rope.dimension_count",
                        ..
                    })
                ),
                "{rot_dim}"
            );
        }
    }
}

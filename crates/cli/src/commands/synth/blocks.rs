//! Random tensor contents, fast enough for multi-GB files.
//!
//! For each quantized type a pool of blocks is made once by quantizing random values with
//! the reference quantizer (`skiff_tensor::quant`), so every block is valid for every reader;
//! a tensor is then a sequence of blocks drawn from the pool at random. Values are uniform
//! with standard deviation [`WEIGHT_STD`], the scale of trained transformer weights, so
//! activations stay finite through any depth of random layers.

use std::collections::HashMap;

use anyhow::Context;
use skiff_tensor::DType;
use skiff_tensor::quant::quantize;

use super::shapes::Fill;

/// Standard deviation of random weights and biases.
pub const WEIGHT_STD: f32 = 0.02;
/// Distinct blocks per type in the pool.
const POOL_BLOCKS: usize = 4096;

/// SplitMix64: a seeded generator of uniform values.
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-a, a)` with standard deviation `std` (`a = std·√3`).
    pub fn uniform(&mut self, std: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (unit * 2.0 - 1.0) * std * 3f32.sqrt()
    }
}

/// Makes tensor bytes; holds the block pools.
pub struct Filler {
    rng: Rng,
    pools: HashMap<DType, Vec<u8>>,
}

impl Filler {
    /// A filler seeded with `seed`.
    pub fn new(seed: u64) -> Filler {
        Filler {
            rng: Rng::new(seed),
            pools: HashMap::new(),
        }
    }

    /// The bytes of a tensor of `n_values` values of type `dtype` holding `fill`.
    pub fn tensor(&mut self, dtype: DType, n_values: usize, fill: Fill) -> anyhow::Result<Vec<u8>> {
        match (dtype, fill) {
            (DType::F32, Fill::Ones) => Ok(1f32.to_le_bytes().repeat(n_values)),
            (DType::F32, _) => Ok((0..n_values)
                .flat_map(|_| self.rng.uniform(WEIGHT_STD).to_le_bytes())
                .collect()),
            _ => self.pooled_blocks(dtype, n_values),
        }
    }

    /// `n_values / block_len` blocks drawn at random from `dtype`'s pool.
    fn pooled_blocks(&mut self, dtype: DType, n_values: usize) -> anyhow::Result<Vec<u8>> {
        let (block_len, block_bytes) = (dtype.block_len(), dtype.block_bytes());
        anyhow::ensure!(
            n_values.is_multiple_of(block_len),
            "{n_values} values are not whole {dtype} blocks of {block_len}"
        );
        if !self.pools.contains_key(&dtype) {
            let values: Vec<f32> = (0..POOL_BLOCKS * block_len)
                .map(|_| self.rng.uniform(WEIGHT_STD))
                .collect();
            let mut pool = vec![0u8; POOL_BLOCKS * block_bytes];
            quantize(dtype, &values, &mut pool)
                .with_context(|| format!("quantizing the {dtype} block pool"))?;
            self.pools.insert(dtype, pool);
        }
        let pool = &self.pools[&dtype];
        let n_blocks = n_values / block_len;
        let mut out = Vec::with_capacity(n_blocks * block_bytes);
        for _ in 0..n_blocks {
            let i = (self.rng.next_u64() % POOL_BLOCKS as u64) as usize;
            out.extend_from_slice(&pool[i * block_bytes..(i + 1) * block_bytes]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_tensor::quant::to_f32_vec;

    #[test]
    fn uniform_has_the_requested_spread() {
        let mut rng = Rng::new(1);
        let xs: Vec<f32> = (0..100_000).map(|_| rng.uniform(0.02)).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 1e-3, "{mean}");
        assert!((var.sqrt() - 0.02).abs() < 1e-3, "{}", var.sqrt());
        assert!(xs.iter().all(|x| x.abs() <= 0.02 * 3f32.sqrt()));
    }

    #[test]
    fn pooled_blocks_dequantize_to_small_finite_values() {
        let mut filler = Filler::new(5);
        for dtype in [DType::Q4K, DType::Q6K, DType::Q5_0, DType::Q8_0, DType::F16] {
            let bytes = filler.tensor(dtype, 4 * 256, Fill::Weight).expect("fills");
            assert_eq!(
                bytes.len(),
                4 * dtype.bytes_for(256).expect("fits") as usize
            );
            let values = to_f32_vec(dtype, &bytes).expect("valid blocks");
            assert!(
                values.iter().all(|v| v.is_finite() && v.abs() < 0.1),
                "{dtype}"
            );
            assert!(values.iter().any(|v| *v != 0.0), "{dtype}");
        }
        assert!(filler.tensor(DType::Q4K, 100, Fill::Weight).is_err());
        let ones = filler.tensor(DType::F32, 3, Fill::Ones).expect("fills");
        assert_eq!(to_f32_vec(DType::F32, &ones).expect("f32"), vec![1.0; 3]);
    }
}

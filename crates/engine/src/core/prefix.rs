//! Prefix-cache hashing: each full KV block is named by a hash chained over everything
//! before it, so equal hashes mean equal prefixes (vLLM's automatic prefix caching).
//!
//! `hash(block i) = H(hash(block i-1), salt, model id, tokens of block i)`, with the first
//! block's parent a fixed root. The salt separates tenants: requests with different salts
//! never share blocks. The model id separates models should a cache ever be shared. `H` is
//! SipHash-1-3 with fixed keys (`DefaultHasher::new`), deterministic across runs; 64 bits
//! make an accidental collision between two live prefixes vanishingly unlikely.

use std::hash::{DefaultHasher, Hash, Hasher};

/// The chained hash of one full block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct BlockHash(pub(crate) u64);

/// What the chain mixes in besides the tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashSeed {
    /// Per-tenant salt from the request.
    pub(crate) salt: u64,
    /// Identifies the model (see [`model_id`]).
    pub(crate) model_id: u64,
}

/// Hashes of the full blocks of `tokens`, in order; a trailing partial block gets none.
#[cfg(test)]
pub(crate) fn block_hashes(tokens: &[u32], block_size: usize, seed: HashSeed) -> Vec<BlockHash> {
    let mut parent = BlockHash(0);
    tokens
        .chunks_exact(block_size)
        .map(|block| {
            parent = chain(parent, seed, block);
            parent
        })
        .collect()
}

/// Extends `hashes` (the chain of the first `hashes.len()` blocks of `tokens`) with every
/// block of `tokens` that is now full.
pub(crate) fn extend_hashes(
    hashes: &mut Vec<BlockHash>,
    tokens: &[u32],
    block_size: usize,
    seed: HashSeed,
) {
    let n_full = tokens.len() / block_size;
    while hashes.len() < n_full {
        let i = hashes.len();
        let parent = hashes.last().copied().unwrap_or(BlockHash(0));
        hashes.push(chain(
            parent,
            seed,
            &tokens[i * block_size..(i + 1) * block_size],
        ));
    }
}

/// One link of the chain.
fn chain(parent: BlockHash, seed: HashSeed, block: &[u32]) -> BlockHash {
    let mut h = DefaultHasher::new();
    parent.0.hash(&mut h);
    seed.salt.hash(&mut h);
    seed.model_id.hash(&mut h);
    block.hash(&mut h);
    BlockHash(h.finish())
}

/// A stable id for a model: its architecture and every hyperparameter.
pub(crate) fn model_id(spec: &skiff_models::ModelSpec) -> u64 {
    let mut h = DefaultHasher::new();
    spec.arch.hash(&mut h);
    spec.name.hash(&mut h);
    format!("{:?}", spec.hparams).hash(&mut h);
    spec.tensors.len().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: HashSeed = HashSeed {
        salt: 0,
        model_id: 1,
    };

    #[test]
    fn equal_prefixes_hash_equal_and_chain_depends_on_the_past() {
        let a = block_hashes(&[1, 2, 3, 4, 5, 6, 7], 2, SEED);
        let b = block_hashes(&[1, 2, 3, 4, 9, 9], 2, SEED);
        assert_eq!(a.len(), 3, "the trailing partial block has no hash");
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2], b[2]);
        // Same block tokens after a different first block: a different hash.
        let c = block_hashes(&[0, 2, 3, 4], 2, SEED);
        assert_ne!(a[1], c[1]);
    }

    #[test]
    fn salt_and_model_separate_chains() {
        let tokens = [5, 6, 7, 8];
        let base = block_hashes(&tokens, 2, SEED);
        let salted = block_hashes(&tokens, 2, HashSeed { salt: 9, ..SEED });
        let other_model = block_hashes(
            &tokens,
            2,
            HashSeed {
                model_id: 2,
                ..SEED
            },
        );
        assert_ne!(base[0], salted[0]);
        assert_ne!(base[0], other_model[0]);
    }

    #[test]
    fn extending_matches_hashing_at_once() {
        let tokens: Vec<u32> = (0..11).collect();
        let mut hashes = block_hashes(&tokens[..5], 4, SEED);
        assert_eq!(hashes.len(), 1);
        extend_hashes(&mut hashes, &tokens, 4, SEED);
        assert_eq!(hashes, block_hashes(&tokens, 4, SEED));
    }
}

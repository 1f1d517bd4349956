//! The KV cache: per layer, per slot (sequence), the keys and values of every cached
//! position.
//!
//! Models own no sequence state; the engine creates a [`KvCache`] and passes it to every
//! `forward`. Attention reaches one sequence's keys only through a [`SeqKv`] view
//! (`key(pos)`, `value(pos)`), so a paged layout can replace the storage here without any
//! architecture file changing.
//!
//! Storage today is one growable buffer per (layer, slot): memory follows what each
//! sequence actually uses, never `max_seq_len` up front. Invariant: a slot's buffers hold at
//! least `slot_len` rows in every layer; rows beyond `slot_len` (left by a truncate or a
//! failed forward) are stale and get overwritten by the next write at that position.

use skiff_formats::HParams;

use crate::error::{Error, Result};

/// Keys and values of one slot in one layer: `[n_rows, k_dim]` and `[n_rows, v_dim]`.
#[derive(Clone, Debug, Default)]
struct SlotKv {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// Per-layer, per-slot key and value cache for one model shape.
#[derive(Clone, Debug)]
pub struct KvCache {
    /// Width of a cached key row: `n_kv_heads * head_dim`.
    k_dim: usize,
    /// Width of a cached value row: `n_kv_heads * head_dim_v`.
    v_dim: usize,
    max_seq_len: usize,
    slot_lens: Vec<usize>,
    /// `layers[layer_idx][slot]`.
    layers: Vec<Vec<SlotKv>>,
}

impl KvCache {
    /// An empty cache for a model with hyperparameters `hp`, holding `n_slots` sequences of
    /// up to `max_seq_len` positions each. Allocates nothing per position until used.
    pub fn new(hp: &HParams, n_slots: usize, max_seq_len: usize) -> KvCache {
        KvCache {
            k_dim: hp.n_kv_heads * hp.head_dim,
            v_dim: hp.n_kv_heads * hp.head_dim_v,
            max_seq_len,
            slot_lens: vec![0; n_slots],
            layers: vec![vec![SlotKv::default(); n_slots]; hp.n_layers],
        }
    }

    /// Number of sequence slots.
    pub fn n_slots(&self) -> usize {
        self.slot_lens.len()
    }

    /// The capacity of each slot in positions.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Number of layers the cache was built for.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Cached positions of `slot` (the next position it accepts); 0 for a slot outside
    /// the cache.
    pub fn slot_len(&self, slot: usize) -> usize {
        self.slot_lens.get(slot).copied().unwrap_or(0)
    }

    /// Forgets everything cached for `slot` and releases its memory.
    pub fn clear_slot(&mut self, slot: usize) -> Result<()> {
        self.check_slot(slot)?;
        self.slot_lens[slot] = 0;
        for layer in &mut self.layers {
            layer[slot] = SlotKv::default();
        }
        Ok(())
    }

    /// Keeps only the first `len` positions of `slot` (e.g. to roll back rejected draft
    /// tokens). `len` may not exceed the current length.
    pub fn truncate_slot(&mut self, slot: usize, len: usize) -> Result<()> {
        self.check_slot(slot)?;
        let cur = self.slot_lens[slot];
        if len > cur {
            return Err(Error::TruncateBeyondLen {
                slot,
                len: cur,
                new_len: len,
            });
        }
        self.slot_lens[slot] = len;
        for layer in &mut self.layers {
            layer[slot].k.truncate(len * self.k_dim);
            layer[slot].v.truncate(len * self.v_dim);
        }
        Ok(())
    }

    /// Checks that this cache fits a model with hyperparameters `hp`.
    pub(crate) fn check_shape(&self, hp: &HParams) -> Result<()> {
        let pairs = [
            ("n_layers", self.layers.len(), hp.n_layers),
            ("k_dim", self.k_dim, hp.n_kv_heads * hp.head_dim),
            ("v_dim", self.v_dim, hp.n_kv_heads * hp.head_dim_v),
        ];
        for (field, cache, model) in pairs {
            if cache != model {
                return Err(Error::KvMismatch {
                    field,
                    cache,
                    model,
                });
            }
        }
        Ok(())
    }

    /// The cache of layer `layer_idx`, for writing a batch's keys and values and reading
    /// sequences back.
    ///
    /// Panics if `layer_idx >= n_layers`; `forward` checks the shape first.
    pub(crate) fn layer(&mut self, layer_idx: usize) -> LayerKv<'_> {
        LayerKv {
            slots: &mut self.layers[layer_idx],
            k_dim: self.k_dim,
            v_dim: self.v_dim,
        }
    }

    /// Marks `slot` as holding `len` positions after a successful forward pass.
    pub(crate) fn set_slot_len(&mut self, slot: usize, len: usize) {
        self.slot_lens[slot] = len;
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        if slot >= self.slot_lens.len() {
            return Err(Error::SlotOutOfRange {
                slot,
                n_slots: self.slot_lens.len(),
            });
        }
        Ok(())
    }
}

/// One layer of the cache, borrowed for a forward pass.
pub struct LayerKv<'a> {
    slots: &'a mut [SlotKv],
    k_dim: usize,
    v_dim: usize,
}

impl LayerKv<'_> {
    /// Stores the key row `k` (`[k_dim]`) and value row `v` (`[v_dim]`) of position `pos` of
    /// `slot`. Positions are written in order, so `pos` is at most the rows held.
    pub(crate) fn write(&mut self, slot: usize, pos: usize, k: &[f32], v: &[f32]) {
        let (k_dim, v_dim) = (self.k_dim, self.v_dim);
        let cache = &mut self.slots[slot];
        write_row(&mut cache.k, pos, k_dim, k);
        write_row(&mut cache.v, pos, v_dim, v);
    }

    /// A read view of `slot`'s first `len` positions.
    pub(crate) fn seq(&self, slot: usize, len: usize) -> SeqKv<'_> {
        let cache = &self.slots[slot];
        SeqKv {
            k: &cache.k[..len * self.k_dim],
            v: &cache.v[..len * self.v_dim],
            k_dim: self.k_dim,
            v_dim: self.v_dim,
        }
    }
}

/// Puts `row` at row `pos` of the `[_, dim]` buffer `buf`, growing it by exactly one row
/// when `pos` is the next row.
fn write_row(buf: &mut Vec<f32>, pos: usize, dim: usize, row: &[f32]) {
    let start = pos * dim;
    debug_assert!(start <= buf.len(), "KV write at {pos} skips rows");
    if buf.len() < start + dim {
        buf.resize(start + dim, 0.0);
    }
    buf[start..start + dim].copy_from_slice(row);
}

/// A read-only view of one sequence's cached keys and values in one layer.
#[derive(Clone, Copy)]
pub struct SeqKv<'a> {
    k: &'a [f32],
    v: &'a [f32],
    k_dim: usize,
    v_dim: usize,
}

impl<'a> SeqKv<'a> {
    /// The key row of position `pos`: `[n_kv_heads * head_dim]`.
    pub fn key(&self, pos: usize) -> &'a [f32] {
        &self.k[pos * self.k_dim..(pos + 1) * self.k_dim]
    }

    /// The value row of position `pos`: `[n_kv_heads * head_dim_v]`.
    pub fn value(&self, pos: usize) -> &'a [f32] {
        &self.v[pos * self.v_dim..(pos + 1) * self.v_dim]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use skiff_formats::{RopePairing, RopeScaling, RopeSpec};

    pub(crate) fn tiny_hparams() -> HParams {
        HParams {
            n_layers: 2,
            d_model: 8,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 4,
            head_dim_v: 4,
            ffn_dim: 16,
            n_vocab: 10,
            max_seq_len: 32,
            norm_eps: 1e-5,
            rope: RopeSpec {
                theta: 10000.0,
                rot_dim: 4,
                pairing: RopePairing::Neox,
                scaling: RopeScaling::None,
            },
            sliding_window: None,
            attn_logit_softcap: None,
            final_logit_softcap: None,
            tie_embeddings: true,
        }
    }

    /// Writes land where views read them; truncate and clear forget rows; bad slots are errors.
    #[test]
    fn write_read_truncate_clear() {
        let hp = tiny_hparams();
        let mut kv = KvCache::new(&hp, 2, 16);
        for pos in 0..3 {
            let row = [pos as f32; 4];
            kv.layer(1).write(1, pos, &row, &row);
        }
        kv.set_slot_len(1, 3);
        assert_eq!(kv.slot_len(1), 3);
        assert_eq!(kv.layer(1).seq(1, 3).key(2), &[2.0; 4]);
        kv.truncate_slot(1, 1).expect("shrinking is allowed");
        assert_eq!(kv.slot_len(1), 1);
        kv.layer(1).write(1, 1, &[9.0; 4], &[8.0; 4]);
        assert_eq!(kv.layer(1).seq(1, 2).value(1), &[8.0; 4]);
        assert!(matches!(
            kv.truncate_slot(1, 5),
            Err(Error::TruncateBeyondLen {
                len: 1,
                new_len: 5,
                ..
            })
        ));
        kv.clear_slot(1).expect("slot exists");
        assert_eq!(kv.slot_len(1), 0);
        assert!(matches!(
            kv.clear_slot(2),
            Err(Error::SlotOutOfRange {
                slot: 2,
                n_slots: 2
            })
        ));
    }

    /// A cache for another shape is refused by name.
    #[test]
    fn shape_mismatch_is_named() {
        let hp = tiny_hparams();
        let kv = KvCache::new(&hp, 1, 8);
        let other = HParams {
            n_kv_heads: 2,
            ..hp
        };
        assert!(matches!(
            kv.check_shape(&other),
            Err(Error::KvMismatch {
                field: "k_dim",
                cache: 4,
                model: 8
            })
        ));
    }
}

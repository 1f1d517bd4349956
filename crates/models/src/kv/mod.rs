//! The paged KV cache: per layer, the keys and values of every cached position, stored in
//! fixed-size blocks that sequences (slots) reach through their block tables.
//!
//! Models own no sequence state; the engine creates a [`KvCache`] and passes it to every
//! `forward`. Position `p` of slot `s` lives in block `table[s][p / block_size]` at row
//! `p % block_size`. [`KvCache::new`] and [`KvCache::with_dtype`] give each slot a fixed
//! table covering `max_seq_len`; [`KvCache::paged`] builds an empty pool whose tables the
//! batching engine sets ([`KvCache::set_block_table`]), sharing read-only prefix blocks
//! between slots and copying a partly filled shared block before writing to it
//! ([`KvCache::copy_block`]).
//!
//! Storage: per layer one key and one value byte buffer of `n_blocks` blocks, allocated
//! zeroed so the operating system maps pages only when a block is first written — resident
//! memory follows the blocks actually used. Inside a block, rows are grouped by KV head
//! (`[n_kv_heads][block_size][head_dim]`), so one head's rows of a block are contiguous and
//! attention streams them with one kernel call. Rows are f32, f16 or ggml `block_q8_0`
//! ([`KvDtype`]).
//!
//! Invariants: a slot's length never exceeds its capacity (`table.len() * block_size`,
//! capped at `max_seq_len`); rows at or beyond a slot's length are stale and get overwritten
//! by the next write at that position; forward only writes positions `>= slot_len`.

mod config;
mod layer;
#[cfg(test)]
pub(crate) mod tests;

use skiff_formats::HParams;

pub use config::{DEFAULT_BLOCK_SIZE, KvConfig, KvDtype};
pub use layer::{LayerKv, SeqKv};

use crate::error::{Error, Result};
use layer::Geometry;

/// One layer's key and value blocks.
struct LayerBufs {
    k: Vec<u8>,
    v: Vec<u8>,
}

/// Per-layer keys and values of many sequences in a pool of fixed-size blocks.
pub struct KvCache {
    geo: Geometry,
    dtype: KvDtype,
    n_blocks: usize,
    max_seq_len: usize,
    slot_lens: Vec<usize>,
    tables: Vec<Vec<u32>>,
    layers: Vec<LayerBufs>,
}

impl std::fmt::Debug for KvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvCache")
            .field("n_layers", &self.layers.len())
            .field("dtype", &self.dtype)
            .field("block_size", &self.geo.block_size)
            .field("n_blocks", &self.n_blocks)
            .field("max_seq_len", &self.max_seq_len)
            .field("slot_lens", &self.slot_lens)
            .finish_non_exhaustive()
    }
}

impl KvCache {
    /// A cache of f32 keys and values for a model with hyperparameters `hp`, holding
    /// `n_slots` sequences of up to `max_seq_len` positions, each slot owning a fixed block
    /// table that covers `max_seq_len`. Memory is touched only as positions are written.
    ///
    /// Panics only when the pool's size overflows `usize` (an impossible `max_seq_len`).
    pub fn new(hp: &HParams, n_slots: usize, max_seq_len: usize) -> KvCache {
        Self::with_dtype(hp, n_slots, max_seq_len, KvDtype::F32)
    }

    /// Same as [`KvCache::new`], with keys and values stored as `dtype`.
    pub fn with_dtype(hp: &HParams, n_slots: usize, max_seq_len: usize, dtype: KvDtype) -> KvCache {
        let block_size = DEFAULT_BLOCK_SIZE;
        let per_slot = max_seq_len.div_ceil(block_size);
        let cfg = KvConfig {
            block_size,
            n_blocks: n_slots
                .checked_mul(per_slot)
                .expect("block count of a fixed-table cache overflows usize"),
            dtype,
        };
        let mut kv = Self::build(hp, n_slots, max_seq_len, cfg)
            .expect("a fixed-table cache of an addressable size has a valid configuration");
        for (slot, table) in kv.tables.iter_mut().enumerate() {
            // Block ids fit in u32: `build` checked n_blocks against u32::MAX.
            let first = slot * per_slot;
            *table = (first..first + per_slot).map(|b| b as u32).collect();
        }
        kv
    }

    /// A paged pool for the batching engine: `cfg.n_blocks` blocks of `cfg.block_size`
    /// positions, `n_slots` slots with empty block tables. The engine allocates blocks and
    /// sets tables; a slot's positions are capped by `max_seq_len`.
    ///
    /// Errors with [`Error::BadKvConfig`] when the block size or count is 0, the count does
    /// not fit a `u32` block id, or the pool's size overflows.
    pub fn paged(
        hp: &HParams,
        n_slots: usize,
        max_seq_len: usize,
        cfg: KvConfig,
    ) -> Result<KvCache> {
        Self::build(hp, n_slots, max_seq_len, cfg)
    }

    fn build(hp: &HParams, n_slots: usize, max_seq_len: usize, cfg: KvConfig) -> Result<KvCache> {
        let bad = |field, value, reason| {
            Err(Error::BadKvConfig {
                field,
                value,
                reason,
            })
        };
        if cfg.block_size == 0 {
            return bad("block_size", cfg.block_size, "must be at least 1");
        }
        if cfg.n_blocks > u32::MAX as usize {
            return bad("n_blocks", cfg.n_blocks, "block ids are u32");
        }
        let geo = Geometry::new(hp, cfg.block_size, cfg.dtype.row_type());
        let (k_bytes, v_bytes) = match (
            cfg.n_blocks.checked_mul(geo.k_block_bytes()),
            cfg.n_blocks.checked_mul(geo.v_block_bytes()),
        ) {
            (Some(k), Some(v)) if k.checked_add(v).is_some() => (k, v),
            _ => return bad("n_blocks", cfg.n_blocks, "the pool's size overflows usize"),
        };
        let layers = (0..hp.n_layers)
            .map(|_| LayerBufs {
                k: vec![0u8; k_bytes],
                v: vec![0u8; v_bytes],
            })
            .collect();
        Ok(KvCache {
            geo,
            dtype: cfg.dtype,
            n_blocks: cfg.n_blocks,
            max_seq_len,
            slot_lens: vec![0; n_slots],
            tables: vec![Vec::new(); n_slots],
            layers,
        })
    }

    /// Bytes one block of `block_size` positions takes across all layers, keys and values,
    /// for a model with hyperparameters `hp` and rows of `dtype`.
    pub fn bytes_per_block(hp: &HParams, block_size: usize, dtype: KvDtype) -> usize {
        let geo = Geometry::new(hp, block_size, dtype.row_type());
        hp.n_layers * (geo.k_block_bytes() + geo.v_block_bytes())
    }

    /// Number of sequence slots.
    pub fn n_slots(&self) -> usize {
        self.slot_lens.len()
    }

    /// The most positions any slot may hold.
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// Number of layers the cache was built for.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Positions per block.
    pub fn block_size(&self) -> usize {
        self.geo.block_size
    }

    /// Blocks in the pool.
    pub fn n_blocks(&self) -> usize {
        self.n_blocks
    }

    /// Element type of the cached rows.
    pub fn dtype(&self) -> KvDtype {
        self.dtype
    }

    /// Cached positions of `slot` (the next position it accepts); 0 for a slot outside the
    /// cache.
    pub fn slot_len(&self, slot: usize) -> usize {
        self.slot_lens.get(slot).copied().unwrap_or(0)
    }

    /// Positions `slot` can hold with its current block table (capped at `max_seq_len`);
    /// 0 for a slot outside the cache.
    pub fn slot_capacity(&self, slot: usize) -> usize {
        self.tables.get(slot).map_or(0, |t| {
            t.len()
                .saturating_mul(self.geo.block_size)
                .min(self.max_seq_len)
        })
    }

    /// `slot`'s block table (empty for a slot outside the cache).
    pub fn block_table(&self, slot: usize) -> &[u32] {
        self.tables.get(slot).map_or(&[], Vec::as_slice)
    }

    /// Replaces `slot`'s block table: position `p` of the slot will live in block
    /// `blocks[p / block_size]` at row `p % block_size`. When the new table holds fewer
    /// positions than the slot's length, the length shrinks to the new capacity.
    ///
    /// Errors: [`Error::SlotOutOfRange`], [`Error::BlockOutOfRange`] for an id `>= n_blocks`,
    /// [`Error::BlockTableTooLong`] for more blocks than `max_seq_len` positions need.
    pub fn set_block_table(&mut self, slot: usize, blocks: &[u32]) -> Result<()> {
        self.check_slot(slot)?;
        let max_blocks = self.max_seq_len.div_ceil(self.geo.block_size);
        if blocks.len() > max_blocks {
            return Err(Error::BlockTableTooLong {
                slot,
                len: blocks.len(),
                max_blocks,
            });
        }
        if let Some(&block) = blocks.iter().find(|&&b| b as usize >= self.n_blocks) {
            return Err(Error::BlockOutOfRange {
                block,
                n_blocks: self.n_blocks,
            });
        }
        let table = &mut self.tables[slot];
        table.clear();
        table.extend_from_slice(blocks);
        let capacity = self.slot_capacity(slot);
        self.slot_lens[slot] = self.slot_lens[slot].min(capacity);
        Ok(())
    }

    /// Declares that `slot` holds `len` valid positions (after mapping shared prefix blocks,
    /// or to roll back).
    ///
    /// Errors: [`Error::SlotOutOfRange`], [`Error::SlotLenBeyondCapacity`] when `len` exceeds
    /// the slot's table capacity or `max_seq_len`.
    pub fn set_slot_len(&mut self, slot: usize, len: usize) -> Result<()> {
        self.check_slot(slot)?;
        let capacity = self.slot_capacity(slot);
        if len > capacity {
            return Err(Error::SlotLenBeyondCapacity {
                slot,
                len,
                capacity,
            });
        }
        self.slot_lens[slot] = len;
        Ok(())
    }

    /// Copies block `src` to block `dst` in every layer, keys and values (copy-on-write of a
    /// partly filled shared block). Errors with [`Error::BlockOutOfRange`].
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        for block in [src, dst] {
            if block as usize >= self.n_blocks {
                return Err(Error::BlockOutOfRange {
                    block,
                    n_blocks: self.n_blocks,
                });
            }
        }
        let (kb, vb) = (self.geo.k_block_bytes(), self.geo.v_block_bytes());
        let (src, dst) = (src as usize, dst as usize);
        for layer in &mut self.layers {
            layer.k.copy_within(src * kb..(src + 1) * kb, dst * kb);
            layer.v.copy_within(src * vb..(src + 1) * vb, dst * vb);
        }
        Ok(())
    }

    /// Forgets everything cached for `slot` (its length becomes 0; its block table stays).
    pub fn clear_slot(&mut self, slot: usize) -> Result<()> {
        self.check_slot(slot)?;
        self.slot_lens[slot] = 0;
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
        Ok(())
    }

    /// Checks that this cache fits a model with hyperparameters `hp`.
    pub(crate) fn check_shape(&self, hp: &HParams) -> Result<()> {
        let g = &self.geo;
        let pairs = [
            ("n_layers", self.layers.len(), hp.n_layers),
            (
                "k_dim",
                g.n_kv_heads * g.head_dim,
                hp.n_kv_heads * hp.head_dim,
            ),
            (
                "v_dim",
                g.n_kv_heads * g.head_dim_v,
                hp.n_kv_heads * hp.head_dim_v,
            ),
            ("n_kv_heads", g.n_kv_heads, hp.n_kv_heads),
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
        let bufs = &mut self.layers[layer_idx];
        LayerKv::new(self.geo, &mut bufs.k, &mut bufs.v, &self.tables)
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

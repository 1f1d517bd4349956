//! One layer of the cache borrowed for a forward pass: writing a batch's rows through the
//! block tables, and read views of one sequence's rows for attention.

use skiff_backend_cpu::attn::{KvRowType, encode_row};
use skiff_formats::HParams;

/// Where rows live inside a layer's buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub block_size: usize,
    pub row_type: KvRowType,
    /// Bytes of one key row (one position, one KV head).
    pub k_row_bytes: usize,
    /// Bytes of one value row.
    pub v_row_bytes: usize,
}

impl Geometry {
    pub(crate) fn new(hp: &HParams, block_size: usize, row_type: KvRowType) -> Geometry {
        Geometry {
            n_kv_heads: hp.n_kv_heads,
            head_dim: hp.head_dim,
            head_dim_v: hp.head_dim_v,
            block_size,
            row_type,
            k_row_bytes: row_type.row_bytes(hp.head_dim),
            v_row_bytes: row_type.row_bytes(hp.head_dim_v),
        }
    }

    /// Bytes of one block of keys in one layer.
    pub(crate) fn k_block_bytes(&self) -> usize {
        self.n_kv_heads * self.block_size * self.k_row_bytes
    }

    /// Bytes of one block of values in one layer.
    pub(crate) fn v_block_bytes(&self) -> usize {
        self.n_kv_heads * self.block_size * self.v_row_bytes
    }

    /// Byte offset of row `row` of KV head `kv_head` in block `block`, for rows of
    /// `row_bytes` (blocks are `[n_kv_heads][block_size][row]`).
    fn offset(&self, block: u32, kv_head: usize, row: usize, row_bytes: usize) -> usize {
        ((block as usize * self.n_kv_heads + kv_head) * self.block_size + row) * row_bytes
    }
}

/// One layer of the cache, borrowed for a forward pass.
pub struct LayerKv<'a> {
    geo: Geometry,
    k: &'a mut [u8],
    v: &'a mut [u8],
    tables: &'a [Vec<u32>],
}

impl<'a> LayerKv<'a> {
    pub(crate) fn new(
        geo: Geometry,
        k: &'a mut [u8],
        v: &'a mut [u8],
        tables: &'a [Vec<u32>],
    ) -> LayerKv<'a> {
        LayerKv { geo, k, v, tables }
    }

    /// The storage type of the rows.
    pub fn row_type(&self) -> KvRowType {
        self.geo.row_type
    }

    /// Stores the key row `k` (`[n_kv_heads * head_dim]`) and value row `v`
    /// (`[n_kv_heads * head_dim_v]`) of position `pos` of `slot`, converting them to the
    /// cache's row type.
    ///
    /// Panics when `pos` is outside the slot's block table; `Batch::validate` checks that.
    pub(crate) fn write(&mut self, slot: usize, pos: usize, k: &[f32], v: &[f32]) {
        let g = self.geo;
        let block = self.tables[slot][pos / g.block_size];
        let row = pos % g.block_size;
        for h in 0..g.n_kv_heads {
            let off = g.offset(block, h, row, g.k_row_bytes);
            let src = &k[h * g.head_dim..(h + 1) * g.head_dim];
            encode_row(g.row_type, src, &mut self.k[off..off + g.k_row_bytes]);
            let off = g.offset(block, h, row, g.v_row_bytes);
            let src = &v[h * g.head_dim_v..(h + 1) * g.head_dim_v];
            encode_row(g.row_type, src, &mut self.v[off..off + g.v_row_bytes]);
        }
    }

    /// A read view of `slot`'s rows.
    pub(crate) fn seq(&self, slot: usize) -> SeqKv<'_> {
        SeqKv {
            geo: self.geo,
            k: self.k,
            v: self.v,
            table: &self.tables[slot],
        }
    }
}

/// A read-only view of one sequence's cached keys and values in one layer.
#[derive(Clone, Copy)]
pub struct SeqKv<'a> {
    geo: Geometry,
    k: &'a [u8],
    v: &'a [u8],
    table: &'a [u32],
}

impl<'a> SeqKv<'a> {
    /// Positions per block: a run of rows never crosses a multiple of this.
    pub fn block_size(&self) -> usize {
        self.geo.block_size
    }

    /// The key rows of KV head `kv_head` at positions `pos..pos + n` (all in one block),
    /// back to back.
    ///
    /// Panics when the run crosses a block boundary or leaves the block table.
    pub fn key_rows(&self, kv_head: usize, pos: usize, n: usize) -> &'a [u8] {
        self.rows(self.k, self.geo.k_row_bytes, kv_head, pos, n)
    }

    /// The value rows of KV head `kv_head` at positions `pos..pos + n` (all in one block).
    pub fn value_rows(&self, kv_head: usize, pos: usize, n: usize) -> &'a [u8] {
        self.rows(self.v, self.geo.v_row_bytes, kv_head, pos, n)
    }

    fn rows(
        &self,
        buf: &'a [u8],
        row_bytes: usize,
        kv_head: usize,
        pos: usize,
        n: usize,
    ) -> &'a [u8] {
        let g = &self.geo;
        let row = pos % g.block_size;
        assert!(
            row + n <= g.block_size,
            "rows {pos}..{} cross a block",
            pos + n
        );
        let off = g.offset(self.table[pos / g.block_size], kv_head, row, row_bytes);
        &buf[off..off + n * row_bytes]
    }
}

//! The flat token batch a forward pass consumes, and the logits it returns.
//!
//! A batch is `n_tokens` rows with no padding and no batch dimension: each token carries its
//! position and the KV slot (sequence) it belongs to. Tokens of several sequences may be
//! mixed in any interleaving, but the tokens of one sequence appear in increasing position
//! order and continue that slot exactly: the first has position `kv.slot_len(slot)`, the
//! next `+1`, and so on. [`Batch::validate`] checks all of this before any compute runs,
//! so a bad batch fails with a typed error and leaves the KV cache untouched.

use crate::error::{Error, Result};
use crate::kv::KvCache;

/// Tokens to run, flattened across sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Token ids, one per row.
    pub tokens: Vec<u32>,
    /// Position of each token in its sequence (0-based).
    pub positions: Vec<u32>,
    /// KV slot (sequence) of each token.
    pub seq_slots: Vec<usize>,
    /// Indices into `tokens` whose logits are wanted, in the order the rows are returned.
    pub logit_rows: Vec<usize>,
}

impl Batch {
    /// A batch holding one sequence's tokens at positions `start_pos..`, in slot `slot`,
    /// asking for the logits of the last token only.
    pub fn for_sequence(tokens: &[u32], start_pos: u32, slot: usize) -> Batch {
        let mut batch = Batch::default();
        batch.set_sequence(tokens, start_pos, slot);
        batch
    }

    /// Makes this batch what [`Batch::for_sequence`] returns, reusing its buffers.
    pub fn set_sequence(&mut self, tokens: &[u32], start_pos: u32, slot: usize) {
        self.clear();
        let n_tokens = tokens.len();
        self.tokens.extend_from_slice(tokens);
        self.positions
            .extend((0..n_tokens).map(|i| start_pos + i as u32));
        self.seq_slots.resize(n_tokens, slot);
        self.logit_rows.extend(n_tokens.checked_sub(1));
    }

    /// Empties the batch, keeping its buffers for the next one.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.positions.clear();
        self.seq_slots.clear();
        self.logit_rows.clear();
    }

    /// Number of tokens (rows).
    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Checks the batch against the vocabulary, the context limits and the KV cache:
    /// parallel vectors of equal length, token ids below `n_vocab`, slots inside the cache,
    /// positions below both `model_max_seq_len` and the cache's `max_seq_len`, positions
    /// inside the slot's block table ([`Error::KvCapacity`]), positions that continue each
    /// slot without gaps, and logit rows inside the batch.
    pub fn validate(&self, n_vocab: usize, model_max_seq_len: usize, kv: &KvCache) -> Result<()> {
        let n_tokens = self.tokens.len();
        if n_tokens == 0 {
            return Err(Error::EmptyBatch);
        }
        for (field, len) in [
            ("positions", self.positions.len()),
            ("seq_slots", self.seq_slots.len()),
        ] {
            if len != n_tokens {
                return Err(Error::BatchLength {
                    field,
                    len,
                    n_tokens,
                });
            }
        }
        for token_idx in 0..n_tokens {
            let token = self.tokens[token_idx];
            if token as usize >= n_vocab {
                return Err(Error::TokenOutOfRange {
                    token_idx,
                    token,
                    n_vocab,
                });
            }
            let pos = self.positions[token_idx];
            for (limit, max_seq_len) in [
                ("model context", model_max_seq_len),
                ("KV cache", kv.max_seq_len()),
            ] {
                if pos as usize >= max_seq_len {
                    return Err(Error::PositionOutOfRange {
                        token_idx,
                        pos,
                        limit,
                        max_seq_len,
                    });
                }
            }
            let slot = self.seq_slots[token_idx];
            let n_slots = kv.n_slots();
            if slot < n_slots && pos as usize >= kv.slot_capacity(slot) {
                return Err(Error::KvCapacity {
                    slot,
                    pos,
                    capacity: kv.slot_capacity(slot),
                });
            }
            if slot >= n_slots {
                return Err(Error::SlotOutOfRange { slot, n_slots });
            }
            // The slot's previous token in the batch (usually the one just before, when a
            // batch holds each sequence's tokens together) or else its cached length: found by
            // scanning back rather than with a per-slot table, so validating allocates nothing.
            let expected = self.seq_slots[..token_idx]
                .iter()
                .rposition(|&s| s == slot)
                .map_or_else(|| kv.slot_len(slot), |j| self.positions[j] as usize + 1);
            if pos as usize != expected {
                return Err(Error::PositionGap {
                    token_idx,
                    slot,
                    pos,
                    expected,
                });
            }
        }
        if let Some(&row) = self.logit_rows.iter().find(|&&row| row >= n_tokens) {
            return Err(Error::LogitRowOutOfRange { row, n_tokens });
        }
        Ok(())
    }
}

/// Logits for the requested rows of a batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logits {
    /// Width of each row.
    pub n_vocab: usize,
    /// `[logit_rows.len(), n_vocab]`, row `r` belonging to `batch.logit_rows[r]`.
    pub data: Vec<f32>,
}

impl Logits {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.data.len().checked_div(self.n_vocab).unwrap_or(0)
    }

    /// Row `r` (the logits of `batch.logit_rows[r]`), or `None` when out of range.
    pub fn row(&self, r: usize) -> Option<&[f32]> {
        self.data.get(r * self.n_vocab..(r + 1) * self.n_vocab)
    }

    /// Row `r`, writable (a sampler overwrites it in place), or `None` when out of range.
    pub fn row_mut(&mut self, r: usize) -> Option<&mut [f32]> {
        self.data.get_mut(r * self.n_vocab..(r + 1) * self.n_vocab)
    }
}

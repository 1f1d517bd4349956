//! Forking the choices of an `n > 1` request once its prompt is computed: full prompt
//! blocks are shared by reference count, the partly filled last block is copied
//! (copy-on-write, performed by the worker before the next forward pass).

use super::{Scheduler, Seq, SeqId};
use crate::core::block_pool::BlockId;

impl Scheduler {
    /// Creates `id`'s pending choices as `child_ids` (one per reserved fork), sharing its
    /// computed prompt: full blocks by reference, the partly filled last block by a copy
    /// planned for the next step (or, when no block is free, by recomputing it). Call it
    /// right after the step that completed `id`'s prompt. Returns the children created.
    pub(crate) fn fork(&mut self, id: SeqId, child_ids: &[SeqId]) -> Vec<SeqId> {
        let bs = self.cfg.block_size;
        let Some(parent) = self.seqs.get_mut(&id) else {
            return Vec::new();
        };
        let n = parent
            .n_forks
            .min(child_ids.len())
            .min(parent.fork_slots.len());
        parent.n_forks = 0;
        let slots: Vec<usize> = parent.fork_slots.drain(..).collect();
        // The computed prompt only: the parent may already have appended its own token.
        let (tokens, n_computed, hash_seed, hashes) = (
            parent.tokens[..parent.n_computed].to_vec(),
            parent.n_computed,
            parent.hash_seed,
            parent.hashes.clone(),
        );
        let blocks = parent.blocks.clone();
        let n_full = n_computed / bs;
        let partial = blocks.get(n_full).filter(|_| n_computed % bs != 0).copied();
        self.free_slots.extend(slots.iter().skip(n));
        let mut created = Vec::new();
        for (&child, &slot) in child_ids.iter().zip(&slots).take(n) {
            let mut child_blocks: Vec<BlockId> = blocks[..n_full].to_vec();
            for &b in &child_blocks {
                self.pool.share(b);
            }
            let mut child_computed = n_full * bs;
            if let Some(src) = partial
                && let Some(dst) = self.pool.allocate()
            {
                // The copy holds its own references on both blocks until it is performed.
                self.pool.share(src);
                self.pool.share(dst);
                self.pending_copies.push((src, dst));
                child_blocks.push(dst);
                child_computed = n_computed;
            }
            self.seqs.insert(
                child,
                Seq {
                    tokens: tokens.clone(),
                    n_prompt: tokens.len(),
                    n_computed: child_computed,
                    blocks: child_blocks,
                    hashes: hashes.iter().take(n_full).copied().collect(),
                    hash_seed,
                    slot: Some(slot),
                    n_forks: 0,
                    fork_slots: Vec::new(),
                    admitted_before: true,
                },
            );
            self.running.push(child);
            created.push(child);
        }
        created
    }
}

//! [`Scheduler`]: who runs each step, with how many tokens, in which KV blocks. Tensor-free:
//! bookkeeping over sequence ids, block ids and token counts (vLLM v1's scheduler).
//!
//! There are no prefill or decode modes. Each step gives every running sequence a number
//! of tokens under one budget: first one token to each sequence that is decoding, then
//! prompt chunks to sequences still prefilling (oldest first), then new sequences are
//! admitted first-come-first-served while the budget, the KV slots and the blocks last.
//! Long prompts therefore never stall running streams.
//!
//! When a running sequence cannot get the blocks its tokens need, the newest running
//! sequence is preempted: its blocks are released (full ones stay in the prefix cache
//! until evicted) and it goes back to the front of the queue with all its tokens, to be
//! recomputed when re-admitted. A sequence's state is `tokens` (prompt plus sampled tokens)
//! and `n_computed` (tokens whose keys and values are in its blocks); a running sequence
//! always has `n_computed < tokens.len()`.
//!
//! `n > 1` choices: the first choice prefills alone; when its prompt is done, `fork`
//! creates the other choices, sharing the full prompt blocks by reference count and
//! copying the partly filled last block (a copy the worker performs before the next
//! forward pass).

use std::collections::{BTreeSet, HashMap, VecDeque};

mod fork;

use crate::core::block_pool::{BlockId, BlockPool};
use crate::core::prefix::{BlockHash, HashSeed, extend_hashes};

/// A sequence (one choice of one request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SeqId(pub(crate) u64);

/// Limits the scheduler works within.
#[derive(Clone, Debug)]
pub(crate) struct SchedConfig {
    /// Tokens per step.
    pub(crate) max_batch_tokens: usize,
    /// Sequences in the running set (and KV slots).
    pub(crate) max_running: usize,
    /// Positions per block.
    pub(crate) block_size: usize,
    /// Blocks in the pool.
    pub(crate) n_blocks: usize,
    /// Register full blocks and look prompts up in the prefix cache.
    pub(crate) prefix_cache: bool,
}

/// A new sequence to queue.
#[derive(Clone, Debug)]
pub(crate) struct NewSeq {
    /// Its id, unique for the scheduler's lifetime.
    pub(crate) id: SeqId,
    /// The prompt.
    pub(crate) prompt: Vec<u32>,
    /// Further choices to fork after the prompt is computed.
    pub(crate) n_forks: usize,
    /// Salt and model id for the prefix-cache hashes.
    pub(crate) hash_seed: HashSeed,
}

/// One sequence's share of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scheduled {
    /// The sequence.
    pub(crate) id: SeqId,
    /// Its KV slot.
    pub(crate) slot: usize,
    /// Position of its first token this step (= its computed tokens before the step).
    pub(crate) start: usize,
    /// Tokens it runs this step.
    pub(crate) n_tokens: usize,
    /// Whether this step ends at its last token, so its logits are needed.
    pub(crate) wants_logits: bool,
}

/// What one step runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StepPlan {
    /// Sequences and their token counts, decodes first.
    pub(crate) seqs: Vec<Scheduled>,
    /// Block copies `(src, dst)` to perform before the forward pass.
    pub(crate) copies: Vec<(BlockId, BlockId)>,
    /// Sequences admitted this step, with the prompt tokens found in the prefix cache.
    pub(crate) admitted: Vec<(SeqId, usize)>,
    /// Sequences preempted this step.
    pub(crate) preempted: Vec<SeqId>,
}

impl StepPlan {
    /// Tokens in the step.
    #[cfg(test)]
    pub(crate) fn n_tokens(&self) -> usize {
        self.seqs.iter().map(|s| s.n_tokens).sum()
    }
}

/// One sequence's scheduling state.
#[derive(Debug)]
struct Seq {
    tokens: Vec<u32>,
    n_prompt: usize,
    n_computed: usize,
    blocks: Vec<BlockId>,
    /// Chain hashes of the full blocks of `tokens` computed so far.
    hashes: Vec<BlockHash>,
    hash_seed: HashSeed,
    slot: Option<usize>,
    /// Choices still to fork, and the slots reserved for them while running.
    n_forks: usize,
    fork_slots: Vec<usize>,
    /// Admitted at least once (a later admission is a resumption).
    admitted_before: bool,
}

/// Counters the scheduler keeps for [`EngineStats`](crate::EngineStats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SchedCounters {
    pub(crate) preempted_total: u64,
    pub(crate) prefix_hit_tokens_total: u64,
    pub(crate) prefix_lookup_tokens_total: u64,
}

/// The scheduler: waiting queue, running set, block pool and KV slots.
#[derive(Debug)]
pub(crate) struct Scheduler {
    cfg: SchedConfig,
    pool: BlockPool,
    seqs: HashMap<SeqId, Seq>,
    waiting: VecDeque<SeqId>,
    /// Admission order: the last is the newest, preempted first.
    running: Vec<SeqId>,
    free_slots: BTreeSet<usize>,
    /// Block references held by copies planned but not yet performed.
    pending_copies: Vec<(BlockId, BlockId)>,
    counters: SchedCounters,
}

impl Scheduler {
    /// An empty scheduler over a pool of `cfg.n_blocks` blocks and `cfg.max_running` slots.
    pub(crate) fn new(cfg: SchedConfig) -> Scheduler {
        Scheduler {
            pool: BlockPool::new(cfg.n_blocks),
            free_slots: (0..cfg.max_running).collect(),
            cfg,
            seqs: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            pending_copies: Vec::new(),
            counters: SchedCounters::default(),
        }
    }

    /// Queues a new sequence at the back.
    pub(crate) fn add(&mut self, new: NewSeq) {
        let seq = Seq {
            n_prompt: new.prompt.len(),
            tokens: new.prompt,
            n_computed: 0,
            blocks: Vec::new(),
            hashes: Vec::new(),
            hash_seed: new.hash_seed,
            slot: None,
            n_forks: new.n_forks,
            fork_slots: Vec::new(),
            admitted_before: false,
        };
        self.seqs.insert(new.id, seq);
        self.waiting.push_back(new.id);
    }

    /// Sequences waiting for admission.
    pub(crate) fn n_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Sequences in the running set.
    pub(crate) fn n_running(&self) -> usize {
        self.running.len()
    }

    /// True when nothing is waiting or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The pool, for statistics.
    pub(crate) fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// Preemption and prefix-cache counters.
    pub(crate) fn counters(&self) -> &SchedCounters {
        &self.counters
    }

    /// All tokens of `id` (prompt and sampled), or none for an unknown id.
    pub(crate) fn tokens(&self, id: SeqId) -> &[u32] {
        self.seqs.get(&id).map_or(&[], |s| &s.tokens)
    }

    /// Prompt length of `id`.
    pub(crate) fn n_prompt(&self, id: SeqId) -> usize {
        self.seqs.get(&id).map_or(0, |s| s.n_prompt)
    }

    /// The block table of `id` as KV block ids.
    #[cfg(test)]
    pub(crate) fn block_table(&self, id: SeqId) -> Vec<u32> {
        let mut table = Vec::new();
        self.block_table_into(id, &mut table);
        table
    }

    /// [`Self::block_table`] into `table` (cleared first), reusing its buffer.
    pub(crate) fn block_table_into(&self, id: SeqId, table: &mut Vec<u32>) {
        table.clear();
        if let Some(s) = self.seqs.get(&id) {
            table.extend(s.blocks.iter().map(|b| b.0));
        }
    }

    /// Plans the next step: decode tokens, then prefill chunks, then admissions, all under
    /// `max_batch_tokens`, preempting the newest sequences when blocks run out.
    pub(crate) fn schedule(&mut self) -> StepPlan {
        let mut plan = StepPlan::default();
        let mut budget = self.cfg.max_batch_tokens;
        self.schedule_running(&mut plan, &mut budget, true);
        self.schedule_running(&mut plan, &mut budget, false);
        self.admit_waiting(&mut plan, &mut budget);
        // After preemptions, which drop the copies of the sequences they stop.
        plan.copies = self.pending_copies.clone();
        plan
    }

    /// Gives tokens to running sequences that are decoding (`decoding`) or prefilling.
    fn schedule_running(&mut self, plan: &mut StepPlan, budget: &mut usize, decoding: bool) {
        let mut i = 0;
        while i < self.running.len() && *budget > 0 {
            let id = self.running[i];
            let seq = &self.seqs[&id];
            let needed = seq.tokens.len() - seq.n_computed;
            if (needed == 1) != decoding || plan.seqs.iter().any(|s| s.id == id) {
                i += 1;
                continue;
            }
            let n_tokens = needed.min(*budget);
            if !self.grow_or_preempt(id, n_tokens, plan, budget) {
                // `id` itself was preempted: the sequence now at `i` is the next one.
                continue;
            }
            let seq = &self.seqs[&id];
            plan.seqs.push(Scheduled {
                id,
                slot: seq.slot.expect("running sequences hold a slot"),
                start: seq.n_computed,
                n_tokens,
                wants_logits: seq.n_computed + n_tokens == seq.tokens.len(),
            });
            *budget -= n_tokens;
            i += 1;
        }
    }

    /// Makes `id`'s blocks cover `n_tokens` more positions, preempting the newest running
    /// sequences until they do. Returns false when `id` itself had to be preempted.
    fn grow_or_preempt(
        &mut self,
        id: SeqId,
        n_tokens: usize,
        plan: &mut StepPlan,
        budget: &mut usize,
    ) -> bool {
        loop {
            let seq = &self.seqs[&id];
            let needed = (seq.n_computed + n_tokens)
                .div_ceil(self.cfg.block_size)
                .saturating_sub(seq.blocks.len());
            if let Some(new) = self.pool.allocate_n(needed) {
                let seq = self.seqs.get_mut(&id).expect("scheduled sequences exist");
                seq.blocks.extend(new);
                return true;
            }
            let victim = *self
                .running
                .last()
                .expect("the sequence being grown is running");
            if let Some(pos) = plan.seqs.iter().position(|s| s.id == victim) {
                *budget += plan.seqs.remove(pos).n_tokens;
            }
            self.preempt(victim);
            plan.preempted.push(victim);
            if victim == id {
                return false;
            }
        }
    }

    /// Admits waiting sequences first-come-first-served while slots, budget and blocks last.
    fn admit_waiting(&mut self, plan: &mut StepPlan, budget: &mut usize) {
        while *budget > 0 {
            let Some(&id) = self.waiting.front() else {
                return;
            };
            let seq = &self.seqs[&id];
            let n_slots = 1 + seq.n_forks;
            if self.running.len() + n_slots > self.cfg.max_running
                || self.free_slots.len() < n_slots
            {
                return;
            }
            let Some((n_cached, n_tokens)) = self.map_prefix_and_allocate(id, *budget) else {
                return;
            };
            self.waiting.pop_front();
            let mut slots = (0..n_slots).map(|_| {
                self.free_slots
                    .pop_first()
                    .expect("free slot count checked above")
            });
            let slot = slots.next().expect("n_slots >= 1");
            let fork_slots: Vec<usize> = slots.collect();
            let seq = self.seqs.get_mut(&id).expect("waiting sequences exist");
            seq.slot = Some(slot);
            seq.fork_slots = fork_slots;
            if !seq.admitted_before {
                seq.admitted_before = true;
                self.counters.prefix_lookup_tokens_total += seq.n_prompt as u64;
                self.counters.prefix_hit_tokens_total += n_cached as u64;
            }
            plan.admitted.push((id, n_cached));
            plan.seqs.push(Scheduled {
                id,
                slot,
                start: seq.n_computed,
                n_tokens,
                wants_logits: seq.n_computed + n_tokens == seq.tokens.len(),
            });
            self.running.push(id);
            *budget -= n_tokens;
        }
    }

    /// Maps the longest cached prefix of waiting sequence `id` and allocates blocks for its
    /// first chunk. Returns `(cached tokens, tokens to run)`, or `None` (nothing taken) when
    /// the blocks are not there.
    fn map_prefix_and_allocate(&mut self, id: SeqId, budget: usize) -> Option<(usize, usize)> {
        let bs = self.cfg.block_size;
        let seq = self.seqs.get_mut(&id).expect("waiting sequences exist");
        let mut hit = Vec::new();
        if self.cfg.prefix_cache {
            extend_hashes(&mut seq.hashes, &seq.tokens, bs, seq.hash_seed);
            hit = seq
                .hashes
                .iter()
                .map_while(|&h| self.pool.lookup(h))
                .collect();
            // Always compute at least the last token: its logits are needed.
            if hit.len() * bs >= seq.tokens.len() {
                hit.pop();
            }
        }
        let n_cached = hit.len() * bs;
        let n_tokens = (seq.tokens.len() - n_cached).min(budget);
        let needed = (n_cached + n_tokens).div_ceil(bs) - hit.len();
        for &b in &hit {
            self.pool.share(b);
        }
        let Some(new) = self.pool.allocate_n(needed) else {
            for &b in hit.iter().rev() {
                self.pool.release(b);
            }
            return None;
        };
        seq.blocks = hit;
        seq.blocks.extend(new);
        seq.n_computed = n_cached;
        Some((n_cached, n_tokens))
    }

    /// Sends running `id` back to the front of the queue, releasing its blocks and slots.
    fn preempt(&mut self, id: SeqId) {
        self.release_resources(id);
        self.running.retain(|&r| r != id);
        self.waiting.push_front(id);
        self.counters.preempted_total += 1;
    }

    /// Releases `id`'s blocks (last first, so tails are evicted before shared heads), slot
    /// and reserved fork slots, and forgets its computed tokens.
    fn release_resources(&mut self, id: SeqId) {
        let seq = self.seqs.get_mut(&id).expect("known sequence");
        // A copy into one of its blocks is no longer needed.
        let pool = &mut self.pool;
        self.pending_copies.retain(|&(src, dst)| {
            let keep = !seq.blocks.contains(&dst);
            if !keep {
                pool.release(src);
                pool.release(dst);
            }
            keep
        });
        for &b in seq.blocks.iter().rev() {
            self.pool.release(b);
        }
        seq.blocks.clear();
        seq.n_computed = 0;
        self.free_slots.extend(seq.slot.take());
        self.free_slots.extend(seq.fork_slots.drain(..));
    }

    /// Records that the plan's forward pass succeeded: advances each sequence's computed
    /// tokens and registers newly full blocks in the prefix cache.
    pub(crate) fn complete_step(&mut self, plan: &StepPlan) {
        let bs = self.cfg.block_size;
        for s in &plan.seqs {
            let Some(seq) = self.seqs.get_mut(&s.id) else {
                continue;
            };
            seq.n_computed = s.start + s.n_tokens;
            if !self.cfg.prefix_cache {
                continue;
            }
            let n_full = seq.n_computed / bs;
            extend_hashes(
                &mut seq.hashes,
                &seq.tokens[..n_full * bs],
                bs,
                seq.hash_seed,
            );
            for (&block, &hash) in seq.blocks.iter().zip(&seq.hashes).take(n_full) {
                self.pool.register(block, hash);
            }
        }
    }

    /// Drops the references held by the plan's copies (performed or abandoned).
    pub(crate) fn release_copies(&mut self, plan: &StepPlan) {
        for &(src, dst) in &plan.copies {
            if let Some(pos) = self.pending_copies.iter().position(|&c| c == (src, dst)) {
                self.pending_copies.remove(pos);
                self.pool.release(src);
                self.pool.release(dst);
            }
        }
    }

    /// Choices `id` will fork once its prompt is computed.
    pub(crate) fn pending_forks(&self, id: SeqId) -> usize {
        self.seqs.get(&id).map_or(0, |s| s.n_forks)
    }

    /// Appends a sampled token to running `id`.
    pub(crate) fn append(&mut self, id: SeqId, token: u32) {
        if let Some(seq) = self.seqs.get_mut(&id) {
            seq.tokens.push(token);
        }
    }

    /// Removes `id` (finished, cancelled or failed), releasing everything it holds.
    pub(crate) fn finish(&mut self, id: SeqId) {
        if !self.seqs.contains_key(&id) {
            return;
        }
        self.release_resources(id);
        self.running.retain(|&r| r != id);
        self.waiting.retain(|&w| w != id);
        self.seqs.remove(&id);
    }

    /// Checks the pool against every sequence's blocks and the pending copies (tests only).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let copy_refs: Vec<BlockId> = self
            .pending_copies
            .iter()
            .flat_map(|&(s, d)| [s, d])
            .collect();
        let mut tables: Vec<&[BlockId]> = self.seqs.values().map(|s| &s.blocks[..]).collect();
        tables.push(&copy_refs);
        self.pool.check(&tables);
        let held_slots = self
            .seqs
            .values()
            .map(|s| usize::from(s.slot.is_some()) + s.fork_slots.len())
            .sum::<usize>();
        assert_eq!(
            held_slots + self.free_slots.len(),
            self.cfg.max_running,
            "every slot is free or held once"
        );
        for id in &self.running {
            let s = &self.seqs[id];
            assert!(s.n_computed < s.tokens.len(), "running seqs have work");
            assert!(s.blocks.len() * self.cfg.block_size >= s.n_computed);
        }
    }
}

#[cfg(test)]
mod tests;

//! [`BlockPool`]: who holds which KV block. Pure bookkeeping over block ids; the KV
//! tensors live in the worker's `KvCache`.
//!
//! Each block is in exactly one of three states:
//! - **free**: in the free list, content meaningless. Handed out lowest id first, so the
//!   memory the cache touches stays compact.
//! - **held**: reference count ≥ 1 (several sequences may share a full prefix block).
//! - **cached**: reference count 0 but registered in the prefix cache under its chain hash;
//!   reusable by a later request with the same prefix, evicted least-recently-released first
//!   when the free list is empty.
//!
//! Invariant: `free + held + cached == n_blocks`, and a block is registered under at most
//! one hash and a hash names at most one block.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::core::prefix::BlockHash;

/// A KV block id, `< n_blocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BlockId(pub(crate) u32);

/// The block pool.
#[derive(Debug)]
pub(crate) struct BlockPool {
    ref_counts: Vec<u32>,
    free: BTreeSet<u32>,
    /// Hash of each registered block.
    hash_of: Vec<Option<BlockHash>>,
    /// Registered blocks by hash.
    by_hash: HashMap<BlockHash, BlockId>,
    /// Cached blocks (registered, reference count 0) by release tick: the first is the least
    /// recently used.
    evictable: BTreeMap<u64, BlockId>,
    /// Release tick of each evictable block (key into `evictable`).
    evictable_tick: Vec<Option<u64>>,
    tick: u64,
    n_held: usize,
}

impl BlockPool {
    /// A pool of `n_blocks` free blocks.
    pub(crate) fn new(n_blocks: usize) -> BlockPool {
        let n = u32::try_from(n_blocks).expect("block counts fit in u32 (checked at start)");
        BlockPool {
            ref_counts: vec![0; n_blocks],
            free: (0..n).collect(),
            hash_of: vec![None; n_blocks],
            by_hash: HashMap::new(),
            evictable: BTreeMap::new(),
            evictable_tick: vec![None; n_blocks],
            tick: 0,
            n_held: 0,
        }
    }

    /// Blocks in the pool.
    pub(crate) fn n_blocks(&self) -> usize {
        self.ref_counts.len()
    }

    /// Blocks held by at least one sequence.
    pub(crate) fn n_held(&self) -> usize {
        self.n_held
    }

    /// Blocks held by nobody but kept for the prefix cache.
    pub(crate) fn n_cached(&self) -> usize {
        self.evictable.len()
    }

    /// Blocks an allocation can still get (free plus evictable).
    pub(crate) fn n_available(&self) -> usize {
        self.free.len() + self.evictable.len()
    }

    /// Reference count of `block`.
    #[cfg(test)]
    pub(crate) fn ref_count(&self, block: BlockId) -> u32 {
        self.ref_counts[block.0 as usize]
    }

    /// A fresh block with reference count 1: the lowest free id, else the least recently
    /// used cached block (forgetting its hash). `None` when every block is held.
    pub(crate) fn allocate(&mut self) -> Option<BlockId> {
        let block = match self.free.pop_first() {
            Some(id) => BlockId(id),
            None => {
                let (_, block) = self.evictable.pop_first()?;
                self.evictable_tick[block.0 as usize] = None;
                let hash = self.hash_of[block.0 as usize]
                    .take()
                    .expect("evictable blocks are registered");
                self.by_hash.remove(&hash);
                block
            }
        };
        self.ref_counts[block.0 as usize] = 1;
        self.n_held += 1;
        Some(block)
    }

    /// `n` fresh blocks, or none at all (nothing is taken) when fewer are available.
    pub(crate) fn allocate_n(&mut self, n: usize) -> Option<Vec<BlockId>> {
        if self.n_available() < n {
            return None;
        }
        Some(
            (0..n)
                .map(|_| self.allocate().expect("availability checked above"))
                .collect(),
        )
    }

    /// The block registered under `hash`, if any (does not take a reference).
    pub(crate) fn lookup(&self, hash: BlockHash) -> Option<BlockId> {
        self.by_hash.get(&hash).copied()
    }

    /// Takes one more reference on `block`, which must be held or cached.
    pub(crate) fn share(&mut self, block: BlockId) {
        let idx = block.0 as usize;
        if self.ref_counts[idx] == 0 {
            let tick = self.evictable_tick[idx]
                .take()
                .expect("a block with no holder that is shared must be cached");
            self.evictable.remove(&tick);
            self.n_held += 1;
        }
        self.ref_counts[idx] += 1;
    }

    /// Registers the full, held `block` under `hash` so later requests can share it. When
    /// another block already holds `hash` (two sequences computed the same prefix), or the
    /// block is already registered, nothing changes.
    pub(crate) fn register(&mut self, block: BlockId, hash: BlockHash) {
        let idx = block.0 as usize;
        if self.hash_of[idx].is_some() || self.by_hash.contains_key(&hash) {
            return;
        }
        self.hash_of[idx] = Some(hash);
        self.by_hash.insert(hash, block);
    }

    /// Drops one reference on `block`. At zero it becomes cached (if registered) or free.
    ///
    /// Panics on a block nobody holds: that is a double free, a bug in the scheduler.
    pub(crate) fn release(&mut self, block: BlockId) {
        let idx = block.0 as usize;
        assert!(
            self.ref_counts[idx] > 0,
            "double free of KV block {}",
            block.0
        );
        self.ref_counts[idx] -= 1;
        if self.ref_counts[idx] > 0 {
            return;
        }
        self.n_held -= 1;
        if self.hash_of[idx].is_some() {
            self.tick += 1;
            self.evictable.insert(self.tick, block);
            self.evictable_tick[idx] = Some(self.tick);
        } else {
            self.free.insert(block.0);
        }
    }

    /// Checks the pool's invariants against the block tables that hold references; panics
    /// with the first violation (tests only).
    #[cfg(test)]
    pub(crate) fn check(&self, tables: &[&[BlockId]]) {
        let mut counts = vec![0u32; self.n_blocks()];
        for table in tables {
            for b in table.iter() {
                counts[b.0 as usize] += 1;
            }
        }
        assert_eq!(counts, self.ref_counts, "reference counts match the tables");
        let held = counts.iter().filter(|&&c| c > 0).count();
        assert_eq!(held, self.n_held, "held count");
        assert_eq!(
            self.free.len() + self.evictable.len() + held,
            self.n_blocks(),
            "every block is free, cached or held exactly once"
        );
        for &id in &self.free {
            assert_eq!(counts[id as usize], 0, "free block {id} is held");
            assert!(
                self.hash_of[id as usize].is_none(),
                "free block {id} has a hash"
            );
        }
        for b in self.evictable.values() {
            assert_eq!(counts[b.0 as usize], 0, "cached block {} is held", b.0);
            assert!(!self.free.contains(&b.0), "cached block {} is free", b.0);
        }
        for (hash, b) in &self.by_hash {
            assert_eq!(self.hash_of[b.0 as usize], Some(*hash), "hash index agrees");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: u64) -> BlockHash {
        BlockHash(x)
    }

    #[test]
    fn lowest_ids_first_and_exhaustion() {
        let mut pool = BlockPool::new(4);
        let a = pool.allocate_n(3).expect("3 of 4 are free");
        assert_eq!(a, vec![BlockId(0), BlockId(1), BlockId(2)]);
        assert!(pool.allocate_n(2).is_none(), "only one left");
        assert_eq!(pool.n_available(), 1, "a failed allocate_n takes nothing");
        pool.release(BlockId(1));
        assert_eq!(
            pool.allocate(),
            Some(BlockId(1)),
            "lowest free id comes back first"
        );
        assert_eq!(pool.allocate(), Some(BlockId(3)));
        assert_eq!(pool.allocate(), None);
        pool.check(&[&[BlockId(0), BlockId(1), BlockId(2), BlockId(3)]]);
    }

    #[test]
    fn shared_blocks_are_released_by_reference_count() {
        let mut pool = BlockPool::new(2);
        let b = pool.allocate().expect("free");
        pool.share(b);
        assert_eq!(pool.ref_count(b), 2);
        pool.release(b);
        assert_eq!(pool.n_held(), 1, "still held by the second owner");
        pool.check(&[&[b]]);
        pool.release(b);
        assert_eq!(pool.n_held(), 0);
        assert_eq!(pool.n_available(), 2);
        pool.check(&[]);
    }

    #[test]
    fn cached_blocks_are_reused_then_evicted_lru() {
        let mut pool = BlockPool::new(3);
        let blocks = pool.allocate_n(3).expect("all free");
        for (i, &b) in blocks.iter().enumerate() {
            pool.register(b, h(i as u64));
        }
        // Release in the order 2, 0, 1: block 2 is the least recently used.
        for i in [2, 0, 1] {
            pool.release(blocks[i]);
        }
        assert_eq!(pool.n_cached(), 3);
        assert_eq!(pool.lookup(h(0)), Some(blocks[0]));
        pool.share(blocks[0]);
        assert_eq!(pool.n_cached(), 2, "a hit takes the block out of the LRU");
        assert_eq!(pool.allocate(), Some(blocks[2]), "LRU victim first");
        assert_eq!(pool.lookup(h(2)), None, "evicted hash forgotten");
        assert_eq!(pool.allocate(), Some(blocks[1]));
        assert_eq!(pool.allocate(), None);
        pool.check(&[&[blocks[0], blocks[2], blocks[1]]]);
    }

    #[test]
    fn a_hash_names_one_block() {
        let mut pool = BlockPool::new(2);
        let (a, b) = (
            pool.allocate().expect("free"),
            pool.allocate().expect("free"),
        );
        pool.register(a, h(7));
        pool.register(b, h(7));
        assert_eq!(pool.lookup(h(7)), Some(a));
        pool.release(b);
        assert_eq!(
            pool.n_cached(),
            0,
            "the unregistered duplicate goes to the free list"
        );
        pool.release(a);
        assert_eq!(pool.n_cached(), 1);
        pool.check(&[]);
    }

    #[test]
    fn double_free_is_caught() {
        let result = std::panic::catch_unwind(|| {
            let mut pool = BlockPool::new(1);
            let b = pool.allocate().expect("free");
            pool.release(b);
            pool.release(b);
        });
        assert!(result.is_err(), "a second release of a free block panics");
    }
}

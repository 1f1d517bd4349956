//! Deterministic scheduler tests with no model: scripted arrivals and budgets run against a
//! simulated KV cache that stores token ids, so a wrong block table, a missed copy or a
//! write into a shared block shows up as a sequence reading back the wrong history.

use std::collections::HashMap;

use super::*;
use crate::core::prefix::HashSeed;

const SEED: HashSeed = HashSeed {
    salt: 0,
    model_id: 7,
};

/// A stand-in for the model: the next token is a function of the whole history.
fn next_token(history: &[u32]) -> u32 {
    let mut h: u32 = 17;
    for &t in history {
        h = h.wrapping_mul(31).wrapping_add(t);
    }
    h % 97 + 3
}

/// One request in a script: arrival step, prompt, tokens to generate, choices.
#[derive(Clone)]
struct Job {
    arrive: usize,
    prompt: Vec<u32>,
    max_tokens: usize,
    n: usize,
    salt: u64,
}

fn job(arrive: usize, prompt: Vec<u32>, max_tokens: usize) -> Job {
    Job {
        arrive,
        prompt,
        max_tokens,
        n: 1,
        salt: 0,
    }
}

/// The simulation: scheduler, KV contents by block, outputs per sequence.
struct Sim {
    sched: Scheduler,
    cfg: SchedConfig,
    /// `kv[block][row]`: the token stored there.
    kv: Vec<Vec<Option<u32>>>,
    outputs: HashMap<SeqId, Vec<u32>>,
    max_tokens: HashMap<SeqId, usize>,
    /// Every plan run, for assertions on the schedule itself.
    plans: Vec<StepPlan>,
    /// Forked choices of each first choice.
    children: HashMap<SeqId, Vec<SeqId>>,
    next_id: u64,
}

impl Sim {
    fn new(max_batch_tokens: usize, max_running: usize, block_size: usize, n_blocks: usize) -> Sim {
        let cfg = SchedConfig {
            max_batch_tokens,
            max_running,
            block_size,
            n_blocks,
            prefix_cache: true,
        };
        Sim {
            sched: Scheduler::new(cfg.clone()),
            cfg,
            kv: vec![vec![None; block_size]; n_blocks],
            outputs: HashMap::new(),
            max_tokens: HashMap::new(),
            plans: Vec::new(),
            children: HashMap::new(),
            next_id: 0,
        }
    }

    fn add(&mut self, job: &Job) -> SeqId {
        self.next_id += 1;
        let id = SeqId(self.next_id);
        self.sched.add(NewSeq {
            id,
            prompt: job.prompt.clone(),
            n_forks: job.n - 1,
            hash_seed: HashSeed {
                salt: job.salt,
                ..SEED
            },
        });
        self.max_tokens.insert(id, job.max_tokens);
        id
    }

    /// Runs one step: copies, writes through the block tables, reads back and checks the
    /// history of every sequence that samples, forks, samples, finishes.
    fn step(&mut self) {
        let plan = self.sched.schedule();
        assert!(
            plan.n_tokens() <= self.cfg.max_batch_tokens,
            "budget exceeded: {} > {}",
            plan.n_tokens(),
            self.cfg.max_batch_tokens
        );
        for &(src, dst) in &plan.copies {
            self.kv[dst.0 as usize] = self.kv[src.0 as usize].clone();
        }
        self.sched.release_copies(&plan);
        let bs = self.cfg.block_size;
        for s in &plan.seqs {
            let table = self.sched.block_table(s.id);
            let tokens = self.sched.tokens(s.id).to_vec();
            for pos in s.start..s.start + s.n_tokens {
                let block = table[pos / bs];
                assert_eq!(
                    self.sched.pool().ref_count(BlockId(block)),
                    1,
                    "seq {:?} writes position {pos} into shared block {block}",
                    s.id
                );
                self.kv[block as usize][pos % bs] = Some(tokens[pos]);
            }
        }
        self.sched.complete_step(&plan);
        for s in plan.seqs.iter().filter(|s| s.wants_logits) {
            let n_forks = self.sched.pending_forks(s.id);
            if n_forks > 0 {
                let children: Vec<SeqId> = (0..n_forks)
                    .map(|_| {
                        self.next_id += 1;
                        SeqId(self.next_id)
                    })
                    .collect();
                let created = self.sched.fork(s.id, &children);
                for &c in &created {
                    self.max_tokens.insert(c, self.max_tokens[&s.id]);
                }
                self.sample(s.id, true);
                // Forked choices sample from the parent's logits: nothing to read back yet
                // (their copy of the partial block happens before the next forward).
                for &c in &created {
                    self.sample(c, false);
                }
                self.children.insert(s.id, created);
            } else {
                self.sample(s.id, true);
            }
        }
        self.sched.check();
        self.plans.push(plan);
    }

    /// Reads `id`'s history back from the simulated KV and checks it (when `verify`),
    /// samples and appends or finishes.
    fn sample(&mut self, id: SeqId, verify: bool) {
        let bs = self.cfg.block_size;
        let tokens = self.sched.tokens(id).to_vec();
        let table = self.sched.block_table(id);
        if verify {
            let read: Vec<Option<u32>> = (0..tokens.len())
                .map(|pos| self.kv[table[pos / bs] as usize][pos % bs])
                .collect();
            let want: Vec<Option<u32>> = tokens.iter().map(|&t| Some(t)).collect();
            assert_eq!(read, want, "seq {id:?} reads its own history back");
        }
        let token = next_token(&tokens);
        let out = self.outputs.entry(id).or_default();
        out.push(token);
        if out.len() >= self.max_tokens[&id] {
            self.sched.finish(id);
        } else {
            self.sched.append(id, token);
        }
    }

    /// Runs `jobs` (arriving at their step) to completion; returns the outputs per job.
    fn run(&mut self, jobs: &[Job]) -> Vec<Vec<u32>> {
        let mut ids = vec![None; jobs.len()];
        for step in 0..10_000 {
            for (i, j) in jobs.iter().enumerate() {
                if j.arrive == step {
                    ids[i] = Some(self.add(j));
                }
            }
            if self.sched.is_idle() && jobs.iter().all(|j| j.arrive <= step) {
                break;
            }
            self.step();
        }
        assert!(self.sched.is_idle(), "every job completes");
        assert_eq!(self.sched.pool().n_held(), 0, "no block leaked");
        ids.iter()
            .map(|id| self.outputs[&id.expect("all arrived")].clone())
            .collect()
    }
}

/// The output a sequence must produce: the stand-in model run alone.
fn reference(prompt: &[u32], max_tokens: usize) -> Vec<u32> {
    let mut history = prompt.to_vec();
    let mut out = Vec::new();
    while out.len() < max_tokens {
        let t = next_token(&history);
        out.push(t);
        history.push(t);
    }
    out
}

/// A deterministic pseudo-random prompt.
fn prompt(seed: u32, len: usize) -> Vec<u32> {
    (0..len as u32)
        .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 40503)) % 1000)
        .collect()
}

fn scripted_jobs(n: usize) -> Vec<Job> {
    (0..n)
        .map(|i| job(i % 7, prompt(i as u32, 5 + (i * 13) % 40), 3 + (i * 5) % 17))
        .collect()
}

#[test]
fn budget_is_never_exceeded_and_outputs_match_alone() {
    for budget in [1, 3, 16, 64] {
        let jobs = scripted_jobs(20);
        let mut sim = Sim::new(budget, 8, 4, 400);
        let outputs = sim.run(&jobs);
        for (j, out) in jobs.iter().zip(&outputs) {
            assert_eq!(out, &reference(&j.prompt, j.max_tokens), "budget {budget}");
        }
    }
}

#[test]
fn decodes_go_first_and_long_prompts_are_chunked() {
    let mut sim = Sim::new(8, 4, 4, 100);
    let short = sim.add(&job(0, prompt(1, 3), 20));
    sim.step(); // prefill of the short prompt
    let long = sim.add(&job(0, prompt(2, 30), 2));
    for _ in 0..4 {
        sim.step();
        let plan = sim.plans.last().expect("a plan");
        assert_eq!(plan.seqs[0].id, short, "the decode comes first");
        assert_eq!(plan.seqs[0].n_tokens, 1);
        assert_eq!(plan.seqs[1].id, long);
        assert_eq!(
            plan.seqs[1].n_tokens, 7,
            "the prompt gets the rest of the budget"
        );
    }
}

#[test]
fn preempted_sequences_resume_exactly() {
    // 12 sequences of up to 45 tokens in 4-token blocks need ~140 blocks; give 30.
    let jobs = scripted_jobs(12);
    let mut sim = Sim::new(32, 8, 4, 30);
    let outputs = sim.run(&jobs);
    assert!(
        sim.sched.counters().preempted_total > 0,
        "the pool is small enough to force preemption"
    );
    for (j, out) in jobs.iter().zip(&outputs) {
        assert_eq!(out, &reference(&j.prompt, j.max_tokens));
    }
    let preempted = sim.plans.iter().flat_map(|p| &p.preempted).count() as u64;
    assert_eq!(preempted, sim.sched.counters().preempted_total);
}

#[test]
fn prefix_blocks_are_shared_and_released_by_reference_count() {
    let shared = prompt(9, 12); // three full 4-token blocks
    let mut first = shared.clone();
    first.extend([1, 2]);
    let mut second = shared.clone();
    second.extend([5, 6, 7]);
    let mut sim = Sim::new(64, 4, 4, 40);
    let a = sim.add(&job(0, first.clone(), 10));
    sim.step();
    let b = sim.add(&job(0, second.clone(), 10));
    sim.step();
    let plan = sim.plans.last().expect("a plan");
    assert_eq!(plan.admitted, vec![(b, 12)], "three cached blocks mapped");
    let (ta, tb) = (sim.sched.block_table(a), sim.sched.block_table(b));
    assert_eq!(ta[..3], tb[..3], "the prefix blocks are shared");
    for &block in &ta[..3] {
        assert_eq!(sim.sched.pool().ref_count(BlockId(block)), 2);
    }
    // A different salt never shares.
    let c = sim.add(&Job {
        salt: 1,
        ..job(0, first.clone(), 2)
    });
    sim.step();
    assert!(sim.plans.last().expect("a plan").admitted.contains(&(c, 0)));
    while !sim.sched.is_idle() {
        sim.step();
    }
    assert_eq!(sim.outputs[&a], reference(&first, 10));
    assert_eq!(sim.outputs[&b], reference(&second, 10));
    assert_eq!(sim.sched.pool().n_held(), 0);
    assert!(sim.sched.pool().n_cached() >= 3, "full blocks stay cached");
    // Counted once per admission: 14 + 15 + 14 prompt tokens looked up, 12 hit.
    let counters = sim.sched.counters();
    assert_eq!(counters.prefix_lookup_tokens_total, 43);
    assert_eq!(counters.prefix_hit_tokens_total, 12);
}

#[test]
fn a_fully_cached_prompt_recomputes_its_last_block() {
    let p = prompt(3, 8); // exactly two blocks
    let mut sim = Sim::new(64, 4, 4, 20);
    let a = sim.add(&job(0, p.clone(), 1));
    sim.step();
    assert!(sim.sched.is_idle());
    let b = sim.add(&job(0, p.clone(), 1));
    sim.step();
    let plan = sim.plans.last().expect("a plan");
    assert_eq!(plan.admitted, vec![(b, 4)], "the last block is recomputed");
    assert_eq!(plan.seqs[0].start, 4);
    assert_eq!(sim.outputs[&a], sim.outputs[&b]);
}

#[test]
fn forked_choices_share_full_blocks_and_copy_the_partial_one() {
    let p = prompt(4, 10); // two full 4-token blocks and a partial one
    let mut sim = Sim::new(64, 4, 4, 20);
    let parent = sim.add(&Job {
        n: 3,
        ..job(0, p.clone(), 6)
    });
    sim.step();
    let children: Vec<SeqId> = sim
        .outputs
        .keys()
        .copied()
        .filter(|&id| id != parent)
        .collect();
    assert_eq!(children.len(), 2, "two more choices after the prompt");
    let tp = sim.sched.block_table(parent);
    for &block in &tp[..2] {
        assert_eq!(sim.sched.pool().ref_count(BlockId(block)), 3);
    }
    for &c in &children {
        assert_eq!(sim.sched.block_table(c)[..2], tp[..2]);
        assert_ne!(sim.sched.block_table(c)[2], tp[2], "own copy of the tail");
    }
    sim.step();
    assert_eq!(
        sim.plans.last().expect("a plan").copies.len(),
        2,
        "the partial block is copied before the next forward"
    );
    while !sim.sched.is_idle() {
        sim.step();
    }
    // Same history, same stand-in model: every choice equals the reference.
    for id in std::iter::once(parent).chain(children) {
        assert_eq!(sim.outputs[&id], reference(&p, 6));
    }
    assert_eq!(sim.sched.pool().n_held(), 0);
}

#[test]
fn random_cancellations_leave_every_block_free() {
    let mut rng: u64 = 12345;
    let mut next = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as usize
    };
    let mut sim = Sim::new(24, 8, 4, 60);
    let mut live = Vec::new();
    let mut cancelled = 0;
    while cancelled < 200 {
        if live.len() < 10 {
            let j = Job {
                n: 1 + next() % 3,
                ..job(0, prompt(next() as u32 % 5, 3 + next() % 30), 50)
            };
            live.push(sim.add(&j));
        }
        sim.step();
        if next() % 2 == 0 {
            let victim = live.swap_remove(next() % live.len());
            // Cancel the request: its first choice and any forked ones.
            sim.sched.finish(victim);
            for id in sim.children.remove(&victim).unwrap_or_default() {
                sim.sched.finish(id);
            }
            cancelled += 1;
        }
        live.retain(|id| sim.sched.seqs.contains_key(id));
        sim.sched.check();
    }
    for id in sim.sched.seqs.keys().copied().collect::<Vec<_>>() {
        sim.sched.finish(id);
    }
    sim.sched.check();
    assert_eq!(sim.sched.pool().n_held(), 0);
    assert_eq!(
        sim.sched.pool().n_available(),
        60,
        "every block free or cached"
    );
    assert_eq!(sim.sched.free_slots.len(), 8, "every slot free");
}

//! The engine core thread: the only owner of the scheduler and the KV cache.
//!
//! The loop, in the shape of vLLM's engine core:
//! ```text
//! loop {
//!     take commands (block on the inbox when there is no work: no spinning)
//!     let plan = sched.schedule();          // who runs, how many tokens, which blocks
//!     let logits = execute(&plan)?;         // one batched Model::forward for all of them
//!     update(&plan, logits);                // sample per choice, stream, stop, free
//! }
//! ```
//! A failed forward pass fails the requests in that batch (an `Error` event each) and the
//! loop goes on; a failed draw fails only its request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, KvCache, Logits, Model};
use skiff_tokenizer::Tokenizer;

use crate::core::api::{EngineConfig, EngineStats, EventSender, Request, ShutdownMode};
use crate::core::output::{ChoiceState, RequestState};
use crate::core::prefix::{HashSeed, model_id};
use crate::core::scheduler::{NewSeq, Scheduler, SeqId, StepPlan};
use crate::core::setup;
use crate::error::{EngineError, Result};
use crate::generate::FinishReason;

/// A request accepted by `Engine::submit`, on its way to the core.
pub(crate) struct Submitted {
    /// Engine-wide request id.
    pub(crate) id: u64,
    /// The validated request.
    pub(crate) request: Request,
    /// Where its events go.
    pub(crate) events: EventSender,
}

/// What the outside sends to the core thread.
pub(crate) enum Command {
    /// A new request.
    Submit(Box<Submitted>),
    /// Stop the request with this id (unknown ids are ignored: it may have ended).
    Cancel(u64),
    /// Stop the core.
    Shutdown(ShutdownMode),
}

/// Everything the core thread owns from the start.
pub(crate) struct WorkerInit {
    pub(crate) model: Arc<Model>,
    pub(crate) tokenizer: Arc<Tokenizer>,
    pub(crate) cpu: Arc<Cpu>,
    pub(crate) config: EngineConfig,
    pub(crate) stats: Arc<Mutex<EngineStats>>,
    pub(crate) queued: Arc<AtomicUsize>,
}

/// Checks the configuration, builds the paged KV cache and starts the core thread.
pub(crate) fn spawn(init: WorkerInit, inbox: mpsc::Receiver<Command>) -> Result<JoinHandle<()>> {
    let (kv, sched) = setup::build_state(&init.model, &init.config)?;
    let thread = std::thread::Builder::new()
        .name("skiff-engine-core".into())
        .spawn(move || {
            let tokenizer = Arc::clone(&init.tokenizer);
            let mut core = Core::new(init, &tokenizer, kv, sched);
            core.run(&inbox);
        })
        .map_err(EngineError::CoreThread)?;
    Ok(thread)
}

/// Counters the core adds to the scheduler's.
#[derive(Default)]
struct Totals {
    prompt_tokens: u64,
    generated_tokens: u64,
    steps: u64,
}

/// The core's state, borrowed from the thread's tokenizer for the detokenizers.
pub(crate) struct Core<'t> {
    model: Arc<Model>,
    cpu: Arc<Cpu>,
    tokenizer: &'t Tokenizer,
    config: EngineConfig,
    kv: KvCache,
    pub(crate) sched: Scheduler,
    pub(crate) requests: HashMap<u64, RequestState>,
    pub(crate) choices: HashMap<SeqId, ChoiceState<'t>>,
    next_seq: u64,
    model_id: u64,
    stats: Arc<Mutex<EngineStats>>,
    queued: Arc<AtomicUsize>,
    totals: Totals,
    shutdown: Option<ShutdownMode>,
    /// The step's batch and logits, kept so a step reuses their buffers.
    batch: Batch,
    logits: Logits,
    /// A logits row that forks into several choices, kept while each samples its copy.
    fork_row: Vec<f32>,
    /// The block table of the sequence being mapped (`fill_batch`).
    block_table: Vec<u32>,
}

impl<'t> Core<'t> {
    fn new(init: WorkerInit, tokenizer: &'t Tokenizer, kv: KvCache, sched: Scheduler) -> Self {
        Core {
            model_id: model_id(init.model.spec()),
            model: init.model,
            cpu: init.cpu,
            tokenizer,
            config: init.config,
            kv,
            sched,
            requests: HashMap::new(),
            choices: HashMap::new(),
            next_seq: 0,
            stats: init.stats,
            queued: init.queued,
            totals: Totals::default(),
            shutdown: None,
            batch: Batch::default(),
            logits: Logits::default(),
            fork_row: Vec::new(),
            block_table: Vec::new(),
        }
    }

    /// Runs until shut down, or until every handle to the engine is gone.
    fn run(&mut self, inbox: &mpsc::Receiver<Command>) {
        self.publish_stats();
        loop {
            if self.sched.is_idle() {
                if self.shutdown.is_some() {
                    break;
                }
                match inbox.recv() {
                    Ok(command) => self.handle(command),
                    Err(mpsc::RecvError) => break,
                }
            }
            loop {
                match inbox.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.shutdown = Some(ShutdownMode::Cancel);
                        break;
                    }
                }
            }
            if self.shutdown == Some(ShutdownMode::Cancel) {
                self.cancel_all();
                break;
            }
            self.cancel_abandoned();
            if !self.sched.is_idle() {
                self.step();
            }
            self.publish_stats();
        }
        self.publish_stats();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit(submitted) => self.submit(*submitted),
            Command::Cancel(id) => self.end_request(id, FinishReason::Cancelled),
            Command::Shutdown(mode) => {
                // A Cancel asked for earlier wins over a later Drain.
                if self.shutdown != Some(ShutdownMode::Cancel) {
                    self.shutdown = Some(mode);
                }
            }
        }
    }

    /// Registers a request and queues its first choice.
    fn submit(&mut self, submitted: Submitted) {
        let Submitted {
            id,
            request,
            events,
        } = submitted;
        let first = self.new_seq_id();
        match RequestState::new(&request, self.tokenizer, events.clone(), first) {
            Ok((state, sampler)) => {
                self.sched.add(NewSeq {
                    id: first,
                    prompt: request.prompt,
                    n_forks: request.n - 1,
                    hash_seed: HashSeed {
                        salt: request.cache_salt,
                        model_id: self.model_id,
                    },
                });
                let choice = ChoiceState::new(self.tokenizer, &state, id, 0, sampler);
                self.choices.insert(first, choice);
                self.requests.insert(id, state);
            }
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                // A receiver already gone needs no error.
                let _ = events.send(crate::RequestEvent::Error {
                    message: e.to_string(),
                });
            }
        }
    }

    fn new_seq_id(&mut self) -> SeqId {
        self.next_seq += 1;
        SeqId(self.next_seq)
    }

    /// Cancels requests whose handle (and so event receiver) is gone.
    fn cancel_abandoned(&mut self) {
        let gone: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.events.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.end_request(id, FinishReason::Cancelled);
        }
    }

    fn cancel_all(&mut self) {
        let ids: Vec<u64> = self.requests.keys().copied().collect();
        for id in ids {
            self.end_request(id, FinishReason::Cancelled);
        }
    }

    /// One step: schedule, execute, update.
    fn step(&mut self) {
        let plan = self.sched.schedule();
        self.note_admissions(&plan);
        let copied = self.copy_blocks(&plan);
        if plan.seqs.is_empty() {
            return;
        }
        let mut logits = std::mem::take(&mut self.logits);
        match copied.and_then(|()| self.execute(&plan, &mut logits)) {
            Ok(()) => self.update(&plan, &mut logits),
            Err(e) => self.fail_plan(&plan, &e),
        }
        self.logits = logits;
        self.totals.steps += 1;
    }

    /// Sends `Started` for requests whose prompt is scheduled for the first time.
    fn note_admissions(&mut self, plan: &StepPlan) {
        for &(seq, n_cached) in &plan.admitted {
            let Some(choice) = self.choices.get(&seq) else {
                continue;
            };
            let Some(request) = self.requests.get_mut(&choice.request) else {
                continue;
            };
            if request.mark_started(n_cached) {
                self.queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
        for s in &plan.seqs {
            // A decode runs the one token sampled last step; everything else is prompt
            // (or recomputation after a preemption).
            let is_decode = s.n_tokens == 1
                && s.start >= self.sched.n_prompt(s.id)
                && s.start + 1 == self.sched.tokens(s.id).len();
            if !is_decode {
                self.totals.prompt_tokens += s.n_tokens as u64;
            }
        }
    }

    /// Performs the plan's copy-on-write block copies and drops the references they held.
    fn copy_blocks(&mut self, plan: &StepPlan) -> Result<()> {
        let copied: Result<()> = plan
            .copies
            .iter()
            .try_for_each(|&(src, dst)| Ok(self.kv.copy_block(src.0, dst.0)?));
        self.sched.release_copies(plan);
        copied
    }

    /// Maps the block tables and runs one forward pass over every scheduled token, into
    /// `logits`. The batch's buffers are kept for the next step.
    fn execute(&mut self, plan: &StepPlan, logits: &mut Logits) -> Result<()> {
        let mut batch = std::mem::take(&mut self.batch);
        let result = self.fill_batch(plan, &mut batch).and_then(|()| {
            Ok(self
                .model
                .forward_into(&batch, &mut self.kv, &self.cpu, logits)?)
        });
        self.batch = batch;
        result
    }

    /// Maps the block tables of `plan`'s sequences and writes their tokens into `batch`.
    fn fill_batch(&mut self, plan: &StepPlan, batch: &mut Batch) -> Result<()> {
        batch.clear();
        for s in &plan.seqs {
            self.sched.block_table_into(s.id, &mut self.block_table);
            self.kv.set_block_table(s.slot, &self.block_table)?;
            self.kv.set_slot_len(s.slot, s.start)?;
            let tokens = &self.sched.tokens(s.id)[s.start..s.start + s.n_tokens];
            for (i, &token) in tokens.iter().enumerate() {
                batch.tokens.push(token);
                batch.positions.push(
                    u32::try_from(s.start + i).expect("positions are below max_seq_len: u32"),
                );
                batch.seq_slots.push(s.slot);
            }
            if s.wants_logits {
                batch.logit_rows.push(batch.tokens.len() - 1);
            }
        }
        Ok(())
    }

    /// Advances the scheduler, forks pending choices, samples and streams every sequence
    /// whose logits came back. Each row is sampled in place (the sampler overwrites it with
    /// the biased and penalised logits); a row whose prompt forks into other choices is
    /// first kept in `fork_row`, and each choice samples from its own copy of it.
    fn update(&mut self, plan: &StepPlan, logits: &mut Logits) {
        self.sched.complete_step(plan);
        let got = logits.n_rows();
        let mut row = 0;
        for s in &plan.seqs {
            if !s.wants_logits {
                continue;
            }
            let Some(values) = logits.row_mut(row) else {
                let e = EngineError::MissingLogits {
                    expected: row + 1,
                    got,
                };
                self.fail_seq(s.id, &e);
                continue;
            };
            row += 1;
            let forks = self.fork(s.id);
            if forks.is_empty() {
                self.sample_and_emit(s.id, values);
                continue;
            }
            let mut original = std::mem::take(&mut self.fork_row);
            original.clear();
            original.extend_from_slice(values);
            self.sample_and_emit(s.id, values);
            for child in forks {
                values.copy_from_slice(&original);
                self.sample_and_emit(child, values);
            }
            self.fork_row = original;
        }
    }

    /// Creates the other choices of `id`'s request once its prompt is computed.
    fn fork(&mut self, id: SeqId) -> Vec<SeqId> {
        let n = self.sched.pending_forks(id);
        if n == 0 {
            return Vec::new();
        }
        let ids: Vec<SeqId> = (0..n).map(|_| self.new_seq_id()).collect();
        let created = self.sched.fork(id, &ids);
        let Some(request_id) = self.choices.get(&id).map(|c| c.request) else {
            return created;
        };
        for (i, &child) in created.iter().enumerate() {
            let choice = i + 1;
            let Some(request) = self.requests.get_mut(&request_id) else {
                continue;
            };
            match request.choice_params(choice, child) {
                Ok(sampler) => {
                    let state =
                        ChoiceState::new(self.tokenizer, request, request_id, choice, sampler);
                    self.choices.insert(child, state);
                }
                Err(e) => self.fail_request(request_id, &e),
            }
        }
        created
    }

    /// Samples `id`'s next token from its logits row and streams it, ending the choice
    /// when a stop condition holds.
    fn sample_and_emit(&mut self, id: SeqId, values: &mut [f32]) {
        let n_text_vocab = self.tokenizer.n_vocab();
        if let Some(padding) = values.get_mut(n_text_vocab..) {
            padding.fill(f32::NEG_INFINITY);
        }
        let Some(choice) = self.choices.get_mut(&id) else {
            return;
        };
        let Some(request) = self.requests.get_mut(&choice.request) else {
            return;
        };
        let history = self.sched.tokens(id);
        let outcome = choice.advance(request, values, history, self.config.max_seq_len);
        self.totals.generated_tokens += 1;
        match outcome {
            Ok(Some(token)) => self.sched.append(id, token),
            Ok(None) => self.remove_choice(id),
            Err(e) => {
                let request_id = choice.request;
                self.fail_request(request_id, &e);
            }
        }
    }

    /// Forgets a finished choice, and its request once every choice has finished.
    fn remove_choice(&mut self, id: SeqId) {
        self.sched.finish(id);
        if let Some(choice) = self.choices.remove(&id)
            && self
                .requests
                .get(&choice.request)
                .is_some_and(RequestState::is_done)
        {
            self.requests.remove(&choice.request);
        }
    }

    /// Ends every unfinished choice of request `id` with `reason` and forgets it.
    fn end_request(&mut self, id: u64, reason: FinishReason) {
        let Some(mut request) = self.requests.remove(&id) else {
            return;
        };
        if !request.was_started() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
        for seq in request.seqs() {
            self.sched.finish(seq);
            if let Some(mut choice) = self.choices.remove(&seq) {
                choice.finish(&mut request, reason);
            }
        }
        request.finish_unforked(reason);
    }

    /// Fails request `id`: one `Error` event, everything it holds freed.
    fn fail_request(&mut self, id: u64, error: &EngineError) {
        let Some(request) = self.requests.remove(&id) else {
            return;
        };
        if !request.was_started() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
        for seq in request.seqs() {
            self.sched.finish(seq);
            self.choices.remove(&seq);
        }
        request.send_error(error);
    }

    fn fail_seq(&mut self, seq: SeqId, error: &EngineError) {
        if let Some(request) = self.choices.get(&seq).map(|c| c.request) {
            self.fail_request(request, error);
        }
    }

    /// A failed forward pass: every request in the batch fails, the engine goes on.
    fn fail_plan(&mut self, plan: &StepPlan, error: &EngineError) {
        for s in &plan.seqs {
            self.fail_seq(s.id, error);
        }
    }

    fn publish_stats(&self) {
        let pool = self.sched.pool();
        let counters = self.sched.counters();
        let snapshot = EngineStats {
            waiting: self.sched.n_waiting(),
            running: self.sched.n_running(),
            preempted_total: counters.preempted_total,
            kv_blocks_total: pool.n_blocks(),
            kv_blocks_used: pool.n_held(),
            kv_blocks_cached: pool.n_cached(),
            prefix_hit_tokens_total: counters.prefix_hit_tokens_total,
            prefix_lookup_tokens_total: counters.prefix_lookup_tokens_total,
            prompt_tokens_total: self.totals.prompt_tokens,
            generated_tokens_total: self.totals.generated_tokens,
            steps_total: self.totals.steps,
        };
        *self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snapshot;
    }
}

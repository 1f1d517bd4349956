//! [`Session`]: one sequence's KV cache and the forward passes that fill it.
//!
//! This is the engine core for a single sequence: token ids in, logits out. It remembers
//! which tokens its cache holds, so a new prompt that extends (or shares a prefix with) the
//! previous one only runs the new tokens: a chat turn re-renders the whole conversation,
//! and the unchanged prefix costs nothing. Prompts run in chunks of `prefill_chunk` tokens
//! to bound activation memory. Invariant: `tokens.len() == kv.slot_len(SLOT)`.

use skiff_backend_cpu::Cpu;
use skiff_models::{Batch, KvCache, Logits, Model};

use crate::error::{EngineError, Result};

/// The KV slot a single-sequence session uses.
const SLOT: usize = 0;

/// How a [`Session`] is sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Context size in tokens (prompt plus generation); capped at the model's context.
    pub max_seq_len: usize,
    /// Tokens per forward pass while processing a prompt (llama.cpp's `n_ubatch` idea).
    pub prefill_chunk: usize,
}

impl Default for SessionConfig {
    /// A 4096-token context, prompts in chunks of 256.
    fn default() -> Self {
        Self {
            max_seq_len: 4096,
            prefill_chunk: 256,
        }
    }
}

/// The result of [`Session::prefill`].
#[derive(Clone, Debug, PartialEq)]
pub struct Prefilled {
    /// Logits of the prompt's last token, `[n_vocab]`.
    pub logits: Vec<f32>,
    /// Leading prompt tokens that were already cached and not run again.
    pub n_reused: usize,
}

/// One sequence on one model: its KV cache and the tokens in it.
pub struct Session<'m> {
    model: &'m Model,
    cpu: &'m Cpu,
    kv: KvCache,
    tokens: Vec<u32>,
    prefill_chunk: usize,
    /// The last forward pass's batch and logits, kept so the next one reuses their buffers.
    batch: Batch,
    logits: Logits,
}

impl<'m> Session<'m> {
    /// An empty session. Errors when `max_seq_len` or `prefill_chunk` is 0.
    pub fn new(model: &'m Model, cpu: &'m Cpu, config: &SessionConfig) -> Result<Self> {
        for (param, value) in [
            ("max_seq_len", config.max_seq_len),
            ("prefill_chunk", config.prefill_chunk),
        ] {
            if value == 0 {
                return Err(EngineError::InvalidParam {
                    param,
                    value: "0".into(),
                    allowed: "at least 1",
                });
            }
        }
        let kv = model.new_kv_cache(1, config.max_seq_len);
        Ok(Self {
            model,
            cpu,
            kv,
            tokens: Vec::new(),
            prefill_chunk: config.prefill_chunk,
            batch: Batch::default(),
            logits: Logits::default(),
        })
    }

    /// The model this session runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The context size in effect: the configured size capped at the model's context.
    pub fn max_seq_len(&self) -> usize {
        self.kv.max_seq_len()
    }

    /// The tokens whose keys and values are cached, in position order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets everything cached.
    pub fn clear(&mut self) {
        self.kv
            .clear_slot(SLOT)
            .expect("slot 0 exists: the cache was built with one slot");
        self.tokens.clear();
    }

    /// Makes the cache hold exactly `prompt` and returns the logits of its last token.
    /// The longest common prefix with the cached tokens is kept (all but the last prompt
    /// token at most, since its logits are needed); the rest runs in chunks.
    ///
    /// Errors: [`EngineError::EmptyPrompt`], [`EngineError::PromptTooLong`] (more tokens
    /// than the context), or a failed forward pass. After an error the cache holds a
    /// prefix of `prompt` and stays usable.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<Prefilled> {
        if prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if prompt.len() > self.max_seq_len() {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: prompt.len(),
                max_seq_len: self.max_seq_len(),
            });
        }
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let n_reused = common.min(prompt.len() - 1);
        self.truncate(n_reused);
        let mut start = n_reused;
        while start < prompt.len() {
            let end = (start + self.prefill_chunk).min(prompt.len());
            self.run(&prompt[start..end], end == prompt.len())?;
            start = end;
        }
        Ok(Prefilled {
            logits: std::mem::take(&mut self.logits.data),
            n_reused,
        })
    }

    /// Appends one token at the next position and returns its logits, `[n_vocab]`.
    ///
    /// Errors when the context is full ([`EngineError::PromptTooLong`] naming the new
    /// length) or the forward pass fails.
    pub fn decode(&mut self, token: u32) -> Result<Vec<f32>> {
        let mut logits = Vec::new();
        self.decode_into(token, &mut logits)?;
        Ok(logits)
    }

    /// [`Session::decode`] into `logits`, replacing its contents. The buffers are swapped,
    /// not copied: `logits`' old buffer becomes the session's next output buffer, so a
    /// decode loop that passes the same vector allocates nothing per token for them.
    pub fn decode_into(&mut self, token: u32, logits: &mut Vec<f32>) -> Result<()> {
        if self.tokens.len() >= self.max_seq_len() {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: self.tokens.len() + 1,
                max_seq_len: self.max_seq_len(),
            });
        }
        self.run(&[token], true)?;
        std::mem::swap(&mut self.logits.data, logits);
        Ok(())
    }

    /// Keeps the first `len` cached positions (`len` ≤ the cached length).
    fn truncate(&mut self, len: usize) {
        self.kv
            .truncate_slot(SLOT, len)
            .expect("slot 0 exists and len is at most the cached length");
        self.tokens.truncate(len);
    }

    /// Runs `tokens` at the next positions; leaves the last one's logits in `self.logits`
    /// when `want_logits`, else no rows.
    fn run(&mut self, tokens: &[u32], want_logits: bool) -> Result<()> {
        let start_pos = u32::try_from(self.tokens.len()).expect("context lengths fit in u32");
        self.batch.set_sequence(tokens, start_pos, SLOT);
        if !want_logits {
            self.batch.logit_rows.clear();
        }
        self.model
            .forward_into(&self.batch, &mut self.kv, self.cpu, &mut self.logits)?;
        self.tokens.extend_from_slice(tokens);
        let want_rows = usize::from(want_logits);
        if self.logits.n_rows() != want_rows {
            return Err(EngineError::MissingLogits {
                expected: want_rows,
                got: self.logits.n_rows(),
            });
        }
        Ok(())
    }
}

//! [`Model`]: an architecture loaded from a [`ModelFile`], run one flat batch at a time.
//!
//! `forward` validates the whole batch before computing anything, and commits the new
//! KV-cache lengths only after every layer succeeded: a failed call leaves each slot's
//! length as it was (rows written past it are overwritten by the next call).

use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_formats::{ModelFile, ModelSpec};

use crate::arch::Architecture;
use crate::batch::{Batch, Logits};
use crate::error::Result;
use crate::kv::KvCache;
use crate::layers::{Ctx, Scratch};
use crate::registry;
use crate::weights::Loader;

/// A loaded model: shared file, validated weights and the family's forward pass. It holds
/// no per-sequence state; share one across threads and pass each call its KV cache.
pub struct Model {
    file: Arc<ModelFile>,
    arch: Box<dyn Architecture>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.spec().arch)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Builds the architecture `file.spec().arch` names, checking every tensor it uses.
    ///
    /// Errors: `UnknownArchitecture` (with the supported list), `MissingTensor`,
    /// `ShapeMismatch` (naming the tensor and both shapes), `UnsupportedDType`, `BadHParam`.
    pub fn load(file: Arc<ModelFile>) -> Result<Model> {
        let (table, build) = registry::lookup(&file.spec().arch)?;
        let arch = build(&Loader::new(&file, table))?;
        Ok(Model { file, arch })
    }

    /// The model's description.
    pub fn spec(&self) -> &ModelSpec {
        self.file.spec()
    }

    /// Width of a logits row (rows of the embedding matrix).
    pub fn n_vocab(&self) -> usize {
        self.spec().hparams.n_vocab
    }

    /// The training context: positions `0..max_seq_len` are accepted.
    pub fn max_seq_len(&self) -> usize {
        self.spec().hparams.max_seq_len
    }

    /// A KV cache shaped for this model with `n_slots` sequences of up to `max_seq_len`
    /// positions (capped at the model's context).
    pub fn new_kv_cache(&self, n_slots: usize, max_seq_len: usize) -> KvCache {
        KvCache::new(
            &self.spec().hparams,
            n_slots,
            max_seq_len.min(self.max_seq_len()),
        )
    }

    /// Runs `batch`, appending its keys and values to `kv`, and returns the logits of
    /// `batch.logit_rows` in that order.
    ///
    /// Errors before any compute for a malformed batch (lengths, token ids, positions past
    /// the model's context or the cache's capacity, gaps in a slot's positions, slots and
    /// logit rows out of range) or a cache of another shape; during compute only for a
    /// backend failure.
    pub fn forward(&self, batch: &Batch, kv: &mut KvCache, cpu: &Cpu) -> Result<Logits> {
        let mut logits = Logits::default();
        self.forward_into(batch, kv, cpu, &mut logits)?;
        Ok(logits)
    }

    /// [`Model::forward`] into a caller's `logits`, whose buffer is reused: a decode loop
    /// that keeps one allocates nothing per step once the buffers have grown to its batch.
    /// On an error `logits` holds no rows.
    pub fn forward_into(
        &self,
        batch: &Batch,
        kv: &mut KvCache,
        cpu: &Cpu,
        logits: &mut Logits,
    ) -> Result<()> {
        logits.data.clear();
        let hp = &self.spec().hparams;
        kv.check_shape(hp)?;
        batch.validate(hp.n_vocab, hp.max_seq_len, kv)?;
        let ctx = Ctx {
            cpu,
            file: &self.file,
        };
        logits.n_vocab = hp.n_vocab;
        let computed = Scratch::with(|s| self.arch.forward(&ctx, batch, kv, s, &mut logits.data));
        if let Err(e) = computed {
            logits.data.clear();
            return Err(e);
        }
        for (&slot, &pos) in batch.seq_slots.iter().zip(&batch.positions) {
            kv.set_slot_len(slot, pos as usize + 1)?;
        }
        Ok(())
    }
}

//! Checking an [`EngineConfig`] against the model, then sizing the paged KV pool
//! (`kv_memory_bytes / KvCache::bytes_per_block` blocks) and the scheduler over it.

use skiff_models::kv::KvConfig;
use skiff_models::{KvCache, Model};

use crate::core::api::EngineConfig;
use crate::core::scheduler::{SchedConfig, Scheduler};
use crate::error::{EngineError, Result};

/// Fails with the named bad parameter.
fn invalid(param: &'static str, value: usize, allowed: &'static str) -> EngineError {
    EngineError::InvalidParam {
        param,
        value: value.to_string(),
        allowed,
    }
}

/// The KV pool and the scheduler for `config`, after checking every limit.
pub(crate) fn build_state(model: &Model, config: &EngineConfig) -> Result<(KvCache, Scheduler)> {
    for (param, value) in [
        ("max_batch_tokens", config.max_batch_tokens),
        ("max_running", config.max_running),
        ("block_size", config.block_size),
        ("max_seq_len", config.max_seq_len),
    ] {
        if value == 0 {
            return Err(invalid(param, 0, "at least 1"));
        }
    }
    if config.max_seq_len > model.max_seq_len() {
        return Err(invalid(
            "max_seq_len",
            config.max_seq_len,
            "at most the model's context",
        ));
    }
    let hp = &model.spec().hparams;
    let per_block = KvCache::bytes_per_block(hp, config.block_size, config.kv_dtype).max(1);
    let n_blocks = (config.kv_memory_bytes / per_block).min(u32::MAX as usize);
    if n_blocks * config.block_size < config.max_seq_len {
        return Err(EngineError::InvalidParam {
            param: "kv_memory_bytes",
            value: config.kv_memory_bytes.to_string(),
            allowed: "enough for one max_seq_len sequence: \
                      ceil(max_seq_len / block_size) * KvCache::bytes_per_block bytes",
        });
    }
    let kv_config = KvConfig {
        block_size: config.block_size,
        n_blocks,
        dtype: config.kv_dtype,
    };
    let kv = KvCache::paged(hp, config.max_running, config.max_seq_len, kv_config)?;
    let sched = Scheduler::new(SchedConfig {
        max_batch_tokens: config.max_batch_tokens,
        max_running: config.max_running,
        block_size: config.block_size,
        n_blocks,
        prefix_cache: config.prefix_cache,
    });
    Ok((kv, sched))
}

//! A served model: its engine, tokenizer and chat template, and how a request's prompt
//! becomes token ids.
//!
//! A model without a chat template gets ChatML, the same fallback llama.cpp's server uses,
//! so chat requests work on any model; the fallback is reported at load time.

use std::sync::Arc;

use skiff_backend_cpu::Cpu;
use skiff_engine::{Engine, EngineConfig, KvDtype};
use skiff_models::Model;
use skiff_tokenizer::{ChatTemplate, Message, Tokenizer};

use crate::error::{ApiError, ServerError};
use crate::wire::Prompt;

/// ChatML, for models that ship no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] \
    + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}\
    {{ '<|im_start|>assistant\n' }}{% endif %}";

/// What a loader hands over: a loaded model and the means to run it.
pub struct ModelBundle {
    /// The weights.
    pub model: Arc<Model>,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// The CPU backend (its thread pool) the engine computes on.
    pub cpu: Arc<Cpu>,
}

/// Engine sizing from the command line; `None` keeps [`EngineConfig::for_model`]'s value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineSettings {
    /// Sequences in the running set (`--max-running`).
    pub max_running: Option<usize>,
    /// Waiting requests before 429 (`--max-queue`).
    pub max_queue: Option<usize>,
    /// KV pool budget in bytes (`--kv-memory`).
    pub kv_memory_bytes: Option<usize>,
    /// KV element type (`--kv-type`).
    pub kv_dtype: Option<KvDtype>,
    /// Context per sequence (`--ctx`).
    pub max_seq_len: Option<usize>,
    /// Step token budget (`--max-batch-tokens`).
    pub max_batch_tokens: Option<usize>,
    /// Turn the prefix cache off (`--no-prefix-cache`).
    pub no_prefix_cache: bool,
}

impl EngineSettings {
    /// The engine configuration for `model`: its defaults with these overrides.
    pub fn config_for(&self, model: &Model) -> EngineConfig {
        let mut c = EngineConfig::for_model(model);
        if let Some(v) = self.max_seq_len {
            c.max_seq_len = v;
        }
        if let Some(v) = self.max_running {
            c.max_running = v;
        }
        if let Some(v) = self.max_queue {
            c.max_queue = v;
        }
        if let Some(v) = self.kv_dtype {
            c.kv_dtype = v;
        }
        if let Some(v) = self.kv_memory_bytes {
            c.kv_memory_bytes = v;
        }
        if let Some(v) = self.max_batch_tokens {
            c.max_batch_tokens = v;
        }
        c.prefix_cache = !self.no_prefix_cache;
        c
    }
}

/// One model being served.
pub struct ServedModel {
    /// The id clients name in `model`.
    pub id: String,
    /// The batching engine running it.
    pub engine: Engine,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// Its chat template (or ChatML).
    pub template: ChatTemplate,
    /// True when `template` is the ChatML fallback.
    pub fallback_template: bool,
    /// Unix seconds when it became ready.
    pub created: u64,
}

impl ServedModel {
    /// Starts the engine for `bundle` and compiles and self-tests its chat template.
    pub fn start(
        id: String,
        bundle: ModelBundle,
        settings: &EngineSettings,
    ) -> Result<ServedModel, ServerError> {
        let config = settings.config_for(&bundle.model);
        let (template, fallback_template) = template_for(&bundle.model, &bundle.tokenizer)
            .map_err(|e| ServerError::InvalidConfig {
                param: "chat template",
                value: e.to_string(),
                allowed: "a template that compiles and renders",
            })?;
        let engine = Engine::start(
            Arc::clone(&bundle.model),
            Arc::clone(&bundle.tokenizer),
            bundle.cpu,
            config,
        )
        .map_err(|source| ServerError::Engine {
            model: id.clone(),
            source,
        })?;
        Ok(ServedModel {
            id,
            engine,
            tokenizer: bundle.tokenizer,
            template,
            fallback_template,
            created: unix_now(),
        })
    }

    /// The context cap per sequence.
    pub fn max_seq_len(&self) -> usize {
        self.engine.config().max_seq_len
    }

    /// Renders `messages` through the template and tokenizes the result. Blocking: call it
    /// off the async workers.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, ApiError> {
        let text = self
            .template
            .render(messages, true, None)
            .map_err(|e| ApiError::invalid("messages", format!("rendering the chat: {e}")))?;
        self.tokenizer
            .encode_with_special_tokens(&text)
            .map_err(|e| ApiError::invalid("messages", e.to_string()))
    }

    /// Tokenizes a completion prompt; token-id prompts are checked against the vocabulary.
    /// Blocking.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Vec<u32>, ApiError> {
        match prompt {
            Prompt::Text(text) => self
                .tokenizer
                .encode(text, true)
                .map_err(|e| ApiError::invalid("prompt", e.to_string())),
            Prompt::Tokens(ids) => {
                let n_vocab = self.tokenizer.n_vocab();
                match ids.iter().find(|&&id| id as usize >= n_vocab) {
                    Some(id) => Err(ApiError::invalid(
                        "prompt",
                        format!("token id {id} is outside the vocabulary (n_vocab = {n_vocab})"),
                    )),
                    None => Ok(ids.clone()),
                }
            }
        }
    }

    /// The text of one token, for log-probability entries.
    pub fn token_text(&self, id: u32) -> String {
        self.tokenizer.decode(&[id], false).unwrap_or_default()
    }
}

/// The model's template with its bos/eos texts, else ChatML; self-tested either way.
fn template_for(
    model: &Model,
    tokenizer: &Tokenizer,
) -> Result<(ChatTemplate, bool), skiff_tokenizer::Error> {
    let text = |id: Option<u32>| {
        id.and_then(|id| tokenizer.token_text(id))
            .unwrap_or_default()
    };
    let (bos, eos) = (text(tokenizer.bos()), text(tokenizer.eos()));
    let (source, fallback) = match model.spec().chat_template.as_deref() {
        Some(source) => (source, false),
        None => (CHATML_TEMPLATE, true),
    };
    let template = ChatTemplate::new(source, bos, eos)?;
    template.self_test()?;
    Ok((template, fallback))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

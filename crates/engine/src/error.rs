//! [`EngineError`]: everything a generation or a perplexity run can fail with.

/// The errors of this crate. Each names the quantity at fault and its limit.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The prompt has no tokens.
    #[error("the prompt is empty: at least one token is needed")]
    EmptyPrompt,
    /// The prompt does not fit the context.
    #[error(
        "the prompt has {prompt_tokens} tokens but the context holds only {max_seq_len}; \
         shorten the prompt or use a larger context"
    )]
    PromptTooLong {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The context size in effect.
        max_seq_len: usize,
    },
    /// A generation or perplexity parameter is outside its allowed range.
    #[error("{param} = {value} is invalid: must be {allowed}")]
    InvalidParam {
        /// The parameter's name.
        param: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// The text is too short to measure perplexity with this context.
    #[error(
        "perplexity with a context of {n_ctx} needs at least {needed} tokens, but the text has \
         only {n_tokens}; use a longer text or a smaller context"
    )]
    NotEnoughTokens {
        /// Tokens in the text.
        n_tokens: usize,
        /// `2 * n_ctx`.
        needed: usize,
        /// The window size.
        n_ctx: usize,
    },
    /// The model returned fewer logit rows than requested (a bug in the model code).
    #[error("the model returned {got} logit rows, {expected} were requested")]
    MissingLogits {
        /// Rows requested.
        expected: usize,
        /// Rows returned.
        got: usize,
    },
    /// The engine's waiting queue is full; retry later.
    #[error("the engine queue is full: {limit} requests are already waiting; retry later")]
    QueueFull {
        /// `EngineConfig::max_queue`.
        limit: usize,
    },
    /// The prompt plus the requested completion does not fit the context.
    #[error(
        "the prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}, but together \
         they may hold at most {limit} tokens (the context); shorten the prompt or lower max_tokens"
    )]
    ContextExceeded {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The requested `max_tokens`.
        max_tokens: usize,
        /// `EngineConfig::max_seq_len`.
        limit: usize,
    },
    /// A request parameter is invalid.
    #[error("invalid request parameter {param}: {message}")]
    InvalidRequest {
        /// The parameter's name as the API spells it (`n`, `logprobs`, `temperature`, …).
        param: &'static str,
        /// What is wrong, naming the value and the limit.
        message: String,
    },
    /// The engine is shutting down and admits no new requests.
    #[error("the engine is shutting down and accepts no new requests")]
    ShuttingDown,
    /// The operating system refused to start the engine core thread.
    #[error("cannot start the engine core thread: {0}")]
    CoreThread(std::io::Error),
    /// Sampling failed (invalid parameters or unusable logits).
    #[error(transparent)]
    Sample(#[from] skiff_sample::SampleError),
    /// Detokenizing a generated token failed (an id outside the tokenizer's vocabulary).
    #[error(transparent)]
    Tokenizer(#[from] skiff_tokenizer::Error),
    /// The forward pass failed.
    #[error(transparent)]
    Model(#[from] skiff_models::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

//! The errors of this crate: invalid sampling parameters and unusable logits.

/// Everything that can go wrong when configuring a sampler or drawing a token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// A numeric parameter lies outside its allowed range (NaN and infinities included).
    #[error("{param} = {value} is out of range: must be {allowed}")]
    OutOfRange {
        /// The parameter's name, as the API spells it (`temperature`, `top_p`, …).
        param: &'static str,
        /// The rejected value.
        value: f64,
        /// The allowed range, in words (`finite and >= 0`, `in (0, 1]`, …).
        allowed: &'static str,
    },
    /// A list parameter has more entries than allowed.
    #[error("{param} has {count} entries; at most {max} are allowed")]
    TooMany {
        /// The parameter's name.
        param: &'static str,
        /// How many entries were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A logit bias names a token outside the vocabulary.
    #[error("logit_bias names token {token}, but the vocabulary has {n_vocab} tokens")]
    BiasTokenOutOfRange {
        /// The token id given.
        token: u32,
        /// The vocabulary size of the logits row.
        n_vocab: usize,
    },
    /// The logits row is empty.
    #[error("cannot sample from an empty logits row")]
    EmptyLogits,
    /// Every logit is NaN or negative infinity after processing, so no token can be drawn.
    #[error("no token can be sampled: all {n_vocab} logits are NaN or -inf")]
    NoFiniteLogits {
        /// The vocabulary size of the logits row.
        n_vocab: usize,
    },
}

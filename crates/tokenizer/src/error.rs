//! The crate's error type: one enum, one variant per way tokenization or template
//! rendering can fail, each carrying the values needed to act on it.

/// Everything that can go wrong while building a tokenizer, encoding, decoding or
/// rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model ships no tokenizer at all.
    #[error("the model ships no tokenizer")]
    NoTokenizer,
    /// `tokenizer.ggml.model` names a tokenizer family we do not implement.
    #[error("tokenizer model {model:?} is not supported (supported: {supported})")]
    UnsupportedModel {
        /// The value of `tokenizer.ggml.model`.
        model: String,
        /// Comma-separated list of the supported values.
        supported: &'static str,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer profile we have no regexes for.
    #[error(
        "pre-tokenizer {pre:?} is not supported; refusing to guess its regex (supported: {supported})"
    )]
    UnsupportedPre {
        /// The value of `tokenizer.ggml.pre`.
        pre: String,
        /// Comma-separated list of the supported values.
        supported: String,
    },
    /// A vocabulary field is inconsistent or malformed.
    #[error("bad tokenizer field {field}: {reason}")]
    BadVocab {
        /// The metadata field (GGUF key or tokenizer.json path).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A `tokenizer.json` larger than we accept.
    #[error("tokenizer.json is {len} bytes, above the {cap}-byte cap")]
    JsonTooLarge {
        /// Its size.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// A `tokenizer.json` whose decoder we cannot map onto per-token bytes.
    #[error(
        "tokenizer.json decoder {decoder} is not supported (supported: ByteLevel, Metaspace, SentencePiece-style Sequence)"
    )]
    UnsupportedDecoder {
        /// The decoder's JSON, abbreviated.
        decoder: String,
    },
    /// The Hugging Face `tokenizers` library refused an input or a construction step.
    #[error("tokenizers: {context}: {message}")]
    Tokenizers {
        /// What we were doing.
        context: &'static str,
        /// The library's message.
        message: String,
    },
    /// A token id at or above the vocabulary size.
    #[error("token id {id} is out of range for a vocabulary of {n_vocab}")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// The vocabulary size.
        n_vocab: usize,
    },
    /// Text to encode larger than we accept.
    #[error("text of {len} bytes exceeds the {cap}-byte encode limit")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        cap: usize,
    },
    /// A chat template larger than we accept (RELIABILITY §5: ≤ 1 MiB).
    #[error("chat template is {len} bytes, above the {cap}-byte cap")]
    TemplateTooLarge {
        /// Its size.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// A chat template that does not parse.
    #[error("chat template does not compile: {message}")]
    TemplateSyntax {
        /// minijinja's message, with line information.
        message: String,
    },
    /// The template called `raise_exception(message)`; `message` is exactly its argument.
    #[error("{message}")]
    TemplateRaised {
        /// The template's own message.
        message: String,
    },
    /// Rendering ran out of fuel, output space, recursion depth or range size.
    #[error("template exceeded its budget: {reason}")]
    TemplateBudget {
        /// Which limit was hit.
        reason: String,
    },
    /// Any other rendering failure (undefined method, type error, include attempt, …).
    #[error("chat template failed to render: {message}")]
    TemplateRender {
        /// minijinja's message.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a `tokenizers` library error with what we were doing.
    pub(crate) fn tokenizers(context: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Tokenizers {
            context,
            message: err.to_string(),
        }
    }
}

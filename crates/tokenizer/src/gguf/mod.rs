//! Builds a tokenizer from a vocabulary embedded in GGUF metadata.
//!
//! GGUF stores no `tokenizer.json`; llama.cpp reimplements each tokenizer family from
//! `tokenizer.ggml.*`. We reproduce llama.cpp's results (the parity tests under `tests/` pin
//! this):
//! - `gpt2`: a Hugging Face `tokenizers` byte-level BPE over `merges`, pre-split by the
//!   regexes of `tokenizer.ggml.pre` ([`pre`]);
//! - `llama`: SentencePiece BPE, llama.cpp's algorithm itself ([`spm`]): the adjacent pair
//!   whose concatenation is the highest-scoring vocabulary entry merges first. Spaces become
//!   `▁`, unknown characters fall back to `<0xXX>` bytes. (A `tokenizers` BPE would need a
//!   merge table of every split of every token: over 100 MiB to build for 262k entries.)
//!
//! Control and unknown tokens are not part of either pipeline: their text in input is
//! ordinary text unless the caller asks for special-token parsing, which
//! [`crate::Tokenizer`] does itself. User-defined tokens (GGUF type 4) are split out first,
//! as llama.cpp does.

mod bpe;
pub(crate) mod pre;
pub(crate) mod spm;

use std::collections::HashMap;

use skiff_formats::GgufVocab;
use tokenizers::AddedToken;

use crate::error::{Error, Result};
use crate::pieces::PieceStyle;
use crate::tokenizer::Encoder;
use crate::vocab::TokenClass;
use spm::SpmEncoder;

/// Most tokens a vocabulary may hold (ids must fit in `u32`, and no real model comes close).
const MAX_N_VOCAB: usize = 4 << 20;

/// What the GGUF converter hands to [`crate::Tokenizer`].
pub(crate) struct Built {
    /// The encoding pipeline.
    pub inner: Encoder,
    /// Token texts, with empty entries renamed `[EMPTY_{id}]` as llama.cpp does.
    pub tokens: Vec<String>,
    /// One class per token.
    pub classes: Vec<TokenClass>,
    /// How normal pieces decode.
    pub style: PieceStyle,
    /// Whether `encode(add_special = true)` prepends bos when the file does not say.
    pub default_add_bos: bool,
    /// `decode` drops one leading space (SentencePiece with `add_space_prefix`).
    pub strip_leading_space: bool,
    /// Human-readable description.
    pub kind: String,
}

/// Converts a GGUF vocabulary. Fails on unknown models or pre-tokenizers and on
/// inconsistent arrays, naming the field.
pub(crate) fn build(v: &GgufVocab) -> Result<Built> {
    let tokens = checked_tokens(&v.tokens)?;
    let classes = classes(v, tokens.len())?;
    let user_defined = || {
        (0u32..)
            .zip(&classes)
            .filter(|(_, c)| **c == TokenClass::UserDefined)
            .map(|(id, _)| id)
    };
    let (inner, style, default_add_bos, strip, kind) = match v.model.as_str() {
        "gpt2" => {
            let profile = pre::find(v.pre.as_deref()).ok_or_else(|| Error::UnsupportedPre {
                pre: v.pre.clone().unwrap_or_default(),
                supported: pre::supported_names(),
            })?;
            let ids = index(&tokens)?;
            let mut inner = bpe::build(&tokens, &ids, &v.merges, profile)?;
            let added: Vec<AddedToken> = user_defined()
                .map(|id| AddedToken::from(tokens[id as usize].clone(), false).normalized(false))
                .collect();
            inner
                .add_tokens(added)
                .map_err(|e| Error::tokenizers("adding user-defined tokens", e))?;
            inner.set_encode_special_tokens(true);
            let kind = format!("gpt2 BPE (pre: {})", v.pre.as_deref().unwrap_or("default"));
            (
                Encoder::Hf(Box::new(inner)),
                PieceStyle::ByteLevel,
                profile.add_bos,
                false,
                kind,
            )
        }
        "llama" => {
            let add_space_prefix = v.add_space_prefix.unwrap_or(true);
            let user: Vec<u32> = user_defined().collect();
            let spm = SpmEncoder::new(&tokens, &v.scores, add_space_prefix, v.special.unk, &user)?;
            let kind = format!("llama SentencePiece BPE (add_space_prefix: {add_space_prefix})");
            (
                Encoder::Spm(spm),
                PieceStyle::SentencePiece,
                true,
                add_space_prefix,
                kind,
            )
        }
        other => {
            return Err(Error::UnsupportedModel {
                model: other.to_string(),
                supported: "gpt2, llama",
            });
        }
    };
    Ok(Built {
        inner,
        tokens,
        classes,
        style,
        default_add_bos,
        strip_leading_space: strip,
        kind,
    })
}

/// Validates the token list: non-empty, not absurdly large (duplicates are refused as the
/// encoder indexes it). Empty entries are renamed `[EMPTY_{id}]` (llama.cpp does the same).
fn checked_tokens(tokens: &[String]) -> Result<Vec<String>> {
    const FIELD: &str = "tokenizer.ggml.tokens";
    if tokens.is_empty() {
        return Err(Error::BadVocab {
            field: FIELD,
            reason: "the vocabulary is empty".into(),
        });
    }
    if tokens.len() > MAX_N_VOCAB {
        return Err(Error::BadVocab {
            field: FIELD,
            reason: format!("{} tokens exceed the limit of {MAX_N_VOCAB}", tokens.len()),
        });
    }
    let renamed: Vec<String> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| {
            if t.is_empty() {
                format!("[EMPTY_{id}]")
            } else {
                t.clone()
            }
        })
        .collect();
    Ok(renamed)
}

/// The error for token text `text` at both `first` and `id`. Duplicates are found where each
/// encoder indexes the texts ([`index`], [`SpmEncoder::new`]), not in a map of their own.
pub(crate) fn duplicate_token(text: &str, first: u32, id: u32) -> Error {
    Error::BadVocab {
        field: "tokenizer.ggml.tokens",
        reason: format!("duplicate token {text:?} at ids {first} and {id}"),
    }
}

/// Token text → id, refusing a text that appears twice.
fn index(tokens: &[String]) -> Result<HashMap<&str, u32>> {
    let mut ids = HashMap::with_capacity(tokens.len());
    for (id, t) in (0u32..).zip(tokens) {
        if let Some(first) = ids.insert(t.as_str(), id) {
            return Err(duplicate_token(t, first, id));
        }
    }
    Ok(ids)
}

/// Token classes from `token_type` (all normal when absent); bos/eos/eot/pad become
/// control and unk becomes unknown if the file left them normal.
fn classes(v: &GgufVocab, n_vocab: usize) -> Result<Vec<TokenClass>> {
    let mut classes = match v.token_types.len() {
        0 => vec![TokenClass::Normal; n_vocab],
        n if n == n_vocab => v
            .token_types
            .iter()
            .map(|&t| TokenClass::from_gguf(t))
            .collect(),
        n => {
            return Err(Error::BadVocab {
                field: "tokenizer.ggml.token_type",
                reason: format!("{n} entries for {n_vocab} tokens"),
            });
        }
    };
    let s = &v.special;
    for (name, id) in [
        ("bos", s.bos),
        ("eos", s.eos),
        ("eot", s.eot),
        ("unk", s.unk),
        ("pad", s.pad),
    ] {
        let Some(id) = id else { continue };
        let Some(class) = classes.get_mut(id as usize) else {
            return Err(Error::BadVocab {
                field: "tokenizer.ggml special ids",
                reason: format!("{name} id {id} is outside the vocabulary of {n_vocab}"),
            });
        };
        if *class == TokenClass::Normal {
            *class = if name == "unk" {
                TokenClass::Unknown
            } else {
                TokenClass::Control
            };
        }
    }
    Ok(classes)
}

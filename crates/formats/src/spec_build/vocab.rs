//! The vocabulary embedded in GGUF metadata (`tokenizer.ggml.*`), validated.
//!
//! Checks (RELIABILITY G12): `tokens`, `scores` and `token_type` have equal lengths; scores
//! are FLOAT32; special ids lie inside the vocabulary; byte tokens read `<0xHH>`; every
//! merge joins two known tokens; `precompiled_charsmap` holds at least its 4-byte header;
//! the vocabulary is not empty and not longer than the embedding table.

use std::collections::HashSet;

use super::meta::{Meta, opt_array, opt_bool, opt_str, opt_u32};
use crate::error::{Error, Result};
use crate::gguf::MetaValue;
use crate::spec::{GgufVocab, SpecialTokens, TokenizerSpec};

const TOKENS: &str = "tokenizer.ggml.tokens";
const SCORES: &str = "tokenizer.ggml.scores";
const TYPES: &str = "tokenizer.ggml.token_type";
const MERGES: &str = "tokenizer.ggml.merges";
const CHARSMAP: &str = "tokenizer.ggml.precompiled_charsmap";
/// `token_type` value of byte-fallback tokens (`<0x41>`).
const TOKEN_TYPE_BYTE: i32 = 6;

/// The tokenizer described by `tokenizer.ggml.*`, or [`TokenizerSpec::Missing`].
pub(crate) fn gguf_tokenizer(md: &Meta) -> Result<TokenizerSpec> {
    let model = opt_str(md, "tokenizer.ggml.model")?;
    let Some(model) = model else {
        if md.contains_key(TOKENS) {
            return Err(Error::bad_tokenizer(
                "tokenizer.ggml.model",
                "missing while tokens are present",
            ));
        }
        return Ok(TokenizerSpec::Missing);
    };
    let tokens = strings(md, TOKENS)?;
    if tokens.is_empty() {
        return Err(Error::bad_tokenizer(TOKENS, "empty vocabulary"));
    }
    let scores = scores(md, tokens.len())?;
    let token_types = token_types(md, tokens.len())?;
    check_byte_tokens(&tokens, &token_types)?;
    let merges = strings(md, MERGES)?;
    check_merges(&tokens, &merges)?;
    check_charsmap(md)?;
    let special = special_tokens(md, tokens.len())?;
    Ok(TokenizerSpec::Gguf(GgufVocab {
        model: model.to_string(),
        pre: opt_str(md, "tokenizer.ggml.pre")?.map(str::to_string),
        tokens,
        scores,
        token_types,
        merges,
        add_space_prefix: opt_bool(md, "tokenizer.ggml.add_space_prefix")?,
        special,
    }))
}

/// The vocabulary must not name ids past the embedding table's `n_vocab` rows.
pub(crate) fn check_vocab_fits(tokenizer: &TokenizerSpec, n_vocab: usize) -> Result<()> {
    if let TokenizerSpec::Gguf(v) = tokenizer
        && v.tokens.len() > n_vocab
    {
        let reason = format!(
            "{} tokens but token_embd.weight has {n_vocab} rows",
            v.tokens.len()
        );
        return Err(Error::bad_tokenizer(TOKENS, reason));
    }
    Ok(())
}

fn strings(md: &Meta, key: &str) -> Result<Vec<String>> {
    let Some(items) = opt_array(md, key)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|v| match v {
            MetaValue::String(s) => Ok(s.clone()),
            other => Err(Error::bad_tokenizer(
                key,
                format!("element is {}, expected STRING", other.type_name()),
            )),
        })
        .collect()
}

fn check_len(key: &str, len: usize, n_tokens: usize) -> Result<()> {
    if len != n_tokens {
        return Err(Error::bad_tokenizer(
            key,
            format!("{len} entries but {n_tokens} tokens"),
        ));
    }
    Ok(())
}

fn scores(md: &Meta, n_tokens: usize) -> Result<Vec<f32>> {
    let Some(items) = opt_array(md, SCORES)? else {
        return Ok(Vec::new());
    };
    check_len(SCORES, items.len(), n_tokens)?;
    items
        .iter()
        .map(|v| match *v {
            MetaValue::F32(s) => Ok(s),
            ref other => Err(Error::bad_tokenizer(
                SCORES,
                format!("declared {}, expected FLOAT32", other.type_name()),
            )),
        })
        .collect()
}

fn token_types(md: &Meta, n_tokens: usize) -> Result<Vec<i32>> {
    let Some(items) = opt_array(md, TYPES)? else {
        return Ok(Vec::new());
    };
    check_len(TYPES, items.len(), n_tokens)?;
    items
        .iter()
        .map(|v| {
            v.as_i32().ok_or_else(|| {
                Error::bad_tokenizer(TYPES, format!("element {} is not an INT32", v.describe()))
            })
        })
        .collect()
}

fn check_byte_tokens(tokens: &[String], types: &[i32]) -> Result<()> {
    for (id, (tok, &ty)) in tokens.iter().zip(types).enumerate() {
        if ty != TOKEN_TYPE_BYTE {
            continue;
        }
        let hex = tok.strip_prefix("<0x").and_then(|s| s.strip_suffix('>'));
        let valid = hex.is_some_and(|h| h.len() == 2 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(Error::bad_tokenizer(
                TOKENS,
                format!("byte token {id} is {tok:?}, expected <0xHH>"),
            ));
        }
    }
    Ok(())
}

/// Each merge is `left right` (split at the first space after the first byte, as llama.cpp
/// does) with both halves in the vocabulary.
fn check_merges(tokens: &[String], merges: &[String]) -> Result<()> {
    if merges.is_empty() {
        return Ok(());
    }
    let known: HashSet<&str> = tokens.iter().map(String::as_str).collect();
    for (i, merge) in merges.iter().enumerate() {
        let split = merge
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == ' ')
            .map(|(at, _)| at);
        let halves = split.map(|at| (&merge[..at], &merge[at + 1..]));
        match halves {
            Some((l, r)) if known.contains(l) && known.contains(r) => {}
            _ => {
                return Err(Error::bad_tokenizer(
                    MERGES,
                    format!("merge {i} ({merge:?}) joins unknown tokens"),
                ));
            }
        }
    }
    Ok(())
}

fn check_charsmap(md: &Meta) -> Result<()> {
    if let Some(map) = opt_array(md, CHARSMAP)?
        && map.len() < 4
    {
        return Err(Error::bad_tokenizer(
            CHARSMAP,
            format!("{} bytes, shorter than its 4-byte header", map.len()),
        ));
    }
    Ok(())
}

fn special_tokens(md: &Meta, n_tokens: usize) -> Result<SpecialTokens> {
    let id = |name: &str| -> Result<Option<u32>> {
        let key = format!("tokenizer.ggml.{name}");
        let v = opt_u32(md, &key)?;
        if let Some(v) = v
            && v as usize >= n_tokens
        {
            return Err(Error::bad_tokenizer(
                &key,
                format!("id {v} is not below the vocabulary size {n_tokens}"),
            ));
        }
        Ok(v)
    };
    Ok(SpecialTokens {
        bos: id("bos_token_id")?,
        eos: id("eos_token_id")?,
        eot: id("eot_token_id")?,
        unk: id("unknown_token_id")?,
        pad: id("padding_token_id")?,
        add_bos: opt_bool(md, "tokenizer.ggml.add_bos_token")?,
        add_eos: opt_bool(md, "tokenizer.ggml.add_eos_token")?,
    })
}

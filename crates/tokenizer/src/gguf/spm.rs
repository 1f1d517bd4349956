//! GGUF `llama` vocabularies: SentencePiece BPE driven by token scores.
//!
//! llama.cpp's `llm_tokenizer_spm` starts from UTF-8 characters and repeatedly merges the
//! adjacent pair whose concatenation is a vocabulary entry with the highest score (ties go
//! to the leftmost pair). A `tokenizers` BPE whose merge list is every `(left, right)`
//! split of every token, ranked by the score of the token it forms, makes the same choices:
//! its merge loop takes the lowest rank first, ties to the leftmost position. This is also
//! how `transformers` rebuilds merges for GGUF SentencePiece vocabularies.

use std::collections::HashMap;

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::{Prepend, Replace, Sequence};
use tokenizers::{NormalizerWrapper, Tokenizer};

use crate::error::{Error, Result};

/// Builds the pipeline: spaces to `▁` (plus a leading `▁` with `add_space_prefix`), then
/// score-ranked BPE with byte fallback.
pub(crate) fn build(
    tokens: &[String],
    ids: &HashMap<&str, u32>,
    scores: &[f32],
    add_space_prefix: bool,
    unk: Option<String>,
) -> Result<Tokenizer> {
    if scores.len() != tokens.len() {
        return Err(Error::BadVocab {
            field: "tokenizer.ggml.scores",
            reason: format!(
                "{} scores for {} tokens (a llama vocabulary needs one per token)",
                scores.len(),
                tokens.len()
            ),
        });
    }
    let merges = merges_by_score(tokens, ids, scores);
    let vocab: Vocab = (0u32..)
        .zip(tokens)
        .map(|(id, t)| (t.clone(), id))
        .collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let model = builder
        .build()
        .map_err(|e| Error::tokenizers("building the SentencePiece BPE model", e))?;
    let replace = Replace::new(" ", "\u{2581}")
        .map_err(|e| Error::tokenizers("building the space normalizer", e))?;
    let mut steps: Vec<NormalizerWrapper> = Vec::with_capacity(2);
    if add_space_prefix {
        steps.push(Prepend::new("\u{2581}".into()).into());
    }
    steps.push(replace.into());
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(Sequence::new(steps)))
        .map_err(|e| Error::tokenizers("installing the normalizer", e))?;
    Ok(tokenizer)
}

/// Every `(left, right)` character split of every token whose halves are both tokens,
/// ordered by the formed token's score (highest first), then by its id, then by split
/// position, so the order is deterministic.
fn merges_by_score(
    tokens: &[String],
    ids: &HashMap<&str, u32>,
    scores: &[f32],
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f32, u32, usize)> = Vec::new();
    for (id, token) in (0u32..).zip(tokens) {
        for (at, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(at);
            if ids.contains_key(left) && ids.contains_key(right) {
                ranked.push((scores[id as usize], id, at));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .map(|(_, id, at)| {
            let (left, right) = tokens[id as usize].split_at(at);
            (left.to_string(), right.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges are ranked by the formed token's score, so the best-scoring token forms first.
    #[test]
    fn merges_follow_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        let ids: HashMap<&str, u32> = (0u32..)
            .zip(&tokens)
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let scores = [0.0, 0.0, 0.0, -5.0, -1.0, -3.0];
        let merges = merges_by_score(&tokens, &ids, &scores);
        let as_str: Vec<(&str, &str)> = merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            as_str,
            vec![("b", "c"), ("a", "bc"), ("ab", "c"), ("a", "b")]
        );
        let tok = build(&tokens, &ids, &scores, false, None).expect("builds");
        let enc = tok.encode_fast("abc", false).expect("encodes");
        assert_eq!(enc.get_ids(), &[5]);
    }
}

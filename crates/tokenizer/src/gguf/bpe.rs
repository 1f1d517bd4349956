//! GGUF `gpt2` vocabularies: byte-level BPE with regex pre-splitting.

use std::collections::HashMap;

use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::pre::PreProfile;
use crate::error::{Error, Result};

const FIELD: &str = "tokenizer.ggml.merges";

/// Builds the pipeline: `Split` per profile regex, then byte-to-unicode mapping, then BPE
/// with merge ranks in file order.
pub(crate) fn build(
    tokens: &[String],
    ids: &HashMap<&str, u32>,
    merges: &[String],
    profile: &PreProfile,
) -> Result<Tokenizer> {
    if merges.is_empty() {
        return Err(Error::BadVocab {
            field: FIELD,
            reason: "a gpt2 vocabulary needs merges; none present".into(),
        });
    }
    let pairs = parse_merges(merges, ids)?;
    let vocab: Vocab = (0u32..)
        .zip(tokens)
        .map(|(id, t)| (t.clone(), id))
        .collect();
    let model = BPE::builder()
        .vocab_and_merges(vocab, pairs)
        .ignore_merges(profile.ignore_merges)
        .build()
        .map_err(|e| Error::tokenizers("building the BPE model", e))?;
    let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(profile.regexes.len() + 1);
    for re in profile.regexes {
        let split = Split::new(
            SplitPattern::Regex((*re).to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| Error::tokenizers("compiling a pre-tokenizer regex", e))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(steps)));
    Ok(tokenizer)
}

/// Splits each `"left right"` merge at the first space after its first byte (llama.cpp's
/// rule, which lets a left part start with a space-like byte), checking both halves and
/// their concatenation are tokens.
fn parse_merges(merges: &[String], ids: &HashMap<&str, u32>) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(rank, m)| {
            let split = m
                .char_indices()
                .skip(1)
                .find(|(_, c)| *c == ' ')
                .map(|(i, _)| i);
            let Some(at) = split else {
                return Err(Error::BadVocab {
                    field: FIELD,
                    reason: format!("merge {rank} {m:?} has no separating space"),
                });
            };
            let (left, right) = (&m[..at], &m[at + 1..]);
            let joined = format!("{left}{right}");
            for part in [left, right, joined.as_str()] {
                if !ids.contains_key(part) {
                    return Err(Error::BadVocab {
                        field: FIELD,
                        reason: format!(
                            "merge {rank} {m:?} refers to {part:?}, which is not in the vocabulary"
                        ),
                    });
                }
            }
            Ok((left.to_string(), right.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(tokens: &[String]) -> HashMap<&str, u32> {
        (0u32..).zip(tokens).map(|(i, t)| (t.as_str(), i)).collect()
    }

    /// Merges naming unknown tokens or lacking a space are rejected with the merge's rank.
    #[test]
    fn bad_merges_are_rejected() {
        let tokens: Vec<String> = ["a", "b", "ab"].iter().map(|s| (*s).to_string()).collect();
        let ids = ids(&tokens);
        assert!(parse_merges(&["a b".into()], &ids).is_ok());
        let err = parse_merges(&["a b".into(), "a c".into()], &ids)
            .unwrap_err()
            .to_string();
        assert!(err.contains("merge 1") && err.contains("\"c\""), "{err}");
        assert!(parse_merges(&["ab".into()], &ids).is_err());
        assert!(
            parse_merges(&["b a".into()], &ids).is_err(),
            "joined \"ba\" is not a token"
        );
    }
}

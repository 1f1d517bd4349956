//! GGUF `llama` vocabularies: SentencePiece BPE driven by token scores, as llama.cpp's
//! `llm_tokenizer_spm` does it.
//!
//! The text (spaces as `▁`, plus a leading `▁` with `add_space_prefix`) starts as one
//! symbol per UTF-8 character. The adjacent pair whose concatenation is a vocabulary entry
//! with the highest score merges first (ties: the leftmost pair); the pairs it forms with
//! its neighbours join the queue; repeat until no pair is a token. A final symbol that is
//! not a token (an unknown character) becomes its bytes' `<0xXX>` tokens, or the unknown
//! token when the vocabulary lacks one of them.
//!
//! Nothing is derived from the vocabulary but a hash index of its texts: a merge table
//! (every split of every token that `tokenizers`' BPE would need) costs 515k pairs and over
//! 100 MiB while building for Gemma 3's 262k entries; this index costs 4 bytes a slot.

use std::collections::BinaryHeap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::error::{Error, Result};
use crate::special::{Fragment, SpecialMatcher, Strip};

/// The SentencePiece encoder of one vocabulary. It borrows the token texts from its
/// [`crate::Tokenizer`] at each call instead of holding a copy.
pub(crate) struct SpmEncoder {
    /// Open-addressing index of token texts: `id + 1` per slot, 0 empty; a power of two
    /// at least twice the vocabulary.
    slots: Vec<u32>,
    /// The index's hash, keyed at random per encoder: token texts come from the model file,
    /// and a file crafted to collide under a known key would make every lookup a long scan.
    hasher: RandomState,
    scores: Vec<f32>,
    /// The `<0xXX>` token of every byte, when the vocabulary has all 256.
    byte_tokens: Option<Box<[u32; 256]>>,
    unk: Option<u32>,
    add_space_prefix: bool,
    /// User-defined tokens (GGUF type 4), split out of the text before encoding.
    user_defined: SpecialMatcher,
}

/// A candidate merge of symbols `left` and `right` into a token of `score` and `len` bytes.
#[derive(PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    /// The max-heap pops the highest score first, then the leftmost pair.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One piece of the text being merged: bytes `start..start + len` of the normalized text,
/// linked to its live neighbours (`len == 0` once merged into its left neighbour).
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl SpmEncoder {
    /// The encoder of `tokens` with one score each; the ids in `user_defined` are split out
    /// of input text first.
    ///
    /// Errors: [`Error::BadVocab`] when the scores do not match the tokens or a token text
    /// appears twice.
    pub(crate) fn new(
        tokens: &[String],
        scores: &[f32],
        add_space_prefix: bool,
        unk: Option<u32>,
        user_defined: &[u32],
    ) -> Result<SpmEncoder> {
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
        let n_slots = (2 * tokens.len()).next_power_of_two().max(2);
        let mut enc = SpmEncoder {
            slots: vec![0; n_slots],
            hasher: RandomState::new(),
            scores: scores.to_vec(),
            byte_tokens: None,
            unk,
            add_space_prefix,
            user_defined: SpecialMatcher::new(
                user_defined
                    .iter()
                    .map(|&id| (tokens[id as usize].as_str(), id, Strip::default())),
            ),
        };
        let mask = n_slots - 1;
        for (id, token) in (0u32..).zip(tokens) {
            let mut at = enc.hasher.hash_one(token.as_str()) as usize & mask;
            while let Some(first) = enc.slots[at].checked_sub(1) {
                if tokens[first as usize] == *token {
                    return Err(super::duplicate_token(token, first, id));
                }
                at = (at + 1) & mask;
            }
            enc.slots[at] = id + 1;
        }
        let bytes: Option<Vec<u32>> = (0..=255u8)
            .map(|b| enc.find(tokens, &format!("<0x{b:02X}>")))
            .collect();
        enc.byte_tokens = bytes.map(|v| Box::new(std::array::from_fn(|i| v[i])));
        Ok(enc)
    }

    /// The id of the token whose text is `text`.
    fn find(&self, tokens: &[String], text: &str) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut at = self.hasher.hash_one(text) as usize & mask;
        loop {
            match self.slots[at] {
                0 => return None,
                id if tokens[id as usize - 1] == text => return Some(id - 1),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Appends the ids of `text` (the vocabulary's token texts are `tokens`).
    pub(crate) fn encode(&self, tokens: &[String], text: &str, out: &mut Vec<u32>) {
        for fragment in self.user_defined.split(text) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(t) => {
                    let mut normalized = String::with_capacity(t.len() + 3);
                    if self.add_space_prefix {
                        normalized.push('\u{2581}');
                    }
                    normalized.extend(t.chars().map(|c| if c == ' ' { '\u{2581}' } else { c }));
                    self.encode_normalized(tokens, &normalized, out);
                }
            }
        }
    }

    fn encode_normalized(&self, tokens: &[String], text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            let len = c.len_utf8();
            symbols.push(Symbol {
                start,
                len,
                prev: i.checked_sub(1),
                next: (start + len < text.len()).then_some(i + 1),
            });
        }
        let mut queue = BinaryHeap::new();
        let try_pair = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left, right| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let (l, r): (&Symbol, &Symbol) = (&symbols[left], &symbols[right]);
            let len = l.len + r.len;
            if let Some(id) = self.find(tokens, &text[l.start..l.start + len]) {
                let score = self.scores[id as usize];
                queue.push(Bigram {
                    score,
                    left,
                    right,
                    len,
                });
            }
        };
        for i in 1..symbols.len() {
            try_pair(&mut queue, &symbols, Some(i - 1), Some(i));
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            // A side already merged elsewhere: the pair is stale.
            if l.len == 0 || r.len == 0 || l.len + r.len != b.len {
                continue;
            }
            symbols[b.left].len = b.len;
            symbols[b.left].next = r.next;
            symbols[b.right].len = 0;
            if let Some(next) = r.next {
                symbols[next].prev = Some(b.left);
            }
            try_pair(&mut queue, &symbols, l.prev, Some(b.left));
            try_pair(&mut queue, &symbols, Some(b.left), r.next);
        }
        let mut at = (!symbols.is_empty()).then_some(0);
        let mut last_unk = false;
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            if let Some(id) = self.find(tokens, piece) {
                out.push(id);
                last_unk = false;
            } else if let Some(bytes) = &self.byte_tokens {
                out.extend(piece.bytes().map(|b| bytes[b as usize]));
                last_unk = false;
            } else if let Some(unk) = self.unk {
                // Consecutive unknown pieces become one unknown token.
                if !last_unk {
                    out.push(unk);
                }
                last_unk = true;
            }
            at = s.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    /// The best-scoring token forms first, whatever the pair order: `bc` (-1) beats `ab`
    /// (-5), then `a`+`bc` forms `abc`.
    #[test]
    fn merges_follow_scores() {
        let tokens = strings(&["a", "b", "c", "ab", "bc", "abc"]);
        let scores = [0.0, 0.0, 0.0, -5.0, -1.0, -3.0];
        let enc = SpmEncoder::new(&tokens, &scores, false, None, &[]).expect("builds");
        let mut out = Vec::new();
        enc.encode(&tokens, "abc", &mut out);
        assert_eq!(out, [5]);
        // Without `abc` the better pair `bc` still wins over `ab`.
        let tokens = strings(&["a", "b", "c", "ab", "bc"]);
        let enc = SpmEncoder::new(&tokens, &scores[..5], false, None, &[]).expect("builds");
        out.clear();
        enc.encode(&tokens, "abc", &mut out);
        assert_eq!(out, [0, 4]);
    }

    /// Equal scores merge the leftmost pair first.
    #[test]
    fn ties_go_to_the_leftmost_pair() {
        let tokens = strings(&["a", "aa"]);
        let enc = SpmEncoder::new(&tokens, &[0.0, -1.0], false, None, &[]).expect("builds");
        let mut out = Vec::new();
        enc.encode(&tokens, "aaa", &mut out);
        assert_eq!(out, [1, 0]);
    }

    /// Spaces become `▁` (with one prefixed), unknown characters fall back to byte tokens,
    /// or to one unknown token per run when byte tokens are missing; user-defined tokens are
    /// split out first.
    #[test]
    fn spaces_bytes_unknown_and_user_defined() {
        let mut tokens = strings(&["<unk>", "\u{2581}", "a", "\u{2581}a", "<u>"]);
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        let scores = vec![0.0; tokens.len()];
        let enc = SpmEncoder::new(&tokens, &scores, true, Some(0), &[4]).expect("builds");
        let mut out = Vec::new();
        enc.encode(&tokens, "a a<u>é", &mut out);
        // "▁a▁a" then <u>, then "▁é" as ▁ + the bytes C3 A9.
        assert_eq!(out, [3, 3, 4, 1, 5 + 0xC3, 5 + 0xA9]);
        let tokens = &tokens[..5];
        let enc = SpmEncoder::new(tokens, &scores[..5], false, Some(0), &[]).expect("builds");
        out.clear();
        enc.encode(tokens, "éé a", &mut out);
        assert_eq!(out, [0, 3]);
    }

    #[test]
    fn scores_must_match_tokens() {
        let tokens = strings(&["a", "b"]);
        assert!(matches!(
            SpmEncoder::new(&tokens, &[0.0], false, None, &[]),
            Err(Error::BadVocab { .. })
        ));
    }
}

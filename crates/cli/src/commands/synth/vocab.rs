//! The tokenizer of a synthesized model: copied from a real model of the same family
//! (`--tokenizer-from`), padded to the shape's vocabulary as llama.cpp's converter pads
//! (`[PAD{i}]`, type UNUSED), or a small synthetic byte-level BPE vocabulary.

use anyhow::{Context, bail};
use skiff_formats::{MetaValue, ModelFile};

/// llama.cpp token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const UNUSED: i32 = 5;

/// GPT-2's byte-to-unicode table: byte `b` is written as this character in the vocabulary.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("256 + rank < 512 is a valid char")
}

/// `tokenizer.*` keys of a synthetic byte-level BPE vocabulary of exactly `n_vocab` tokens:
/// 256 byte tokens, `<|endoftext|>` (bos = eos), merged pairs of lowercase letters and
/// `Ġ`-prefixed letters, then `[PAD{i}]` up to `n_vocab`.
pub fn synthetic(n_vocab: usize) -> anyhow::Result<Vec<(String, MetaValue)>> {
    if n_vocab < 260 {
        bail!("a synthetic vocabulary needs at least 260 tokens, the shape has {n_vocab}");
    }
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let mut types = vec![NORMAL; 256];
    let eot = tokens.len();
    tokens.push("<|endoftext|>".to_string());
    types.push(CONTROL);
    let letters: Vec<String> = ('a'..='z').map(String::from).collect();
    let space = byte_char(b' ').to_string();
    let mut heads: Vec<String> = letters.iter().map(|l| format!("{space}{l}")).collect();
    heads.extend(letters.iter().cloned());
    // Each merge's parts exist before it: "Ġ x" first, then "Ġx y" and "x y".
    let mut merges: Vec<String> = letters.iter().map(|l| format!("{space} {l}")).collect();
    merges.extend(
        heads
            .iter()
            .flat_map(|h| letters.iter().map(move |l| format!("{h} {l}"))),
    );
    merges.truncate(n_vocab - tokens.len());
    for merge in &merges {
        tokens.push(merge.replace(' ', ""));
        types.push(NORMAL);
    }
    pad(&mut tokens, &mut types, n_vocab);
    let eot = MetaValue::U32(u32::try_from(eot).expect("256 fits u32"));
    Ok(vec![
        key_str("tokenizer.ggml.model", "gpt2"),
        key_str("tokenizer.ggml.pre", "default"),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        ("tokenizer.ggml.token_type".into(), ints(&types)),
        ("tokenizer.ggml.merges".into(), strings(merges)),
        ("tokenizer.ggml.bos_token_id".into(), eot.clone()),
        ("tokenizer.ggml.eos_token_id".into(), eot),
        (
            "tokenizer.ggml.add_bos_token".into(),
            MetaValue::Bool(false),
        ),
    ])
}

/// The `tokenizer.*` keys of the GGUF file `path`, with its token arrays padded to
/// `n_vocab`. Errors when the file's vocabulary is larger than `n_vocab`.
pub fn copied_from(
    path: &std::path::Path,
    n_vocab: usize,
) -> anyhow::Result<Vec<(String, MetaValue)>> {
    let file = ModelFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    let md = &file.spec().metadata;
    let n_tokens = md
        .get("tokenizer.ggml.tokens")
        .and_then(MetaValue::as_array)
        .map(<[MetaValue]>::len)
        .with_context(|| format!("{} has no tokenizer.ggml.tokens", path.display()))?;
    if n_tokens > n_vocab {
        bail!(
            "{} has {n_tokens} tokens, more than the shape's vocabulary of {n_vocab}",
            path.display()
        );
    }
    let mut out = Vec::new();
    for (key, value) in md.range("tokenizer.".to_string()..) {
        if !key.starts_with("tokenizer.") {
            break;
        }
        let value = match (key.as_str(), value) {
            ("tokenizer.ggml.tokens", MetaValue::Array(items)) => {
                let mut items = items.clone();
                items.extend((n_tokens..n_vocab).map(|i| MetaValue::String(format!("[PAD{i}]"))));
                MetaValue::Array(items)
            }
            ("tokenizer.ggml.token_type", MetaValue::Array(items)) => {
                let mut items = items.clone();
                items.resize(n_vocab.max(items.len()), MetaValue::I32(UNUSED));
                MetaValue::Array(items)
            }
            ("tokenizer.ggml.scores", MetaValue::Array(items)) => {
                let mut items = items.clone();
                items.resize(n_vocab.max(items.len()), MetaValue::F32(-1000.0));
                MetaValue::Array(items)
            }
            _ => value.clone(),
        };
        out.push((key.clone(), value));
    }
    Ok(out)
}

fn pad(tokens: &mut Vec<String>, types: &mut Vec<i32>, n_vocab: usize) {
    for i in tokens.len()..n_vocab {
        tokens.push(format!("[PAD{i}]"));
        types.push(UNUSED);
    }
}

fn key_str(key: &str, value: &str) -> (String, MetaValue) {
    (key.to_string(), MetaValue::String(value.to_string()))
}

fn strings(items: Vec<String>) -> MetaValue {
    MetaValue::Array(items.into_iter().map(MetaValue::String).collect())
}

fn ints(items: &[i32]) -> MetaValue {
    MetaValue::Array(items.iter().map(|&t| MetaValue::I32(t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array<'a>(md: &'a [(String, MetaValue)], key: &str) -> &'a [MetaValue] {
        md.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_array())
            .expect("key present")
    }

    #[test]
    fn byte_chars_follow_gpt2() {
        assert_eq!(byte_char(b'a'), 'a');
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn synthetic_vocab_has_exactly_n_tokens_and_valid_merges() {
        for n_vocab in [260, 384, 5000] {
            let md = synthetic(n_vocab).expect("builds");
            let tokens = array(&md, "tokenizer.ggml.tokens");
            assert_eq!(tokens.len(), n_vocab);
            assert_eq!(array(&md, "tokenizer.ggml.token_type").len(), n_vocab);
            let known: std::collections::HashSet<&str> =
                tokens.iter().filter_map(MetaValue::as_str).collect();
            for m in array(&md, "tokenizer.ggml.merges") {
                let m = m.as_str().expect("string");
                let (a, b) = m.split_once(' ').expect("pair");
                assert!(
                    known.contains(a) && known.contains(b) && known.contains(&*format!("{a}{b}")),
                    "{m}"
                );
            }
        }
        assert!(synthetic(100).is_err());
    }
}

//! Tokenizers from a Hugging Face `tokenizer.json`.
//!
//! The file is handed to the `tokenizers` library as is. What decoding needs per token
//! is derived from the file's `decoder`: byte-level (GPT-2 family) or SentencePiece style
//! (`Metaspace`, or the `Replace ▁ / ByteFallback / Fuse / Strip` sequence of Llama 2 and
//! Gemma). Added tokens marked `special` become control tokens; the others user-defined.
//! Special-token text in rendered templates is recognised by the library itself.
//!
//! One deliberate difference from the library: under a bare `Metaspace` decoder the
//! library prints byte-fallback tokens as `<0xXX>` text and drops every `▁` of the first
//! token; we decode the bytes and drop one leading space, as SentencePiece and llama.cpp do.

use serde_json::Value;
use skiff_formats::SpecialTokens;

use crate::error::{Error, Result};
use crate::pieces::{PieceStyle, parse_byte_token};
use crate::tokenizer::Encoder;
use crate::tokenizer::Parts;
use crate::vocab::TokenClass;

/// Largest `tokenizer.json` accepted (RELIABILITY S5).
pub const MAX_TOKENIZER_JSON_BYTES: usize = 64 << 20;

/// Builds the parts of a tokenizer from `tokenizer.json` bytes.
pub(crate) fn build(json: &[u8], special: &SpecialTokens) -> Result<Parts> {
    if json.len() > MAX_TOKENIZER_JSON_BYTES {
        return Err(Error::JsonTooLarge {
            len: json.len(),
            cap: MAX_TOKENIZER_JSON_BYTES,
        });
    }
    let doc: Value = serde_json::from_slice(json).map_err(|e| Error::BadVocab {
        field: "tokenizer.json",
        reason: e.to_string(),
    })?;
    let (style, strip_leading_space) = decoder_style(doc.get("decoder").unwrap_or(&Value::Null))?;
    let byte_fallback = doc
        .pointer("/model/byte_fallback")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut inner = tokenizers::Tokenizer::from_bytes(json)
        .map_err(|e| Error::tokenizers("loading tokenizer.json", e))?;
    inner.set_encode_special_tokens(true);

    let n_vocab = inner.get_vocab_size(true);
    let mut tokens = vec![String::new(); n_vocab];
    for (text, id) in inner.get_vocab(true) {
        match tokens.get_mut(id as usize) {
            Some(slot) => *slot = text,
            None => {
                return Err(Error::BadVocab {
                    field: "tokenizer.json model.vocab",
                    reason: format!(
                        "id {id} of {text:?} is not below the vocabulary size {n_vocab}"
                    ),
                });
            }
        }
    }
    let mut classes: Vec<TokenClass> = tokens
        .iter()
        .map(|t| {
            if byte_fallback && parse_byte_token(t).is_some() {
                TokenClass::Byte
            } else {
                TokenClass::Normal
            }
        })
        .collect();
    for (id, added) in inner.get_added_tokens_decoder() {
        if let Some(class) = classes.get_mut(id as usize) {
            *class = if added.special {
                TokenClass::Control
            } else {
                TokenClass::UserDefined
            };
        }
    }
    let default_add_bos = adds_bos_by_post_processor(&inner, special.bos)?;
    // Rendered templates are split by the library itself, so that `lstrip`/`rstrip`, and a
    // Metaspace pre-tokenizer's "prefix only the first section" rule, apply exactly as in
    // `transformers`. This costs a second copy of the pipeline.
    let mut special_inner = inner.clone();
    special_inner.set_encode_special_tokens(false);
    Ok(Parts {
        inner: Encoder::Hf(Box::new(inner)),
        special_inner: Some(special_inner),
        tokens,
        classes,
        style,
        special: special.clone(),
        default_add_bos,
        strip_leading_space,
        kind: format!(
            "tokenizer.json {}",
            doc.pointer("/model/type")
                .and_then(Value::as_str)
                .unwrap_or("model")
        ),
    })
}

/// Whether the file's post-processor puts bos in front of an encoding (Llama 3's
/// `TemplateProcessing` does; files with a `add_bos_token` flag say so explicitly instead).
fn adds_bos_by_post_processor(inner: &tokenizers::Tokenizer, bos: Option<u32>) -> Result<bool> {
    let Some(bos) = bos else { return Ok(false) };
    let enc = inner
        .encode_fast("a", true)
        .map_err(|e| Error::tokenizers("probing the post-processor", e))?;
    Ok(enc.get_ids().first() == Some(&bos))
}

/// Maps a `decoder` to a piece style and whether decoding strips one leading space.
fn decoder_style(decoder: &Value) -> Result<(PieceStyle, bool)> {
    let kind = decoder.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "ByteLevel" => Ok((PieceStyle::ByteLevel, false)),
        "Metaspace" => {
            let scheme = decoder.get("prepend_scheme").and_then(Value::as_str);
            let legacy = decoder.get("add_prefix_space").and_then(Value::as_bool);
            Ok((
                PieceStyle::SentencePiece,
                scheme.map_or(legacy.unwrap_or(true), |s| s != "never"),
            ))
        }
        "Sequence" => {
            let steps = decoder
                .get("decoders")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let kinds: Vec<&str> = steps
                .iter()
                .filter_map(|d| d.get("type").and_then(Value::as_str))
                .collect();
            if kinds.contains(&"ByteLevel") {
                return Ok((PieceStyle::ByteLevel, false));
            }
            let spm_like = steps.iter().any(|d| {
                d.get("type").and_then(Value::as_str) == Some("Replace")
                    && d.pointer("/pattern/String").and_then(Value::as_str) == Some("\u{2581}")
            });
            if spm_like {
                return Ok((PieceStyle::SentencePiece, kinds.contains(&"Strip")));
            }
            Err(unsupported(decoder))
        }
        _ => Err(unsupported(decoder)),
    }
}

fn unsupported(decoder: &Value) -> Error {
    let mut text = decoder.to_string();
    if text.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    Error::UnsupportedDecoder { decoder: text }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decoder shapes of the model families we serve map to the right styles.
    #[test]
    fn decoder_styles() {
        let bl = serde_json::json!({"type": "ByteLevel", "add_prefix_space": true});
        assert_eq!(
            decoder_style(&bl).ok(),
            Some((PieceStyle::ByteLevel, false))
        );
        let llama2 = serde_json::json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]});
        assert_eq!(
            decoder_style(&llama2).ok(),
            Some((PieceStyle::SentencePiece, true))
        );
        let meta =
            serde_json::json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"});
        assert_eq!(
            decoder_style(&meta).ok(),
            Some((PieceStyle::SentencePiece, false))
        );
        let wp = serde_json::json!({"type": "WordPiece", "prefix": "##"});
        assert!(matches!(
            decoder_style(&wp),
            Err(Error::UnsupportedDecoder { .. })
        ));
        assert!(decoder_style(&Value::Null).is_err());
    }

    /// An oversized or malformed file is refused with a typed error before the library sees it.
    #[test]
    fn rejects_bad_files() {
        let special = SpecialTokens::default();
        assert!(matches!(
            build(b"{not json", &special),
            Err(Error::BadVocab { .. })
        ));
        let big = vec![b' '; MAX_TOKENIZER_JSON_BYTES + 1];
        assert!(matches!(
            build(&big, &special),
            Err(Error::JsonTooLarge { .. })
        ));
    }
}

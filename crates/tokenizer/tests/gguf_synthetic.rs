//! GGUF vocabularies built in the test: bad metadata is refused with errors naming the field,
//! and a tiny SentencePiece vocabulary shows byte fallback, prefix-space handling and
//! streaming without needing a real model file.

use skiff_formats::{GgufVocab, SpecialTokens, TokenizerSpec};
use skiff_tokenizer::{Detokenizer, Error, Tokenizer};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// A tiny llama (SentencePiece) vocabulary: specials, all 256 byte tokens, a few pieces.
fn spm_vocab() -> GgufVocab {
    let mut tokens = strings(&["<unk>", "<s>", "</s>", "<start_of_turn>"]);
    let mut types = vec![2, 3, 3, 3];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    types.extend([6; 256]);
    let pieces = [
        "▁", "h", "e", "l", "o", "▁h", "he", "ll", "llo", "▁he", "▁hello", "<b>",
    ];
    tokens.extend(strings(&pieces));
    types.extend([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4]);
    let scores = (0..tokens.len()).map(|i| -(i as f32)).collect();
    GgufVocab {
        model: "llama".into(),
        pre: None,
        tokens,
        scores,
        token_types: types,
        merges: Vec::new(),
        add_space_prefix: Some(true),
        special: SpecialTokens {
            bos: Some(1),
            eos: Some(2),
            unk: Some(0),
            add_bos: Some(true),
            ..SpecialTokens::default()
        },
    }
}

fn build(v: GgufVocab) -> Result<Tokenizer, Error> {
    Tokenizer::from_spec(&TokenizerSpec::Gguf(v))
}

fn id_of(tok: &Tokenizer, text: &str) -> u32 {
    (0..tok.n_vocab() as u32)
        .find(|&id| tok.token_text(id) == Some(text))
        .expect("token present")
}

/// Byte fallback, the prefix space, bos, user-defined tokens and control-token parsing.
#[test]
fn tiny_sentencepiece_vocabulary() {
    let tok = build(spm_vocab()).expect("builds");
    assert_eq!(
        tok.kind(),
        "llama SentencePiece BPE (add_space_prefix: true)"
    );
    let hello = tok.encode("hello", true).expect("encode");
    assert_eq!(
        hello,
        vec![1, id_of(&tok, "▁hello")],
        "bos, then the prefix-spaced word whole"
    );
    assert_eq!(
        tok.decode(&hello, true).expect("decode"),
        "hello",
        "prefix space and bos dropped"
    );

    // "é" is not in the vocabulary: two byte tokens, which decode (and stream) back to "é".
    let ids = tok.encode("hé", false).expect("encode");
    assert_eq!(
        ids,
        vec![
            id_of(&tok, "▁h"),
            id_of(&tok, "<0xC3>"),
            id_of(&tok, "<0xA9>")
        ]
    );
    assert_eq!(tok.decode(&ids, false).expect("decode"), "hé");
    let mut detok = Detokenizer::new(&tok, false);
    assert_eq!(
        detok.push(ids[0]).expect("push").as_deref(),
        Some("h"),
        "leading space stripped like decode"
    );
    assert_eq!(
        detok.push(ids[1]).expect("push"),
        None,
        "half a character is held back"
    );
    assert_eq!(detok.push(ids[2]).expect("push").as_deref(), Some("é"));
    assert_eq!(detok.flush(), None);
    // A stream cut inside a character flushes U+FFFD, as decode does.
    let mut detok = Detokenizer::new(&tok, false);
    assert_eq!(detok.push(ids[1]).expect("push"), None);
    assert_eq!(detok.flush().as_deref(), Some("\u{FFFD}"));
    assert_eq!(tok.decode(&ids[1..2], false).expect("decode"), "\u{FFFD}");

    // User-defined tokens are always split out; control tokens only from templates.
    let b = id_of(&tok, "<b>");
    assert!(tok.encode("he<b>", false).expect("encode").contains(&b));
    let turn = id_of(&tok, "<start_of_turn>");
    assert!(
        !tok.encode("<start_of_turn>", false)
            .expect("encode")
            .contains(&turn)
    );
    assert_eq!(
        tok.encode_with_special_tokens("<start_of_turn>hello")
            .expect("encode"),
        vec![turn, id_of(&tok, "▁hello")]
    );
    assert!(tok.is_special(turn) && !tok.is_special(b));
    assert_eq!(tok.eog_ids(), &[2]);
}

/// Every inconsistency is refused with the offending field named.
#[test]
fn bad_vocabularies_are_refused() {
    let field_of = |v: GgufVocab| match build(v) {
        Err(Error::BadVocab { field, reason }) => format!("{field}: {reason}"),
        other => panic!("expected BadVocab, got {other:?}"),
    };
    let mut v = spm_vocab();
    v.token_types.pop();
    assert!(field_of(v).starts_with("tokenizer.ggml.token_type"));
    let mut v = spm_vocab();
    v.scores.truncate(3);
    assert!(field_of(v).starts_with("tokenizer.ggml.scores"));
    let mut v = spm_vocab();
    v.special.eos = Some(100_000);
    assert!(field_of(v).contains("eos id 100000"));
    let mut v = spm_vocab();
    v.tokens[5] = "<unk>".into();
    assert!(field_of(v).contains("duplicate token"));
    let mut v = spm_vocab();
    (v.tokens, v.scores, v.token_types) = (Vec::new(), Vec::new(), Vec::new());
    assert!(field_of(v).contains("empty"));

    let mut v = spm_vocab();
    v.model = "gpt2".into();
    v.pre = Some("smollm".into());
    assert!(
        field_of(v.clone()).starts_with("tokenizer.ggml.merges"),
        "gpt2 without merges"
    );
    v.merges = strings(&["h e", "he x"]);
    assert!(
        field_of(v.clone()).contains("merge 1"),
        "a merge naming an unknown token"
    );
    let mut dup = v.clone();
    dup.tokens[5] = "<unk>".into();
    assert!(field_of(dup).contains("duplicate token"), "gpt2 duplicates");

    v.pre = Some("no-such-pre".into());
    match build(v.clone()) {
        Err(e @ Error::UnsupportedPre { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("no-such-pre")
                    && text.contains("smollm")
                    && text.contains("llama-bpe"),
                "{text}"
            );
        }
        other => panic!("expected UnsupportedPre, got {other:?}"),
    }
    v.model = "bert".into();
    assert!(matches!(build(v), Err(Error::UnsupportedModel { ref model, .. }) if model == "bert"));
}

//! The `tokenizer.json` path (models shipped as safetensors) agrees with the Hugging Face
//! `tokenizers` library on encoding, bos handling, decoding and special tokens.
//!
//! Fixtures and vectors come from `tools/reference/make_tokenizer_json_fixtures.py`: tiny
//! vocabularies wired like Qwen 2, Llama 3, Llama 2, Gemma and Metaspace-style files.

mod common;

use common::{fixture, ids, json_fixture};
use serde_json::Value;
use skiff_formats::{SpecialTokens, TokenizerSpec};
use skiff_tokenizer::{Detokenizer, Error, Tokenizer};

const FIXTURES: [&str; 5] = ["qwen2", "llama3", "llama2", "gemma", "metaspace"];

fn id_or_none(v: &Value) -> Option<u32> {
    v.as_u64().map(|id| u32::try_from(id).expect("id fits u32"))
}

/// The fixture's tokenizer, built as the engine builds one from a safetensors model.
fn load(name: &str) -> (Tokenizer, Value) {
    let path = fixture(&format!("hf/{name}.tokenizer.json"));
    let json = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let vectors = json_fixture(&format!("hf/{name}.vectors.json"));
    let s = &vectors["special"];
    let special = SpecialTokens {
        bos: id_or_none(&s["bos"]),
        eos: id_or_none(&s["eos"]),
        add_bos: s["add_bos"].as_bool(),
        ..SpecialTokens::default()
    };
    let tok = Tokenizer::from_spec(&TokenizerSpec::HfJson { json, special })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (tok, vectors)
}

/// Streams `all` one id at a time; every piece is whole text and the pieces add up to decode.
fn check_stream(tok: &Tokenizer, all: &[u32], skip_special: bool, label: &str) {
    let mut detok = Detokenizer::new(tok, skip_special);
    let mut streamed = String::new();
    for &id in all {
        if let Some(piece) = detok.push(id).expect("push") {
            assert!(
                !piece.is_empty() && !piece.contains('\u{FFFD}'),
                "{label}: piece {piece:?}"
            );
            streamed.push_str(&piece);
        }
    }
    streamed.extend(detok.flush());
    assert_eq!(
        streamed,
        tok.decode(all, skip_special).expect("decode"),
        "{label}: stream"
    );
}

/// Encoding user text, with and without bos, and decoding match the library exactly.
#[test]
fn encode_decode_match_tokenizers_library() {
    for name in FIXTURES {
        let (tok, vectors) = load(name);
        assert_eq!(
            tok.n_vocab() as u64,
            vectors["n_vocab"].as_u64().expect("n_vocab"),
            "{name}"
        );
        assert!(
            tok.kind().starts_with("tokenizer.json"),
            "{name}: {}",
            tok.kind()
        );
        let cases = vectors["cases"].as_array().expect("cases");
        assert!(cases.len() >= 30, "{name}: too few cases");
        for case in cases {
            let text = case["text"].as_str().expect("text");
            let label = format!("{name}: {text:?}");
            let plain = tok.encode(text, false).expect("encode");
            assert_eq!(plain, ids(&case["ids"]), "{label}: encode");
            assert_eq!(
                tok.encode(text, true).expect("encode"),
                ids(&case["ids_add_special"]),
                "{label}: encode with bos"
            );
            assert_eq!(
                tok.decode(&plain, false).expect("decode"),
                case["decoded"].as_str().expect("decoded"),
                "{label}: decode"
            );
            check_stream(&tok, &plain, false, &label);
        }
    }
}

/// Template-rendered text: control tokens are recognised (with `lstrip` honoured) exactly
/// where the library recognises them, and skipping them on decode matches too.
#[test]
fn special_tokens_match_tokenizers_library() {
    for name in FIXTURES {
        let (tok, vectors) = load(name);
        for case in vectors["special_cases"].as_array().expect("special_cases") {
            let text = case["text"].as_str().expect("text");
            let label = format!("{name}: {text:?}");
            let parsed = tok.encode_with_special_tokens(text).expect("encode");
            assert_eq!(
                parsed,
                ids(&case["ids"]),
                "{label}: encode_with_special_tokens"
            );
            assert_eq!(
                tok.decode(&parsed, false).expect("decode"),
                case["decoded"].as_str().expect("decoded"),
                "{label}"
            );
            let skipped = case["decoded_skip_special"]
                .as_str()
                .expect("decoded_skip_special");
            assert_eq!(
                tok.decode(&parsed, true).expect("decode"),
                skipped,
                "{label}: skip_special"
            );
            check_stream(&tok, &parsed, true, &label);
            // The same text as user content never yields a control token.
            let user = tok.encode(text, false).expect("encode");
            assert!(
                user.iter().all(|&id| !tok.is_special(id)),
                "{label}: user text became special: {user:?}"
            );
        }
    }
}

/// bos/eos/eog facts: from the post-processor when the config is silent (Llama 3), from the
/// config when it speaks, and terminators found by text.
#[test]
fn special_ids_and_flags() {
    let (qwen, _) = load("qwen2");
    let im_end = (0..qwen.n_vocab() as u32)
        .find(|&id| qwen.token_text(id) == Some("<|im_end|>"))
        .expect("<|im_end|>");
    let endoftext = (0..qwen.n_vocab() as u32)
        .find(|&id| qwen.token_text(id) == Some("<|endoftext|>"))
        .expect("eot");
    assert_eq!(
        (qwen.bos(), qwen.eos(), qwen.adds_bos()),
        (None, Some(im_end), false)
    );
    assert_eq!(qwen.eog_ids(), &[endoftext, im_end]);
    let tool_call = (0..qwen.n_vocab() as u32)
        .find(|&id| qwen.token_text(id) == Some("<tool_call>"))
        .expect("tool_call");
    assert!(
        !qwen.is_special(tool_call),
        "a non-special added token stays in decoded text"
    );
    assert_eq!(
        qwen.encode("<tool_call>", false).expect("encode"),
        vec![tool_call],
        "non-special added tokens always split"
    );

    let (llama3, _) = load("llama3");
    assert!(
        llama3.adds_bos(),
        "TemplateProcessing puts <|begin_of_text|> first"
    );
    assert_eq!(llama3.bos(), Some(0));
    let eot = llama3.eos().expect("eos");
    assert!(llama3.is_eog(eot) && llama3.token_text(eot) == Some("<|eot_id|>"));
    assert!(
        llama3
            .eog_ids()
            .iter()
            .any(|&id| llama3.token_text(id) == Some("<|end_of_text|>"))
    );

    let (gemma, _) = load("gemma");
    assert_eq!(
        (gemma.bos(), gemma.eos(), gemma.adds_bos()),
        (Some(2), Some(1), true)
    );
    assert!(
        gemma
            .eog_ids()
            .iter()
            .any(|&id| gemma.token_text(id) == Some("<end_of_turn>"))
    );
    assert_eq!(
        gemma.decode(&[2, 4], true).expect("decode"),
        "",
        "control tokens are skipped"
    );
}

/// Malformed, oversized and unsupported files fail with typed errors.
#[test]
fn bad_files_are_refused() {
    let spec = |json: Vec<u8>| TokenizerSpec::HfJson {
        json,
        special: SpecialTokens::default(),
    };
    assert!(matches!(
        Tokenizer::from_spec(&spec(b"{\"model\": 3".to_vec())),
        Err(Error::BadVocab { .. })
    ));
    let broken_model =
        br#"{"decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": 3}}"#;
    assert!(matches!(
        Tokenizer::from_spec(&spec(broken_model.to_vec())),
        Err(Error::Tokenizers { .. })
    ));
    let no_decoder = br#"{"version": "1.0"}"#;
    assert!(matches!(
        Tokenizer::from_spec(&spec(no_decoder.to_vec())),
        Err(Error::UnsupportedDecoder { .. })
    ));
    let big = vec![b' '; skiff_tokenizer::MAX_TOKENIZER_JSON_BYTES + 1];
    assert!(matches!(
        Tokenizer::from_spec(&spec(big)),
        Err(Error::JsonTooLarge { .. })
    ));
    let mut doc: Value = serde_json::from_slice(
        &std::fs::read(fixture("hf/qwen2.tokenizer.json")).expect("fixture"),
    )
    .expect("json");
    doc["decoder"] = serde_json::json!({"type": "WordPiece", "prefix": "##", "cleanup": true});
    let err = Tokenizer::from_spec(&spec(serde_json::to_vec(&doc).expect("json")))
        .expect_err("WordPiece decoder");
    assert!(matches!(err, Error::UnsupportedDecoder { .. }), "{err}");
    assert!(matches!(
        Tokenizer::from_spec(&TokenizerSpec::Missing),
        Err(Error::NoTokenizer)
    ));
    let (tok, _) = load("llama2");
    assert!(matches!(
        tok.decode(&[tok.n_vocab() as u32], false),
        Err(Error::TokenOutOfRange { .. })
    ));
}

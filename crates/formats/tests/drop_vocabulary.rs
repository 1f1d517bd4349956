//! `ModelFile::drop_vocabulary` frees the vocabulary lists and their metadata arrays and
//! keeps everything else a running model reads.

use std::path::PathBuf;

use skiff_formats::{ModelFile, TokenizerSpec};

const ARRAYS: [&str; 4] = [
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
];

#[test]
fn vocabulary_lists_go_the_rest_stays() {
    for family in ["llama", "gemma3", "qwen2"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../testdata/models/{family}/q8_0.gguf"));
        let mut file = ModelFile::open(&path).expect("fixture opens");
        let before = file.spec().clone();
        let TokenizerSpec::Gguf(vocab) = &before.tokenizer else {
            panic!("{family}: fixture has a GGUF vocabulary");
        };
        assert!(!vocab.tokens.is_empty(), "{family}");
        assert!(
            ARRAYS.iter().any(|k| before.metadata.contains_key(*k)),
            "{family}"
        );
        file.drop_vocabulary();
        let after = file.spec();
        let TokenizerSpec::Gguf(dropped) = &after.tokenizer else {
            panic!("{family}: still a GGUF vocabulary");
        };
        assert!(
            dropped.tokens.is_empty() && dropped.scores.is_empty(),
            "{family}"
        );
        assert!(
            dropped.token_types.is_empty() && dropped.merges.is_empty(),
            "{family}"
        );
        assert_eq!(dropped.special, vocab.special, "{family}: special ids kept");
        assert_eq!(dropped.model, vocab.model, "{family}");
        for key in ARRAYS {
            assert!(!after.metadata.contains_key(key), "{family}: {key} left");
        }
        let kept: Vec<_> = before
            .metadata
            .keys()
            .filter(|k| !ARRAYS.contains(&k.as_str()))
            .collect();
        assert_eq!(kept, after.metadata.keys().collect::<Vec<_>>(), "{family}");
        assert_eq!(after.hparams, before.hparams, "{family}");
        assert_eq!(after.tensors, before.tensors, "{family}");
        assert_eq!(after.chat_template, before.chat_template, "{family}");
    }
}

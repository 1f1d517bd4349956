//! skiff-tokenizer (being built).

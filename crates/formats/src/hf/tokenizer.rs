//! The tokenizer and chat template of a Hugging Face folder: `tokenizer.json` (held as
//! bytes, at most 64 MiB), special tokens from `tokenizer_config.json` resolved to ids, and
//! the chat template from `tokenizer_config.json` or `chat_template.jinja`.

use std::path::Path;

use serde_json::Value;

use super::read_capped;
use crate::error::{Error, Result};
use crate::spec::{SpecialTokens, TokenizerSpec};
use crate::spec_build::MAX_CHAT_TEMPLATE_LEN;

/// Largest `tokenizer.json` read.
pub const MAX_TOKENIZER_JSON_LEN: u64 = 64 << 20;
/// Largest `tokenizer_config.json` / `generation_config.json` read.
const MAX_SMALL_JSON_LEN: u64 = 16 << 20;

/// A JSON file of at most `cap` bytes, or `None` when absent.
pub(crate) fn read_json(path: &Path, cap: u64) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = read_capped(path, cap)?;
    let what = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::BadHeader {
            what,
            reason: format!("not JSON: {e}"),
        })
}

/// The tokenizer of folder `dir`, with special ids checked against `n_vocab`.
pub(crate) fn hf_tokenizer(
    dir: &Path,
    config: &Value,
    n_vocab: usize,
) -> Result<(TokenizerSpec, Option<String>)> {
    let tok_config =
        read_json(&dir.join("tokenizer_config.json"), MAX_SMALL_JSON_LEN)?.unwrap_or(Value::Null);
    let template = chat_template(dir, &tok_config)?;
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Ok((TokenizerSpec::Missing, template));
    }
    let json = read_capped(&path, MAX_TOKENIZER_JSON_LEN)?;
    let parsed: Value = serde_json::from_slice(&json).map_err(|e| Error::BadTokenizer {
        field: "tokenizer.json".into(),
        reason: format!("not JSON: {e}"),
    })?;
    let gen_config =
        read_json(&dir.join("generation_config.json"), MAX_SMALL_JSON_LEN)?.unwrap_or(Value::Null);
    let special = special_tokens(&parsed, &tok_config, &[&gen_config, config], n_vocab)?;
    Ok((TokenizerSpec::HfJson { json, special }, template))
}

/// `bos_token` etc.: a string or `{"content": …}`.
fn token_text<'a>(tok_config: &'a Value, key: &str) -> Option<&'a str> {
    let v = tok_config.get(key)?;
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

/// The id of token `text` in `tokenizer.json`'s added tokens or model vocabulary.
fn token_id(tokenizer: &Value, text: &str) -> Option<u32> {
    let added = tokenizer.get("added_tokens").and_then(Value::as_array);
    let from_added = added.and_then(|a| {
        a.iter()
            .find(|t| t.get("content").and_then(Value::as_str) == Some(text))
            .and_then(|t| t.get("id")?.as_u64())
    });
    let from_vocab = || tokenizer.get("model")?.get("vocab")?.get(text)?.as_u64();
    from_added
        .or_else(from_vocab)
        .and_then(|id| u32::try_from(id).ok())
}

/// `key` (an id or a list whose first element is taken) from the first config that has it.
fn config_id(configs: &[&Value], key: &str) -> Option<u32> {
    configs.iter().find_map(|c| {
        let v = c.get(key)?;
        let id = v.as_u64().or_else(|| v.as_array()?.first()?.as_u64())?;
        u32::try_from(id).ok()
    })
}

fn special_tokens(
    tokenizer: &Value,
    tok_config: &Value,
    configs: &[&Value],
    n_vocab: usize,
) -> Result<SpecialTokens> {
    let id = |name: &str| -> Result<Option<u32>> {
        let key = format!("{name}_token");
        let id = token_text(tok_config, &key)
            .and_then(|text| token_id(tokenizer, text))
            .or_else(|| config_id(configs, &format!("{name}_token_id")));
        if let Some(id) = id
            && id as usize >= n_vocab
        {
            let reason = format!("id {id} is not below n_vocab {n_vocab}");
            return Err(Error::BadTokenizer {
                field: format!("tokenizer_config.json {key}"),
                reason,
            });
        }
        Ok(id)
    };
    let flag = |key: &str| tok_config.get(key).and_then(Value::as_bool);
    Ok(SpecialTokens {
        bos: id("bos")?,
        eos: id("eos")?,
        eot: None,
        unk: id("unk")?,
        pad: id("pad")?,
        add_bos: flag("add_bos_token"),
        add_eos: flag("add_eos_token"),
    })
}

/// `chat_template` (a string, or a list of `{name, template}` of which "default" is taken)
/// from `tokenizer_config.json`, else `chat_template.jinja`; at most 1 MiB.
fn chat_template(dir: &Path, tok_config: &Value) -> Result<Option<String>> {
    let from_config = match tok_config.get("chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template")?.as_str())
            .map(str::to_string),
        _ => None,
    };
    if from_config.is_some() {
        return Ok(from_config);
    }
    let path = dir.join("chat_template.jinja");
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = read_capped(&path, MAX_CHAT_TEMPLATE_LEN as u64)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::BadUtf8 {
            what: "chat_template.jinja".into(),
        })
}

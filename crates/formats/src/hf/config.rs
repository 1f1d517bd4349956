//! `config.json` → GGUF metadata keys, so Hugging Face models go through the same spec
//! builder as GGUF files.
//!
//! Keys written (for `arch` = the mapped `model_type`): `general.architecture`,
//! `{arch}.block_count`, `.embedding_length`, `.attention.head_count`,
//! `.attention.head_count_kv`, `.attention.key_length` / `.value_length` (from `head_dim`),
//! `.feed_forward_length`, `.context_length`, `.attention.layer_norm_rms_epsilon`,
//! `.rope.freq_base`, `.rope.scaling.*` (`type`, `factor`, `original_context_length`,
//! `yarn_beta_fast`, `yarn_beta_slow`, and for `llama3` scaling `low_freq_factor` /
//! `high_freq_factor`), `.attention.sliding_window`, `.attn_logit_softcapping`,
//! `.final_logit_softcapping`, `.vocab_size`. Gemma 3 adds keys GGUF files leave implicit:
//! `gemma3.attention.query_pre_attn_scalar`, `gemma3.rope.freq_base_swa`
//! (`rope_local_base_freq`), and `gemma3.attention.sliding_window_pattern`: UINT32 `n`
//! (every `n`-th layer is global) from `sliding_window_pattern`, or an ARRAY of BOOL (true =
//! sliding) from `layer_types`. Missing or `null` entries are simply not written, so the
//! spec builder's defaults and required-key errors apply.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::gguf::MetaValue;
use crate::spec_build::{Meta, SUPPORTED_ARCHS};

/// The skiff architecture of a `model_type`.
fn arch_of(model_type: &str) -> Result<&'static str> {
    Ok(match model_type {
        "llama" => "llama",
        "mistral" => "mistral",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "gemma3" | "gemma3_text" => "gemma3",
        other => {
            return Err(Error::UnsupportedArch {
                arch: other.to_string(),
                supported: SUPPORTED_ARCHS,
            });
        }
    })
}

/// A JSON number as a metadata value: UINT32 / UINT64 / INT64 for integers, FLOAT32 else.
fn number(v: &Value) -> Option<MetaValue> {
    if let Some(u) = v.as_u64() {
        return Some(u32::try_from(u).map_or(MetaValue::U64(u), MetaValue::U32));
    }
    if let Some(i) = v.as_i64() {
        return Some(MetaValue::I64(i));
    }
    v.as_f64().map(|f| MetaValue::F32(f as f32))
}

/// A JSON value as metadata: numbers, strings and booleans; `None` for null.
fn meta_value(key: &str, v: &Value) -> Result<Option<MetaValue>> {
    Ok(match v {
        Value::Null => None,
        Value::Bool(b) => Some(MetaValue::Bool(*b)),
        Value::String(s) => Some(MetaValue::String(s.clone())),
        Value::Number(_) => number(v),
        other => {
            let found = format!("JSON {}", if other.is_array() { "array" } else { "object" });
            return Err(Error::WrongType {
                key: key.to_string(),
                expected: "a number, string or boolean",
                found,
            });
        }
    })
}

/// Copies `config[json_key]` to `md[gguf_key]` when present and not null.
fn copy(md: &mut Meta, cfg: &Map<String, Value>, json_key: &str, gguf_key: String) -> Result<()> {
    if let Some(v) = cfg.get(json_key)
        && let Some(m) = meta_value(&format!("config.json {json_key}"), v)?
    {
        md.insert(gguf_key, m);
    }
    Ok(())
}

/// The architecture and synthesized metadata of a parsed `config.json`.
pub(crate) fn synth_metadata(config: &Value) -> Result<(String, Meta)> {
    let top = config.as_object().ok_or_else(|| Error::BadHeader {
        what: "config.json".into(),
        reason: "not a JSON object".into(),
    })?;
    let model_type = top
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::MissingKey {
            key: "config.json model_type".into(),
        })?;
    let arch = arch_of(model_type)?;
    // Multimodal Gemma 3 configs hold the language model's settings in `text_config`.
    let cfg = top
        .get("text_config")
        .and_then(Value::as_object)
        .unwrap_or(top);
    let cfg = &classic_rope_keys(cfg);
    let mut md = Meta::new();
    md.insert(
        "general.architecture".into(),
        MetaValue::String(arch.into()),
    );
    let k = |s: &str| format!("{arch}.{s}");
    for (json_key, gguf_key) in [
        ("num_hidden_layers", "block_count"),
        ("hidden_size", "embedding_length"),
        ("num_attention_heads", "attention.head_count"),
        ("num_key_value_heads", "attention.head_count_kv"),
        ("head_dim", "attention.key_length"),
        ("head_dim", "attention.value_length"),
        ("intermediate_size", "feed_forward_length"),
        ("max_position_embeddings", "context_length"),
        ("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
        ("rope_theta", "rope.freq_base"),
        ("attn_logit_softcapping", "attn_logit_softcapping"),
        ("final_logit_softcapping", "final_logit_softcapping"),
        ("vocab_size", "vocab_size"),
    ] {
        copy(&mut md, cfg, json_key, k(gguf_key))?;
    }
    // Qwen2 configs carry a window even when `use_sliding_window` is false.
    if cfg.get("use_sliding_window").and_then(Value::as_bool) != Some(false) {
        copy(
            &mut md,
            cfg,
            "sliding_window",
            k("attention.sliding_window"),
        )?;
    }
    rope_scaling(&mut md, cfg, arch)?;
    if arch == "gemma3" {
        gemma3_keys(&mut md, cfg)?;
    }
    Ok((arch.to_string(), md))
}

/// `cfg` with transformers 5's `rope_parameters` rewritten into the classic keys the Hub's
/// configs use (`rope_theta`, `rope_scaling`, gemma3's `rope_local_base_freq`). Classic keys
/// already present win. `rope_parameters` is either one flat object
/// (`{"rope_type", "rope_theta", "factor", …}`) or, for models that mix layer kinds, one object
/// per kind (`{"full_attention": {…}, "sliding_attention": {…}}`).
fn classic_rope_keys(cfg: &Map<String, Value>) -> Map<String, Value> {
    let mut out = cfg.clone();
    let Some(params) = cfg.get("rope_parameters").and_then(Value::as_object) else {
        return out;
    };
    let global = params
        .get("full_attention")
        .and_then(Value::as_object)
        .unwrap_or(params);
    if let Some(theta) = global.get("rope_theta") {
        out.entry("rope_theta").or_insert_with(|| theta.clone());
    }
    let scaled = global
        .get("rope_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "default");
    if scaled {
        out.entry("rope_scaling")
            .or_insert_with(|| Value::Object(global.clone()));
    }
    if let Some(theta) = params
        .get("sliding_attention")
        .and_then(Value::as_object)
        .and_then(|local| local.get("rope_theta"))
    {
        out.entry("rope_local_base_freq")
            .or_insert_with(|| theta.clone());
    }
    out
}

fn rope_scaling(md: &mut Meta, cfg: &Map<String, Value>, arch: &str) -> Result<()> {
    let Some(rs) = cfg.get("rope_scaling").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let rs = rs.as_object().ok_or_else(|| Error::WrongType {
        key: "config.json rope_scaling".into(),
        expected: "an object",
        found: rs.to_string().chars().take(64).collect(),
    })?;
    let kind = rs
        .get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let kind = if kind == "default" { "none" } else { kind };
    let k = |s: &str| format!("{arch}.rope.scaling.{s}");
    md.insert(k("type"), MetaValue::String(kind.to_string()));
    for (json_key, key) in [
        ("factor", "factor"),
        (
            "original_max_position_embeddings",
            "original_context_length",
        ),
        ("beta_fast", "yarn_beta_fast"),
        ("beta_slow", "yarn_beta_slow"),
        ("low_freq_factor", "low_freq_factor"),
        ("high_freq_factor", "high_freq_factor"),
    ] {
        copy(md, rs, json_key, k(key))?;
    }
    Ok(())
}

fn gemma3_keys(md: &mut Meta, cfg: &Map<String, Value>) -> Result<()> {
    copy(
        md,
        cfg,
        "query_pre_attn_scalar",
        "gemma3.attention.query_pre_attn_scalar".into(),
    )?;
    copy(
        md,
        cfg,
        "rope_local_base_freq",
        "gemma3.rope.freq_base_swa".into(),
    )?;
    copy(
        md,
        cfg,
        "sliding_window_pattern",
        "gemma3.attention.sliding_window_pattern".into(),
    )?;
    if let Some(types) = cfg.get("layer_types").and_then(Value::as_array) {
        let sliding = types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(MetaValue::Bool(true)),
                Some("full_attention") => Ok(MetaValue::Bool(false)),
                _ => Err(Error::bad_hparam(
                    "config.json layer_types",
                    t,
                    "expected sliding_attention or full_attention",
                )),
            })
            .collect::<Result<Vec<_>>>()?;
        md.insert(
            "gemma3.attention.sliding_window_pattern".into(),
            MetaValue::Array(sliding),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Meta {
        let value: Value = serde_json::from_str(json).expect("test JSON parses");
        synth_metadata(&value).expect("config maps").1
    }

    /// transformers 5's flat `rope_parameters` gives the same keys as `rope_theta` + `rope_scaling`.
    #[test]
    fn flat_rope_parameters_map_like_classic_keys() {
        let md = meta(
            r#"{"model_type":"llama","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,
            "factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192}}"#,
        );
        assert_eq!(md["llama.rope.freq_base"], MetaValue::F32(500000.0));
        assert_eq!(
            md["llama.rope.scaling.type"],
            MetaValue::String("llama3".into())
        );
        assert_eq!(md["llama.rope.scaling.factor"], MetaValue::F32(8.0));
        let plain = meta(
            r#"{"model_type":"qwen2","rope_parameters":{"rope_type":"default","rope_theta":1000000.0}}"#,
        );
        assert_eq!(plain["qwen2.rope.freq_base"], MetaValue::F32(1000000.0));
        assert!(!plain.contains_key("qwen2.rope.scaling.type"));
    }

    /// Per-layer-kind `rope_parameters` (Gemma 3): the global base, its scaling, and the local base.
    #[test]
    fn per_kind_rope_parameters_map_to_global_and_local_bases() {
        let md = meta(
            r#"{"model_type":"gemma3_text","rope_parameters":{
            "full_attention":{"rope_type":"linear","factor":8.0,"rope_theta":1000000.0},
            "sliding_attention":{"rope_type":"default","rope_theta":10000.0}}}"#,
        );
        assert_eq!(md["gemma3.rope.freq_base"], MetaValue::F32(1000000.0));
        assert_eq!(md["gemma3.rope.freq_base_swa"], MetaValue::F32(10000.0));
        assert_eq!(
            md["gemma3.rope.scaling.type"],
            MetaValue::String("linear".into())
        );
    }
}

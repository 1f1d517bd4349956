//! The recipe against llama.cpp's rules on synthetic tensor tables.

use super::*;

fn t(name: &str, dims: &[u64], dtype: DType) -> TensorInfo {
    TensorInfo {
        name: name.into(),
        dims: dims.to_vec(),
        dtype,
        shard: 0,
        offset: 0,
        n_bytes: 0,
    }
}

/// A llama-style table: tied embeddings, `n_layers` blocks, rows of `d_model` and `ffn_dim`.
fn llama_tensors(n_layers: usize, d_model: u64, ffn_dim: u64) -> Vec<TensorInfo> {
    let mut out = vec![
        t("token_embd.weight", &[d_model, 64], DType::F16),
        t("output_norm.weight", &[d_model], DType::F32),
    ];
    for i in 0..n_layers {
        for (role, dims) in [
            ("attn_norm.weight", vec![d_model]),
            ("attn_q.weight", vec![d_model, d_model]),
            ("attn_k.weight", vec![d_model, d_model / 2]),
            ("attn_v.weight", vec![d_model, d_model / 2]),
            ("attn_output.weight", vec![d_model, d_model]),
            ("ffn_norm.weight", vec![d_model]),
            ("ffn_gate.weight", vec![d_model, ffn_dim]),
            ("ffn_up.weight", vec![d_model, ffn_dim]),
            ("ffn_down.weight", vec![ffn_dim, d_model]),
        ] {
            out.push(t(&format!("blk.{i}.{role}"), &dims, DType::F32));
        }
    }
    out
}

fn plan_of(
    ftype: Ftype,
    tensors: &[TensorInfo],
    n_layers: usize,
) -> HashMap<String, Option<DType>> {
    let facts = ModelFacts::from_parts("llama", n_layers, 0, false, tensors);
    let plan = plan_with(ftype, &facts, tensors).expect("plan");
    tensors.iter().map(|t| t.name.clone()).zip(plan).collect()
}

/// `use_more_bits` picks llama.cpp's layers: 8 layers → 0, 3, 6, 7; 30 layers → 0..3,
/// 5, 8, …, 23, and 26..30.
#[test]
fn use_more_bits_matches_llama_cpp() {
    let picked = |n| (0..n).filter(|&i| use_more_bits(i, n)).collect::<Vec<_>>();
    assert_eq!(picked(8), [0, 3, 6, 7]);
    assert_eq!(
        picked(30),
        [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]
    );
}

/// Q4_K_M: attn_v and ffn_down get Q6_K on the use_more_bits layers, the tied embeddings
/// Q6_K, everything else 2-D Q4_K, norms untouched.
#[test]
fn q4_k_m_follows_llama_cpp() {
    let tensors = llama_tensors(8, 256, 512);
    let plan = plan_of(Ftype::Q4KM, &tensors, 8);
    assert_eq!(plan["token_embd.weight"], Some(DType::Q6K));
    assert_eq!(plan["output_norm.weight"], None);
    for i in 0..8 {
        let more = [0, 3, 6, 7].contains(&i);
        let want = if more { DType::Q6K } else { DType::Q4K };
        assert_eq!(
            plan[&format!("blk.{i}.attn_v.weight")],
            Some(want),
            "layer {i}"
        );
        assert_eq!(
            plan[&format!("blk.{i}.ffn_down.weight")],
            Some(want),
            "layer {i}"
        );
        for role in ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"] {
            assert_eq!(
                plan[&format!("blk.{i}.{role}.weight")],
                Some(DType::Q4K),
                "{role} {i}"
            );
        }
        assert_eq!(plan[&format!("blk.{i}.attn_norm.weight")], None);
    }
}

/// Layers are counted by number, not by name order ("blk.10" sorts before "blk.2").
#[test]
fn layers_are_counted_numerically() {
    let tensors = llama_tensors(16, 256, 512);
    let plan = plan_of(Ftype::Q5KM, &tensors, 16);
    let q6: Vec<usize> = (0..16)
        .filter(|i| plan[&format!("blk.{i}.attn_v.weight")] == Some(DType::Q6K))
        .collect();
    assert_eq!(q6, [0, 1, 4, 7, 10, 13, 14, 15]);
}

/// Rows that are not a multiple of 256 fall back: Q4_K → Q5_0, Q6_K → Q8_0; the tied
/// embeddings go straight to Q8_0 (SmolLM2's d_model of 576).
#[test]
fn short_rows_fall_back() {
    let tensors = llama_tensors(8, 576, 1536);
    let plan = plan_of(Ftype::Q4KM, &tensors, 8);
    assert_eq!(plan["token_embd.weight"], Some(DType::Q8_0));
    assert_eq!(plan["blk.1.attn_q.weight"], Some(DType::Q5_0));
    assert_eq!(plan["blk.0.attn_v.weight"], Some(DType::Q8_0));
    assert_eq!(
        plan["blk.1.ffn_down.weight"],
        Some(DType::Q4K),
        "1536 is 6 × 256"
    );
    let plan = plan_of(Ftype::Q5KM, &tensors, 8);
    assert_eq!(plan["blk.1.attn_q.weight"], Some(DType::Q5_1));
}

/// Legacy file types: tied embeddings / output get Q6_K except in Q8_0 files; a tensor
/// already in the target type is kept as is.
#[test]
fn legacy_types_and_output_rule() {
    let mut tensors = llama_tensors(2, 256, 512);
    tensors.push(t("output.weight", &[256, 64], DType::F16));
    tensors[0].dtype = DType::Q4_0;
    let plan = plan_of(Ftype::Q4_0, &tensors, 2);
    assert_eq!(plan["output.weight"], Some(DType::Q6K));
    assert_eq!(
        plan["token_embd.weight"], None,
        "untied: Q4_0, which it already is"
    );
    assert_eq!(plan["blk.0.attn_v.weight"], Some(DType::Q4_0));
    let plan = plan_of(Ftype::Q8_0, &tensors, 2);
    assert_eq!(plan["output.weight"], Some(DType::Q8_0));
    assert_eq!(plan["token_embd.weight"], Some(DType::Q8_0));
}

/// A row length that fits no fallback is an error naming the tensor, as in llama.cpp.
#[test]
fn impossible_rows_are_refused() {
    let tensors = [t("blk.0.attn_q.weight", &[48, 48], DType::F32)];
    let facts = ModelFacts::from_parts("llama", 1, 0, false, &tensors);
    let err = plan_with(Ftype::Q4_1, &facts, &tensors).expect_err("48 is not a multiple of 32");
    assert!(err.to_string().contains("blk.0.attn_q.weight"), "{err}");
}

/// Special tensors stay unquantized: MoE routers, 1-D weights, `[n, 1]` shapes.
#[test]
fn keep_list_and_one_dimensional_shapes() {
    let tensors = [
        t("blk.0.ffn_gate_inp.weight", &[256, 8], DType::F32),
        t("blk.0.attn_q.bias", &[256], DType::F32),
        t("blk.0.odd.weight", &[256, 1], DType::F32),
    ];
    let facts = ModelFacts::from_parts("llama", 1, 8, false, &tensors);
    let plan = plan_with(Ftype::Q4KM, &facts, &tensors).expect("plan");
    assert_eq!(plan, [None, None, None]);
}

//! Bad inputs fail with typed errors that name the problem, and never corrupt the cache:
//! malformed batches, positions past the context, foreign KV caches, and model files with
//! missing, misshapen or mistyped tensors or an unknown architecture.

mod common;

use std::sync::Arc;

use common::{GgufParts, load, run_prompt};
use skiff_backend_cpu::Cpu;
use skiff_formats::gguf::MetaValue;
use skiff_models::{Batch, Error, Model};
use skiff_tensor::DType;

fn one(token: u32, pos: u32, slot: usize) -> Batch {
    Batch {
        tokens: vec![token],
        positions: vec![pos],
        seq_slots: vec![slot],
        logit_rows: vec![0],
    }
}

/// Positions at or past the model's context (128) or the cache's capacity are refused.
#[test]
fn positions_beyond_context_are_errors() {
    let cpu = Cpu::new(1);
    let model = load("llama", "f32.gguf");
    assert_eq!(model.max_seq_len(), 128);
    let mut kv = model.new_kv_cache(1, 1000);
    assert_eq!(kv.max_seq_len(), 128, "capped at the model's context");
    let tokens: Vec<u32> = (0..128).map(|i| 3 + i % 200).collect();
    let mut batch = Batch::for_sequence(&tokens, 0, 0);
    model
        .forward(&batch, &mut kv, &cpu)
        .expect("positions 0..128 fit");
    batch = one(5, 128, 0);
    match model.forward(&batch, &mut kv, &cpu) {
        Err(Error::PositionOutOfRange {
            token_idx: 0,
            pos: 128,
            limit: "model context",
            max_seq_len: 128,
        }) => {}
        other => panic!("expected PositionOutOfRange, got {other:?}"),
    }
    assert_eq!(kv.slot_len(0), 128, "a refused batch leaves the slot alone");

    let mut small = model.new_kv_cache(1, 4);
    let batch = Batch::for_sequence(&[5, 6, 7, 8, 9], 0, 0);
    match model.forward(&batch, &mut small, &cpu) {
        Err(Error::PositionOutOfRange {
            token_idx: 4,
            pos: 4,
            limit: "KV cache",
            max_seq_len: 4,
        }) => {}
        other => panic!("expected PositionOutOfRange, got {other:?}"),
    }
    assert_eq!(small.slot_len(0), 0);
}

/// Every malformed batch gets its own structured error and changes nothing.
#[test]
fn malformed_batches_are_refused() {
    let cpu = Cpu::new(1);
    let model = load("qwen2", "f32.gguf");
    let mut kv = model.new_kv_cache(2, 32);
    model
        .forward(&Batch::for_sequence(&[10, 11, 12], 0, 0), &mut kv, &cpu)
        .expect("prefill");

    let mut uneven = Batch::for_sequence(&[10, 11], 3, 0);
    uneven.positions.pop();
    type Case = (Batch, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (Batch::default(), |e| matches!(e, Error::EmptyBatch)),
        (uneven, |e| {
            matches!(
                e,
                Error::BatchLength {
                    field: "positions",
                    len: 1,
                    n_tokens: 2
                }
            )
        }),
        (one(320, 3, 0), |e| {
            matches!(
                e,
                Error::TokenOutOfRange {
                    token_idx: 0,
                    token: 320,
                    n_vocab: 320
                }
            )
        }),
        (one(5, 3, 2), |e| {
            matches!(
                e,
                Error::SlotOutOfRange {
                    slot: 2,
                    n_slots: 2
                }
            )
        }),
        (one(5, 4, 0), |e| {
            matches!(
                e,
                Error::PositionGap {
                    slot: 0,
                    pos: 4,
                    expected: 3,
                    ..
                }
            )
        }),
        (one(5, 2, 0), |e| {
            matches!(
                e,
                Error::PositionGap {
                    slot: 0,
                    pos: 2,
                    expected: 3,
                    ..
                }
            )
        }),
        (one(5, 1, 1), |e| {
            matches!(
                e,
                Error::PositionGap {
                    slot: 1,
                    pos: 1,
                    expected: 0,
                    ..
                }
            )
        }),
        (
            Batch {
                logit_rows: vec![1],
                ..one(5, 3, 0)
            },
            |e| {
                matches!(
                    e,
                    Error::LogitRowOutOfRange {
                        row: 1,
                        n_tokens: 1
                    }
                )
            },
        ),
    ];
    for (batch, is_expected) in cases {
        match model.forward(&batch, &mut kv, &cpu) {
            Err(e) if is_expected(&e) => {}
            other => panic!("{batch:?}: unexpected {other:?}"),
        }
        assert_eq!(
            (kv.slot_len(0), kv.slot_len(1)),
            (3, 0),
            "{batch:?} changed the cache"
        );
    }
    // Repeated positions within one batch are a gap too.
    let dup = Batch {
        tokens: vec![5, 6],
        positions: vec![3, 3],
        seq_slots: vec![0, 0],
        logit_rows: vec![],
    };
    assert!(matches!(
        model.forward(&dup, &mut kv, &cpu),
        Err(Error::PositionGap { token_idx: 1, .. })
    ));
    // No logit rows is fine: the cache still advances.
    let silent = Batch {
        logit_rows: vec![],
        ..one(5, 3, 0)
    };
    assert!(
        model
            .forward(&silent, &mut kv, &cpu)
            .expect("forward")
            .data
            .is_empty()
    );
    assert_eq!(kv.slot_len(0), 4);
}

/// A cache shaped for another model is refused by dimension.
#[test]
fn foreign_kv_cache_is_refused() {
    let cpu = Cpu::new(1);
    let llama = load("llama", "f32.gguf");
    let gemma = load("gemma3", "f32.gguf");
    let mut kv = gemma.new_kv_cache(1, 16);
    match llama.forward(&one(5, 0, 0), &mut kv, &cpu) {
        Err(Error::KvMismatch {
            field: "n_layers",
            cache: 6,
            model: 2,
        }) => {}
        other => panic!("expected KvMismatch, got {other:?}"),
    }
}

fn load_edited(edit: impl FnOnce(&mut GgufParts)) -> Result<Model, Error> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parts = GgufParts::read("llama", "f32.gguf");
    edit(&mut parts);
    let file = parts.write(&dir.path().join("edited.gguf"));
    Model::load(Arc::new(file))
}

fn tensor<'a>(parts: &'a mut GgufParts, name: &str) -> &'a mut (String, Vec<u64>, DType, Vec<u8>) {
    parts
        .tensors
        .iter_mut()
        .find(|t| t.0 == name)
        .expect("fixture has the tensor")
}

/// The untouched rewrite loads and runs like the original (the edits below are the only
/// difference).
#[test]
fn unedited_rewrite_loads() {
    let model = load_edited(|_| {}).expect("loads");
    let cpu = Cpu::new(1);
    let original = load("llama", "f32.gguf");
    assert_eq!(
        run_prompt(&model, &cpu, &[4, 5, 6]),
        run_prompt(&original, &cpu, &[4, 5, 6])
    );
}

#[test]
fn missing_tensor_is_named() {
    let err =
        load_edited(|p| p.tensors.retain(|t| t.0 != "blk.1.ffn_up.weight")).expect_err("must fail");
    assert!(
        matches!(&err, Error::MissingTensor { name } if name == "blk.1.ffn_up.weight"),
        "{err}"
    );
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let err = load_edited(|p| {
        let t = tensor(p, "blk.0.attn_k.weight");
        t.1 = vec![64, 16];
        t.3.truncate(64 * 16 * 4);
    })
    .expect_err("must fail");
    match &err {
        Error::ShapeMismatch {
            name,
            expected,
            got,
        } => {
            assert_eq!(
                (name.as_str(), expected.as_slice(), got.as_slice()),
                ("blk.0.attn_k.weight", &[64, 32][..], &[64, 16][..])
            );
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
    assert!(
        err.to_string().contains("[64, 32]") && err.to_string().contains("[64, 16]"),
        "{err}"
    );
}

#[test]
fn unusable_dtypes_are_refused() {
    let err = load_edited(|p| {
        let t = tensor(p, "blk.0.attn_q.weight");
        t.2 = DType::I32;
    })
    .expect_err("must fail");
    assert!(
        matches!(&err, Error::UnsupportedDType { name, dtype: DType::I32, .. } if name == "blk.0.attn_q.weight"),
        "{err}"
    );

    let err = load_edited(|p| {
        let t = tensor(p, "blk.1.attn_norm.weight");
        t.2 = DType::Q8_0;
        t.3.truncate(2 * 34);
    })
    .expect_err("must fail");
    assert!(
        matches!(
            &err,
            Error::UnsupportedDType {
                dtype: DType::Q8_0,
                ..
            }
        ),
        "{err}"
    );
}

/// An architecture nobody implements is refused when the file is opened (formats knows
/// the same list as the registry, whose own error is unit-tested in `registry.rs`), and
/// the message lists every supported name.
#[test]
fn unknown_architecture_lists_supported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parts = GgufParts::read("llama", "f32.gguf");
    parts.set_meta("general.architecture", MetaValue::String("mamba".into()));
    for (k, _) in &mut parts.metadata {
        if let Some(rest) = k.strip_prefix("llama.") {
            *k = format!("mamba.{rest}");
        }
    }
    let err = parts
        .try_write(&dir.path().join("mamba.gguf"))
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("mamba"), "{msg}");
    for name in skiff_models::supported_architectures() {
        assert!(msg.contains(name), "{msg} lacks {name}");
    }
}

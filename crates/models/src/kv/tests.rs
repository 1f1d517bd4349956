//! Unit tests of the cache's bookkeeping: tables, lengths, block copies and shape checks.

use skiff_backend_cpu::attn::decode_row;
use skiff_formats::{HParams, RopePairing, RopeScaling, RopeSpec};

use super::*;

pub(crate) fn tiny_hparams() -> HParams {
    HParams {
        n_layers: 2,
        d_model: 8,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        head_dim_v: 4,
        ffn_dim: 16,
        n_vocab: 10,
        max_seq_len: 32,
        norm_eps: 1e-5,
        rope: RopeSpec {
            theta: 10000.0,
            rot_dim: 4,
            pairing: RopePairing::Neox,
            scaling: RopeScaling::None,
        },
        sliding_window: None,
        attn_logit_softcap: None,
        final_logit_softcap: None,
        tie_embeddings: true,
    }
}

/// The key (or value) of `pos` in `slot`, layer `layer_idx`, KV head 0, decoded to f32.
fn read(kv: &mut KvCache, layer_idx: usize, slot: usize, pos: usize, value: bool) -> Vec<f32> {
    let row_type = kv.dtype().row_type();
    let layer = kv.layer(layer_idx);
    let seq = layer.seq(slot);
    let bytes = if value {
        seq.value_rows(0, pos, 1)
    } else {
        seq.key_rows(0, pos, 1)
    };
    let mut out = vec![0.0f32; 4];
    decode_row(row_type, bytes, &mut out);
    out
}

/// Writes land where views read them; truncate and clear forget rows; bad slots are errors.
#[test]
fn write_read_truncate_clear() {
    let hp = tiny_hparams();
    let mut kv = KvCache::new(&hp, 2, 40);
    assert_eq!(kv.block_table(1), &[3, 4, 5]);
    for pos in 0..20 {
        let row = [pos as f32; 4];
        kv.layer(1).write(1, pos, &row, &[-(pos as f32); 4]);
    }
    kv.set_slot_len(1, 20).expect("within capacity");
    assert_eq!(kv.slot_len(1), 20);
    assert_eq!(read(&mut kv, 1, 1, 17, false), [17.0; 4]);
    assert_eq!(read(&mut kv, 1, 1, 17, true), [-17.0; 4]);
    kv.truncate_slot(1, 1).expect("shrinking is allowed");
    assert_eq!(kv.slot_len(1), 1);
    assert!(matches!(
        kv.truncate_slot(1, 5),
        Err(Error::TruncateBeyondLen {
            len: 1,
            new_len: 5,
            ..
        })
    ));
    kv.clear_slot(1).expect("slot exists");
    assert_eq!(kv.slot_len(1), 0);
    assert!(matches!(
        kv.clear_slot(2),
        Err(Error::SlotOutOfRange {
            slot: 2,
            n_slots: 2
        })
    ));
}

/// A cache for another shape is refused by name.
#[test]
fn shape_mismatch_is_named() {
    let hp = tiny_hparams();
    let kv = KvCache::new(&hp, 1, 8);
    let other = HParams {
        n_kv_heads: 2,
        ..hp
    };
    assert!(matches!(
        kv.check_shape(&other),
        Err(Error::KvMismatch {
            field: "k_dim",
            cache: 4,
            model: 8
        })
    ));
}

/// Lengths beyond the table (or max_seq_len), bad block ids and over-long tables are typed
/// errors; shrinking a table shrinks the length with it.
#[test]
fn tables_and_lengths_are_checked() {
    let hp = tiny_hparams();
    let cfg = KvConfig::new(8, KvDtype::F16);
    let mut kv = KvCache::paged(&hp, 2, 40, cfg).expect("valid config");
    assert_eq!(kv.slot_capacity(0), 0);
    assert!(matches!(
        kv.set_slot_len(0, 1),
        Err(Error::SlotLenBeyondCapacity {
            slot: 0,
            len: 1,
            capacity: 0
        })
    ));
    kv.set_block_table(0, &[7, 2, 5]).expect("valid table");
    assert_eq!(kv.block_table(0), &[7, 2, 5]);
    assert_eq!(kv.slot_capacity(0), 40, "capped at max_seq_len");
    kv.set_slot_len(0, 40).expect("within capacity");
    assert!(matches!(
        kv.set_slot_len(0, 41),
        Err(Error::SlotLenBeyondCapacity { capacity: 40, .. })
    ));
    assert!(matches!(
        kv.set_block_table(0, &[1, 8]),
        Err(Error::BlockOutOfRange {
            block: 8,
            n_blocks: 8
        })
    ));
    assert!(matches!(
        kv.set_block_table(1, &[0, 1, 3, 4]),
        Err(Error::BlockTableTooLong {
            slot: 1,
            len: 4,
            max_blocks: 3
        })
    ));
    assert!(matches!(
        kv.set_block_table(2, &[]),
        Err(Error::SlotOutOfRange { slot: 2, .. })
    ));
    kv.set_block_table(0, &[7]).expect("valid table");
    assert_eq!(kv.slot_len(0), 16, "length follows the shrunk table");
    assert!(matches!(
        kv.copy_block(0, 9),
        Err(Error::BlockOutOfRange { block: 9, .. })
    ));
}

/// Bad pool configurations are refused by field.
#[test]
fn bad_configs_are_named() {
    let hp = tiny_hparams();
    let zero = KvConfig {
        block_size: 0,
        ..KvConfig::new(4, KvDtype::F32)
    };
    assert!(matches!(
        KvCache::paged(&hp, 1, 8, zero),
        Err(Error::BadKvConfig {
            field: "block_size",
            value: 0,
            ..
        })
    ));
    let huge = KvConfig::new(usize::MAX / 2, KvDtype::F32);
    assert!(matches!(
        KvCache::paged(&hp, 1, 8, huge),
        Err(Error::BadKvConfig {
            field: "n_blocks",
            ..
        })
    ));
}

/// `copy_block` copies every layer's keys and values; the source is unchanged.
#[test]
fn copy_block_copies_every_layer() {
    let hp = tiny_hparams();
    for dtype in KvDtype::ALL {
        let mut kv = KvCache::paged(&hp, 2, 32, KvConfig::new(4, dtype)).expect("valid config");
        kv.set_block_table(0, &[2]).expect("valid table");
        kv.set_block_table(1, &[3]).expect("valid table");
        for layer_idx in 0..2 {
            for pos in 0..5 {
                let x = (10 * layer_idx + pos) as f32 / 4.0;
                kv.layer(layer_idx).write(0, pos, &[x; 4], &[-x; 4]);
            }
        }
        kv.copy_block(2, 3).expect("valid blocks");
        for layer_idx in 0..2 {
            for pos in 0..5 {
                for value in [false, true] {
                    let want = read(&mut kv, layer_idx, 0, pos, value);
                    assert_eq!(
                        read(&mut kv, layer_idx, 1, pos, value),
                        want,
                        "{dtype} layer {layer_idx} pos {pos}"
                    );
                }
            }
        }
    }
}

/// Sizes and names of the element types.
#[test]
fn dtype_names_and_block_bytes() {
    for (dtype, name) in KvDtype::ALL.into_iter().zip(KvDtype::NAMES) {
        assert_eq!(dtype.to_string(), name);
        assert_eq!(name.parse::<KvDtype>().expect("known name"), dtype);
    }
    assert_eq!(KvDtype::default(), KvDtype::F16);
    assert!(matches!(
        "q4_0".parse::<KvDtype>(),
        Err(Error::UnknownKvDtype { .. })
    ));
    let hp = tiny_hparams(); // 2 layers, 1 KV head, head_dim 4
    assert_eq!(
        KvCache::bytes_per_block(&hp, 16, KvDtype::F32),
        2 * 2 * 16 * 16
    );
    assert_eq!(
        KvCache::bytes_per_block(&hp, 16, KvDtype::F16),
        2 * 2 * 16 * 8
    );
    assert_eq!(
        KvCache::bytes_per_block(&hp, 16, KvDtype::Q8_0),
        2 * 2 * 16 * 34
    );
}

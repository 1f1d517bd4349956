//! Every kernel table the host supports agrees with the scalar reference, for every weight
//! type, over ragged row lengths and every activation-group size (1..=MAX_ROWS).

mod common;

use common::*;
use skiff_backend_cpu::kernels::MAX_ROWS;
use skiff_backend_cpu::{ActFormat, Kernels};
use skiff_tensor::DType;

/// SIMD dot kernels match the scalar ones within the accumulation-order tolerance.
#[test]
fn vec_dot_matches_scalar_on_every_isa() {
    let scalar = scalar_kernels();
    for k in Kernels::all_supported() {
        for dtype in WEIGHT_DTYPES {
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            for n_in in N_INS.into_iter().filter(|n| n % dtype.block_len() == 0) {
                let seed = (dtype as u64) << 32 | n_in as u64;
                let mut rng = rng(seed);
                let w = random_weight(dtype, 1, n_in, &mut rng);
                let x = random_acts(MAX_ROWS * n_in, &mut rng);
                let acts = quantize_acts(format, &x, n_in);
                let stride = format.row_bytes(n_in);
                for n_rows in 1..=MAX_ROWS {
                    let (mut got, mut want) = ([0.0f32; MAX_ROWS], [0.0f32; MAX_ROWS]);
                    let dot = k.vec_dot(dtype).expect("kernel");
                    dot(&w, &acts, stride, &mut got[..n_rows]);
                    scalar.vec_dot(dtype).expect("kernel")(&w, &acts, stride, &mut want[..n_rows]);
                    for r in 0..n_rows {
                        let mag = dot_magnitude(dtype, &w, &acts[r * stride..(r + 1) * stride]);
                        let what = format_args!(
                            "isa={} dtype={dtype} n_in={n_in} n_rows={n_rows} row={r} seed={seed:#x}",
                            k.isa
                        );
                        assert_close(got[r], want[r], tol_simd(dtype), mag, what);
                    }
                }
            }
        }
    }
}

/// The multi-row form equals one single-row call per activation row (same ISA).
#[test]
fn multi_row_dot_matches_single_row_calls() {
    for k in Kernels::all_supported() {
        for dtype in WEIGHT_DTYPES {
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            let n_in = 512;
            let seed = 0x5eed_0000 + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, 1, n_in, &mut rng);
            let x = random_acts(MAX_ROWS * n_in, &mut rng);
            let acts = quantize_acts(format, &x, n_in);
            let stride = format.row_bytes(n_in);
            let dot = k.vec_dot(dtype).expect("kernel");
            let mut group = [0.0f32; MAX_ROWS];
            dot(&w, &acts, stride, &mut group);
            for (r, &g) in group.iter().enumerate() {
                let mut single = [0.0f32];
                dot(&w, &acts[r * stride..], stride, &mut single);
                let mag = dot_magnitude(dtype, &w, &acts[r * stride..(r + 1) * stride]);
                let what = format_args!("isa={} dtype={dtype} row={r} seed={seed:#x}", k.isa);
                assert_close(g, single[0], tol_simd(dtype), mag, what);
            }
        }
    }
}

/// Activation quantizers of every ISA are bit-exact with the scalar ones, including all-zero
/// blocks, ties and extreme values.
#[test]
fn quantizers_match_scalar_bit_exact_on_every_isa() {
    let scalar = scalar_kernels();
    for k in Kernels::all_supported() {
        for format in [ActFormat::Q8_0, ActFormat::Q8_1, ActFormat::Q8K] {
            for n in [256usize, 512, 2816] {
                let seed = 0xac75 + n as u64;
                let mut x = random_acts(n, &mut rng(seed));
                x[..32].fill(0.0); // an all-zero Q8_0/Q8_1 block
                x[40] = 1e30;
                x[70] = -3.5;
                let (mut got, mut want) = (
                    vec![0u8; format.row_bytes(n)],
                    vec![0u8; format.row_bytes(n)],
                );
                k.quantize(format).expect("quantizer")(&x, &mut got);
                scalar.quantize(format).expect("quantizer")(&x, &mut want);
                assert!(
                    got == want,
                    "isa={} format={format:?} n={n} seed={seed:#x}",
                    k.isa
                );
            }
        }
    }
}

/// Quantizers of every ISA are bit-exact with the scalar ones on exact rounding ties (blocks
/// whose scale is exactly 1, so `x.5` inputs stay ties), on NaN and infinite inputs, on
/// negative zero and on a maximum magnitude that occurs with both signs; and none of them
/// writes a value of −128.
#[test]
fn quantizers_bit_exact_on_ties_nan_and_infinity() {
    let scalar = scalar_kernels();
    let n = 1024;
    let mut x: Vec<f32> = (0..n).map(|i| ((i % 255) as f32 - 127.0) * 0.5).collect();
    for block in x.chunks_mut(32) {
        block[0] = 127.0; // Q8_0/Q8_1: d = 1, so every x.5 value is an exact tie
    }
    x[256] = -127.0; // Q8_K block 1: max = -127, iscale = 1: x.5 ties round half to even
    x[300] = 127.0; // same magnitude, other sign, later: the first one wins
    x[520] = f32::NAN;
    x[600] = f32::INFINITY;
    x[610] = f32::NEG_INFINITY;
    x[800] = -0.0;
    x[900..932].fill(f32::NAN); // a block of NaN only
    for k in Kernels::all_supported() {
        for format in [ActFormat::Q8_0, ActFormat::Q8_1, ActFormat::Q8K] {
            let (mut got, mut want) = (
                vec![0u8; format.row_bytes(n)],
                vec![0u8; format.row_bytes(n)],
            );
            k.quantize(format).expect("quantizer")(&x, &mut got);
            scalar.quantize(format).expect("quantizer")(&x, &mut want);
            let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
            assert_eq!(first_diff, None, "isa={} format={format:?}", k.isa);
            // The kernels' contract: no value is −128 (see `kernels`' module doc).
            let (bb, header) = match format {
                ActFormat::Q8_0 => (34, 2),
                ActFormat::Q8_1 => (36, 4),
                _ => (292, 4),
            };
            let values = format.block_len();
            let lowest = got
                .chunks_exact(bb)
                .flat_map(|b| b[header..header + values].iter().map(|&q| q as i8))
                .min();
            assert!(
                lowest > Some(-128),
                "isa={} format={format:?}: {lowest:?}",
                k.isa
            );
        }
    }
}

/// The batched 8-row kernels of every ISA match the scalar row kernel for every weight type
/// that has one, over ragged row lengths and activation counts (1, 3, 9, 70).
#[test]
fn gemm8_matches_scalar_rows_on_every_isa() {
    let scalar = scalar_kernels();
    for k in Kernels::all_supported() {
        for dtype in WEIGHT_DTYPES {
            let Some(gemm) = k.gemm8(dtype) else {
                continue;
            };
            let format = ActFormat::for_weight(dtype).expect("weight dtype");
            let dot = scalar.vec_dot(dtype).expect("kernel");
            for n_in in N_INS.into_iter().filter(|n| n % dtype.block_len() == 0) {
                for n_acts in [1usize, 3, 9, 70] {
                    let seed = (dtype as u64) << 40 | (n_in as u64) << 8 | n_acts as u64;
                    let mut rng = rng(seed);
                    let w = random_weight(dtype, 8, n_in, &mut rng);
                    let x = random_acts(n_acts * n_in, &mut rng);
                    let acts = quantize_acts(format, &x, n_in);
                    let stride = format.row_bytes(n_in);
                    let row_bytes = w.len() / 8;
                    let mut got = vec![f32::NAN; 8 * n_acts];
                    gemm(&w, &acts, stride, &mut Vec::new(), &mut got);
                    for r in 0..n_acts {
                        for i in 0..8 {
                            let w_row = &w[i * row_bytes..(i + 1) * row_bytes];
                            let a_row = &acts[r * stride..(r + 1) * stride];
                            let mut want = [0.0f32];
                            dot(w_row, a_row, stride, &mut want);
                            let mag = dot_magnitude(dtype, w_row, a_row);
                            let what = format_args!(
                                "isa={} dtype={dtype} n_in={n_in} n_acts={n_acts} r={r} i={i} seed={seed:#x}",
                                k.isa
                            );
                            assert_close(got[r * 8 + i], want[0], tol_simd(dtype), mag, what);
                        }
                    }
                }
            }
        }
    }
}

/// Sizes whose products wrap around `usize` are refused with a panic (a caller bug) by every
/// table, never taken as small ones: a group count of `2^61 + 1` makes `n_groups · 144` wrap
/// to 144 and `8 · n_groups` to 8, and a stride near `usize::MAX / 2` makes a 3-row span wrap,
/// both of which passed the checks as valid before and sent SIMD kernels past the buffers.
#[test]
fn wrapping_sizes_are_refused_not_read_past() {
    let refused = |what: &str, call: &dyn Fn()| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
        assert!(caught.is_err(), "{what}: accepted");
    };
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for k in Kernels::all_supported() {
        let packed = k.packed8(DType::Q4_0).expect("packed Q4_0");
        let groups = vec![0u8; 144];
        let acts = vec![0u8; 64];
        let mut out = vec![0.0f32; 8];
        refused(&format!("{} packed n_groups 2^61+1", k.isa), &|| {
            packed(&groups, (1usize << 61) + 1, &acts, 0, &mut out.clone())
        });
        // One row of 34 bytes plus its trailer (42), so one activation row would be valid.
        let stride = usize::MAX / 2 + 1;
        let three = vec![0.0f32; 24];
        refused(&format!("{} packed stride 2^63, 3 rows", k.isa), &|| {
            packed(&groups, 1, &acts, stride, &mut three.clone())
        });
        packed(&groups, 1, &acts, stride, &mut out);
        let dot = k.vec_dot(DType::Q8_0).expect("Q8_0 dot");
        let w = vec![0u8; 34];
        refused(&format!("{} dot stride 2^63, 3 rows", k.isa), &|| {
            dot(&w, &acts, stride, &mut [0.0f32; 3])
        });
        if let Some(gemm) = k.gemm8(DType::Q8_0) {
            let w8 = vec![0u8; 8 * 34];
            refused(&format!("{} gemm8 stride 2^63, 3 rows", k.isa), &|| {
                gemm(&w8, &acts, stride, &mut Vec::new(), &mut three.clone())
            });
        }
    }
    std::panic::set_hook(prev);
}

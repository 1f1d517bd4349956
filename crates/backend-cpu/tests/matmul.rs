//! `Cpu::matmul` on every ISA the host supports: agreement with per-row kernel calls,
//! bit-identical results for every thread count, and the typed errors.

mod common;

use common::*;
use skiff_backend_cpu::kernels::MAX_ROWS;
use skiff_backend_cpu::{ActFormat, Cpu, Error, Isa, Kernels, Weight};
use skiff_tensor::DType;

const N_OUTS: [usize; 5] = [1, 3, 7, 33, 64];
const N_TOKENS: [usize; 6] = [1, 2, 3, 5, 8, 17];

/// The expected output from single-row scalar kernel calls: y[t * n_out + o].
fn per_row_reference(
    dtype: DType,
    w: &[u8],
    x: &[f32],
    n_out: usize,
    n_in: usize,
) -> (Vec<f32>, Vec<f32>) {
    let format = ActFormat::for_weight(dtype).expect("weight dtype");
    let n_tokens = x.len() / n_in;
    let acts = quantize_acts(format, x, n_in);
    let (row_w, row_a) = (w.len() / n_out, format.row_bytes(n_in));
    let dot = scalar_kernels().vec_dot(dtype).expect("kernel");
    let (mut y, mut mag) = (
        vec![0.0f32; n_tokens * n_out],
        vec![0.0f32; n_tokens * n_out],
    );
    for t in 0..n_tokens {
        for o in 0..n_out {
            let (wr, ar) = (
                &w[o * row_w..(o + 1) * row_w],
                &acts[t * row_a..(t + 1) * row_a],
            );
            let mut out = [0.0f32];
            dot(wr, ar, row_a, &mut out);
            y[t * n_out + o] = out[0];
            mag[t * n_out + o] = dot_magnitude(dtype, wr, ar);
        }
    }
    (y, mag)
}

/// matmul equals the scalar per-row dot products (tight), for every ISA, dtype and shape.
#[test]
fn matmul_matches_per_row_vec_dot() {
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(2, k);
        for dtype in WEIGHT_DTYPES {
            for n_in in [32usize, 96, 256, 768]
                .into_iter()
                .filter(|n| n % dtype.block_len() == 0)
            {
                for (n_out, n_tokens) in N_OUTS
                    .into_iter()
                    .zip(N_TOKENS.into_iter().cycle().skip(n_in % 5))
                {
                    let seed = (dtype as u64) << 40
                        | (n_in as u64) << 20
                        | (n_out * 100 + n_tokens) as u64;
                    let mut rng = rng(seed);
                    let w = random_weight(dtype, n_out, n_in, &mut rng);
                    let x = random_acts(n_tokens * n_in, &mut rng);
                    let mut y = vec![f32::NAN; n_tokens * n_out];
                    cpu.matmul(
                        &Weight {
                            dtype,
                            data: &w,
                            n_out,
                            n_in,
                        },
                        &x,
                        n_tokens,
                        &mut y,
                    )
                    .expect("valid shapes");
                    let (want, mag) = per_row_reference(dtype, &w, &x, n_out, n_in);
                    for i in 0..y.len() {
                        let what = format_args!(
                            "isa={} dtype={dtype} {n_out}x{n_in}x{n_tokens} index={i} seed={seed:#x}",
                            k.isa
                        );
                        assert_close(y[i], want[i], tol_simd(dtype), mag[i], what);
                    }
                }
            }
        }
    }
}

/// Every token count 1..=2*MAX_ROWS+1 (full and partial token groups) gives the same values as
/// running the tokens one at a time, up to the kernel's group-vs-single tolerance.
#[test]
fn token_groups_match_single_token_calls() {
    let (n_out, n_in) = (7, 256);
    for k in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(1, k);
        for dtype in WEIGHT_DTYPES {
            let seed = 0x70c + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let n_tokens = 2 * MAX_ROWS + 1;
            let x = random_acts(n_tokens * n_in, &mut rng);
            let mut y = vec![0.0f32; n_tokens * n_out];
            cpu.matmul(&weight, &x, n_tokens, &mut y)
                .expect("valid shapes");
            let (_, mag) = per_row_reference(dtype, &w, &x, n_out, n_in);
            for t in 0..n_tokens {
                let mut y1 = vec![0.0f32; n_out];
                cpu.matmul(&weight, &x[t * n_in..(t + 1) * n_in], 1, &mut y1)
                    .expect("valid shapes");
                for (o, &single) in y1.iter().enumerate() {
                    let i = t * n_out + o;
                    let what =
                        format_args!("isa={} dtype={dtype} t={t} o={o} seed={seed:#x}", k.isa);
                    assert_close(y[i], single, tol_simd(dtype), mag[i], what);
                }
            }
        }
    }
}

/// Results are bit-identical for 1, 2 and 3 threads.
#[test]
fn thread_count_does_not_change_results() {
    for k in Kernels::all_supported() {
        let cpus: Vec<Cpu> = [1, 2, 3]
            .into_iter()
            .map(|n| Cpu::with_kernels(n, k))
            .collect();
        for dtype in WEIGHT_DTYPES {
            let (n_in, n_out, n_tokens) = (if dtype.block_len() == 1 { 96 } else { 512 }, 301, 17);
            let seed = thread_seed(dtype);
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let outs: Vec<Vec<u32>> = cpus
                .iter()
                .map(|cpu| {
                    let mut y = vec![0.0f32; n_tokens * n_out];
                    cpu.matmul(&weight, &x, n_tokens, &mut y)
                        .expect("valid shapes");
                    y.iter().map(|v| v.to_bits()).collect()
                })
                .collect();
            assert!(
                outs[0] == outs[1],
                "isa={} dtype={dtype}: 1 vs 2 threads, seed {seed:#x}",
                k.isa
            );
            assert!(
                outs[0] == outs[2],
                "isa={} dtype={dtype}: 1 vs 3 threads, seed {seed:#x}",
                k.isa
            );
        }
    }
}

fn thread_seed(dtype: DType) -> u64 {
    0x7000 + dtype as u64
}

/// Shape, length and dtype errors are typed, name the sizes, and leave the output untouched.
#[test]
fn errors_name_the_sizes() {
    let cpu = Cpu::new(2);
    let w = vec![0u8; 2 * 18];
    let weight = Weight {
        dtype: DType::Q4_0,
        data: &w,
        n_out: 2,
        n_in: 32,
    };
    let x = vec![0.5f32; 32];
    let mut y = vec![7.0f32; 2];

    let bad = Weight {
        dtype: DType::Q8K,
        ..weight
    };
    assert_eq!(
        cpu.matmul(&bad, &x, 1, &mut y),
        Err(Error::UnsupportedDType { dtype: DType::Q8K })
    );
    assert_eq!(
        cpu.matmul(
            &Weight {
                dtype: DType::I32,
                ..weight
            },
            &x,
            1,
            &mut y
        ),
        Err(Error::UnsupportedDType { dtype: DType::I32 })
    );
    let ragged = Weight { n_in: 48, ..weight };
    assert_eq!(
        cpu.matmul(&ragged, &[0.0; 48], 1, &mut y),
        Err(Error::RowNotBlockAligned {
            dtype: DType::Q4_0,
            n_in: 48,
            block_len: 32
        })
    );
    let short = Weight {
        data: &w[..35],
        ..weight
    };
    assert_eq!(
        cpu.matmul(&short, &x, 1, &mut y),
        Err(Error::WeightLen {
            dtype: DType::Q4_0,
            n_out: 2,
            n_in: 32,
            expected: 36,
            actual: 35
        })
    );
    assert_eq!(
        cpu.matmul(&weight, &x[..31], 1, &mut y),
        Err(Error::InputLen {
            n_tokens: 1,
            n_in: 32,
            expected: 32,
            actual: 31
        })
    );
    assert_eq!(
        cpu.matmul(&weight, &x, 1, &mut [0.0; 3]),
        Err(Error::OutputLen {
            n_tokens: 1,
            n_out: 2,
            expected: 2,
            actual: 3
        })
    );
    let huge = Weight {
        n_out: usize::MAX,
        ..weight
    };
    assert!(matches!(
        cpu.matmul(&huge, &x, 1, &mut y),
        Err(Error::SizeOverflow { what: "weight", .. })
    ));
    assert!(matches!(
        cpu.matmul(&weight, &x, usize::MAX, &mut y),
        Err(Error::SizeOverflow { what: "input", .. })
    ));
    assert_eq!(y, [7.0, 7.0], "a refused call writes nothing");
    let msg = Error::WeightLen {
        dtype: DType::Q4_0,
        n_out: 2,
        n_in: 32,
        expected: 36,
        actual: 35,
    }
    .to_string();
    assert!(
        msg.contains("2x32") && msg.contains("36") && msg.contains("35"),
        "{msg}"
    );
}

/// Zero tokens or zero output rows are valid no-ops; zero-length rows give zeros.
#[test]
fn empty_shapes() {
    let cpu = Cpu::new(2);
    let weight = Weight {
        dtype: DType::Q8_0,
        data: &[],
        n_out: 0,
        n_in: 64,
    };
    assert_eq!(cpu.matmul(&weight, &[0.0; 64], 1, &mut []), Ok(()));
    let w = vec![0u8; 3 * 34];
    let weight = Weight {
        dtype: DType::Q8_0,
        data: &w,
        n_out: 3,
        n_in: 32,
    };
    assert_eq!(cpu.matmul(&weight, &[], 0, &mut []), Ok(()));
    let weight = Weight {
        dtype: DType::F32,
        data: &[],
        n_out: 3,
        n_in: 0,
    };
    let mut y = [1.0f32; 6];
    assert_eq!(cpu.matmul(&weight, &[], 2, &mut y), Ok(()));
    assert_eq!(y, [0.0; 6]);
}

/// `supports` lists exactly the weight types that have kernels.
#[test]
fn supports_matches_kernels() {
    for dtype in skiff_tensor::ALL_DTYPES {
        assert_eq!(
            Cpu::supports(dtype),
            WEIGHT_DTYPES.contains(&dtype),
            "{dtype}"
        );
    }
}

/// Forcing an ISA works for every supported table and is refused otherwise.
#[test]
fn with_isa_matches_detection() {
    let supported: Vec<Isa> = Kernels::all_supported().iter().map(|k| k.isa).collect();
    for isa in Isa::ALL {
        match Cpu::with_isa(1, isa) {
            Ok(cpu) => assert!(supported.contains(&isa) && cpu.isa() == isa),
            Err(e) => assert!(!supported.contains(&isa) && e == Error::UnsupportedIsa { isa }),
        }
    }
    assert_eq!(Cpu::new(3).n_threads(), 3);
    assert_eq!(Cpu::new(0).n_threads(), 1);
    assert_eq!(
        Cpu::new(1).isa(),
        *supported.last().expect("scalar at least")
    );
}

/// `parallel_for` visits every index exactly once for any n and thread count.
#[test]
fn parallel_for_visits_each_index_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for n_threads in [1, 2, 3] {
        let cpu = Cpu::new(n_threads);
        for n in [0usize, 1, 2, 5, 64, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            cpu.parallel_for(n, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "n_threads={n_threads} n={n}"
            );
        }
    }
}

/// `parallel_chunks_mut` hands out every chunk once, in place, the last one short.
#[test]
fn parallel_chunks_mut_covers_each_chunk_once() {
    for n_threads in [1, 2, 3] {
        let cpu = Cpu::new(n_threads);
        for (len, chunk_len) in [(0usize, 4usize), (1, 4), (12, 4), (13, 4), (1000, 7)] {
            let mut data = vec![0.0f32; len];
            cpu.parallel_chunks_mut(&mut data, chunk_len, &|i, chunk| {
                let expected = chunk_len.min(len - i * chunk_len);
                assert_eq!(chunk.len(), expected, "chunk {i} of {len}/{chunk_len}");
                for (j, v) in chunk.iter_mut().enumerate() {
                    *v += (i * chunk_len + j) as f32;
                }
            });
            let want: Vec<f32> = (0..len).map(|i| i as f32).collect();
            assert_eq!(
                data, want,
                "n_threads={n_threads} len={len} chunk_len={chunk_len}"
            );
        }
    }
}

/// matmul called from `parallel_for` items while another thread also runs matmuls on the same
/// `Cpu` neither deadlocks nor changes results.
#[test]
fn matmul_inside_parallel_for_and_concurrently() {
    let (n_out, n_in, n_tokens) = (33, 256, 3);
    let dtype = DType::Q4K;
    let mut rng = rng(0xc0c0);
    let w = random_weight(dtype, n_out, n_in, &mut rng);
    let x = random_acts(n_tokens * n_in, &mut rng);
    let weight = Weight {
        dtype,
        data: &w,
        n_out,
        n_in,
    };
    let cpu = Cpu::new(2);
    let mut want = vec![0.0f32; n_tokens * n_out];
    cpu.matmul(&weight, &x, n_tokens, &mut want)
        .expect("shapes");
    let check = || {
        let mut y = vec![0.0f32; n_tokens * n_out];
        cpu.matmul(&weight, &x, n_tokens, &mut y).expect("shapes");
        assert!(
            y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
            "result changed"
        );
    };
    std::thread::scope(|s| {
        s.spawn(|| (0..200).for_each(|_| check()));
        for _ in 0..20 {
            cpu.parallel_for(8, &|_| check());
        }
    });
}

/// Batches large enough for activations to be quantized on the pool (≥ 16K values) give the
/// same bits for 1 and 2 threads and match the per-row scalar reference.
#[test]
fn large_batch_parallel_quantization() {
    let (n_out, n_in, n_tokens) = (9, 2816, 8);
    for k in Kernels::all_supported() {
        for dtype in [DType::Q8_0, DType::Q4_1, DType::Q4K] {
            let seed = 0xb16 + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let run = |n_threads| {
                let mut y = vec![0.0f32; n_tokens * n_out];
                Cpu::with_kernels(n_threads, k)
                    .matmul(&weight, &x, n_tokens, &mut y)
                    .expect("shapes");
                y
            };
            let (y1, y2) = (run(1), run(2));
            assert!(
                y1.iter().zip(&y2).all(|(a, b)| a.to_bits() == b.to_bits()),
                "isa={} {dtype} seed={seed:#x}",
                k.isa
            );
            let (want, mag) = per_row_reference(dtype, &w, &x, n_out, n_in);
            for i in 0..y1.len() {
                let what = format_args!("isa={} {dtype} index={i} seed={seed:#x}", k.isa);
                assert_close(y1[i], want[i], tol_simd(dtype), mag[i], what);
            }
        }
    }
}

/// With the batched kernels enabled, matmul still equals the scalar per-row products, and is
/// bit-identical for 1, 2 and 3 threads (aligned 8-row groups plus a tail of row kernels).
#[test]
fn batch_kernels_match_rows_and_ignore_thread_count() {
    for k in Kernels::all_supported() {
        for dtype in [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0] {
            let (n_out, n_in, n_tokens) = (61, 576, 70);
            let seed = 0xba7c + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let (want, mag) = per_row_reference(dtype, &w, &x, n_out, n_in);
            let outs: Vec<Vec<f32>> = [1, 2, 3]
                .into_iter()
                .map(|n| {
                    let cpu = Cpu::with_kernels(n, k).with_batch_kernels(true);
                    let mut y = vec![f32::NAN; n_tokens * n_out];
                    cpu.matmul(&weight, &x, n_tokens, &mut y)
                        .expect("valid shapes");
                    y
                })
                .collect();
            for i in 0..want.len() {
                let what = format_args!("isa={} dtype={dtype} index={i} seed={seed:#x}", k.isa);
                assert_close(outs[0][i], want[i], tol_simd(dtype), mag[i], what);
            }
            let bits = |y: &[f32]| y.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(&outs[0]) == bits(&outs[1]),
                "isa={} dtype={dtype}: 1 vs 2 threads",
                k.isa
            );
            assert!(
                bits(&outs[0]) == bits(&outs[2]),
                "isa={} dtype={dtype}: 1 vs 3 threads",
                k.isa
            );
        }
    }
}

//! `Cpu::pack` + `Cpu::matmul_packed` on every ISA the host supports: agreement with the
//! scalar per-row kernels of the unpacked weight over ragged shapes, bit-identical results
//! for every thread count, and the types and errors `pack` refuses.

mod common;

use common::*;
use skiff_backend_cpu::{ActFormat, Cpu, Error, Isa, Kernels, PACKED_DTYPES, PackedWeight, Weight};
use skiff_tensor::DType;

/// The expected `y[t * n_out + o]` from scalar row-kernel calls, and each value's magnitude.
fn reference(dtype: DType, w: &[u8], x: &[f32], n_out: usize, n_in: usize) -> (Vec<f32>, Vec<f32>) {
    let format = ActFormat::for_weight(dtype).expect("weight dtype");
    let n_tokens = x.len() / n_in;
    let acts = quantize_acts(format, x, n_in);
    let (row_w, row_a) = (w.len() / n_out, format.row_bytes(n_in));
    let dot = scalar_kernels().vec_dot(dtype).expect("kernel");
    let mut y = vec![0.0f32; n_tokens * n_out];
    let mut mag = vec![0.0f32; n_tokens * n_out];
    for t in 0..n_tokens {
        for o in 0..n_out {
            let wr = &w[o * row_w..(o + 1) * row_w];
            let ar = &acts[t * row_a..(t + 1) * row_a];
            let mut out = [0.0f32];
            dot(wr, ar, row_a, &mut out);
            y[t * n_out + o] = out[0];
            mag[t * n_out + o] = dot_magnitude(dtype, wr, ar);
        }
    }
    (y, mag)
}

/// Packed products equal the scalar row kernels, for every ISA, packed type and shape
/// (group counts 0..4 and 25 with and without tail rows; 1..70 tokens; shapes whose width is
/// not a whole number of the type's blocks are skipped).
#[test]
fn matmul_packed_matches_scalar_rows() {
    for k in Kernels::all_supported() {
        // 3 threads: uneven per-thread shares of the chunks, and stealing between them.
        let cpu = Cpu::with_kernels(3, k);
        for dtype in PACKED_DTYPES {
            for (n_out, n_in, n_tokens) in [
                (1, 32, 1),
                (7, 96, 3),
                (8, 32, 1),
                (8, 576, 2),
                (13, 64, 5),
                (33, 256, 70),
                (64, 96, 1),
                (17, 512, 3),
                (8, 768, 9),
                // 25 groups: chunks of several groups per kernel call, plus 3 tail rows.
                (203, 64, 3),
            ] {
                if n_in % dtype.block_len() != 0 {
                    continue;
                }
                let seed = (dtype as u64) << 40 | (n_out * 1000 + n_in) as u64;
                let mut rng = rng(seed);
                let w = random_weight(dtype, n_out, n_in, &mut rng);
                let x = random_acts(n_tokens * n_in, &mut rng);
                let weight = Weight {
                    dtype,
                    data: &w,
                    n_out,
                    n_in,
                };
                let packed = cpu
                    .pack(&weight)
                    .expect("valid shape")
                    .expect("packable type");
                // The copy costs the weight's size; Q4_K's unpacked scales add 32 bytes per
                // packed super-block.
                let extra = if dtype == DType::Q4K {
                    32 * (n_out / 8) * (n_in / 256)
                } else {
                    0
                };
                assert_eq!(
                    packed.size_bytes(),
                    w.len() + extra,
                    "the copy costs the weight's size"
                );
                let mut y = vec![f32::NAN; n_tokens * n_out];
                cpu.matmul_packed(&packed, &x, n_tokens, &mut y)
                    .expect("valid shapes");
                let (want, mag) = reference(dtype, &w, &x, n_out, n_in);
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

/// Each ISA's packed kernel agrees with the scalar packed kernel on the same packed bytes.
#[test]
fn packed_kernels_match_scalar_packed_kernels() {
    let scalar = scalar_kernels();
    let scalar_cpu = Cpu::with_kernels(1, scalar);
    for k in Kernels::all_supported() {
        for dtype in PACKED_DTYPES {
            let (n_out, n_in, n_tokens) = (16, 768, 9);
            let seed = 0x9ac0 + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let packed = scalar_cpu.pack(&weight).expect("shape").expect("packable");
            let (mut got, mut want) = (
                vec![0.0f32; n_tokens * n_out],
                vec![0.0f32; n_tokens * n_out],
            );
            Cpu::with_kernels(1, k)
                .matmul_packed(&packed, &x, n_tokens, &mut got)
                .expect("shapes");
            scalar_cpu
                .matmul_packed(&packed, &x, n_tokens, &mut want)
                .expect("shapes");
            let (_, mag) = reference(dtype, &w, &x, n_out, n_in);
            for i in 0..got.len() {
                let what = format_args!("isa={} dtype={dtype} index={i} seed={seed:#x}", k.isa);
                assert_close(got[i], want[i], tol_simd(dtype), mag[i], what);
            }
        }
    }
}

/// `weight` packed and multiplied by `cpu` with the `n_tokens` rows of `x`: the outputs' bits.
fn packed_bits(cpu: &Cpu, weight: &Weight<'_>, x: &[f32], n_tokens: usize) -> Vec<u32> {
    let packed = cpu.pack(weight).expect("shape").expect("packable");
    let mut y = vec![0.0f32; n_tokens * weight.n_out];
    cpu.matmul_packed(&packed, x, n_tokens, &mut y)
        .expect("shapes");
    y.iter().map(|v| v.to_bits()).collect()
}

/// The VNNI packed kernels (AVX-VNNI and AVX-512 VNNI) give the AVX2 ones' results bit for
/// bit: they sum the same exact integers and then run the same float steps in the same order.
/// Runs for each VNNI table the CPU has (none on a CPU without them).
#[test]
fn vnni_packed_kernels_equal_avx2_bit_for_bit() {
    let Some(avx2) = Kernels::for_isa(Isa::Avx2) else {
        eprintln!("skipped: this CPU lacks AVX2");
        return;
    };
    let vnni: Vec<Kernels> = [Isa::AvxVnni, Isa::Avx512]
        .into_iter()
        .filter_map(Kernels::for_isa)
        .collect();
    if vnni.is_empty() {
        eprintln!("skipped: this CPU has neither AVX-VNNI nor AVX-512 VNNI");
    }
    for k in vnni {
        assert_packed_bits_equal(avx2, k);
    }
}

/// The NEON packed kernels with `sdot` give the base NEON ones' results bit for bit: the same
/// exact integer sums, then the same float steps. Runs where the CPU has FEAT_DotProd.
#[test]
fn neon_dot_packed_kernels_equal_neon_bit_for_bit() {
    match (Kernels::for_isa(Isa::Neon), Kernels::for_isa(Isa::NeonDot)) {
        (Some(neon), Some(dot)) => assert_packed_bits_equal(neon, dot),
        _ => eprintln!("skipped: this CPU lacks NEON or its dot-product instructions"),
    }
}

/// `k`'s packed products equal `reference`'s bit for bit, for every packed type over several
/// shapes (a lone group, tail rows, odd token counts) on 2 threads.
fn assert_packed_bits_equal(reference: Kernels, k: Kernels) {
    for dtype in PACKED_DTYPES {
        for (n_out, n_in, n_tokens) in [
            (8, 256, 1),
            (24, 512, 2),
            (301, 768, 5),
            (40, 512, 7),
            (64, 1024, 33),
        ] {
            let seed = 0x5120 + dtype as u64 + n_in as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let run = |k: Kernels| packed_bits(&Cpu::with_kernels(2, k), &weight, &x, n_tokens);
            let (a, b) = (run(reference), run(k));
            let first = a.iter().zip(&b).position(|(p, q)| p != q);
            assert!(
                first.is_none(),
                "{} dtype={dtype} {n_out}x{n_in}x{n_tokens}: first difference at {first:?}: {} {} vs {}",
                k.isa,
                reference.isa,
                f32::from_bits(a[first.unwrap_or(0)]),
                f32::from_bits(b[first.unwrap_or(0)])
            );
        }
    }
}

/// Results are bit-identical for 1, 2 and 3 threads.
#[test]
fn matmul_packed_thread_count_does_not_change_results() {
    for k in Kernels::all_supported() {
        for dtype in PACKED_DTYPES {
            let (n_out, n_in, n_tokens) = (301, 512, 17);
            let seed = 0x7a00 + dtype as u64;
            let mut rng = rng(seed);
            let w = random_weight(dtype, n_out, n_in, &mut rng);
            let x = random_acts(n_tokens * n_in, &mut rng);
            let weight = Weight {
                dtype,
                data: &w,
                n_out,
                n_in,
            };
            let outs: Vec<Vec<u32>> = [1, 2, 3]
                .into_iter()
                .map(|n| packed_bits(&Cpu::with_kernels(n, k), &weight, &x, n_tokens))
                .collect();
            assert!(
                outs[0] == outs[1],
                "isa={} dtype={dtype}: 1 vs 2 threads",
                k.isa
            );
            assert!(
                outs[0] == outs[2],
                "isa={} dtype={dtype}: 1 vs 3 threads",
                k.isa
            );
        }
    }
}

/// Types without a packed layout are declined; bad shapes and lengths are typed errors.
#[test]
fn pack_declines_and_refuses() {
    let cpu = Cpu::new(1);
    let data = vec![0u8; 8 * 34];
    let k_quant = vec![0u8; DType::Q5K.block_bytes()];
    let q5k = Weight {
        dtype: DType::Q5K,
        data: &k_quant,
        n_out: 1,
        n_in: 256,
    };
    assert!(cpu.pack(&q5k).expect("valid shape").is_none());
    let short = Weight {
        dtype: DType::Q4_0,
        data: &data[..100],
        n_out: 8,
        n_in: 32,
    };
    assert!(matches!(
        cpu.pack(&short),
        Err(Error::WeightLen {
            expected: 144,
            actual: 100,
            ..
        })
    ));
    let ragged = Weight {
        dtype: DType::Q4_1,
        data: &data,
        n_out: 8,
        n_in: 33,
    };
    assert!(matches!(
        cpu.pack(&ragged),
        Err(Error::RowNotBlockAligned {
            n_in: 33,
            block_len: 32,
            ..
        })
    ));
    let w = vec![0u8; 8 * 18];
    let ok = Weight {
        dtype: DType::Q4_0,
        data: &w,
        n_out: 8,
        n_in: 32,
    };
    let packed = cpu.pack(&ok).expect("shape").expect("packable");
    let mut y = vec![0.0f32; 8];
    assert!(matches!(
        cpu.matmul_packed(&packed, &[0.0; 31], 1, &mut y),
        Err(Error::InputLen {
            expected: 32,
            actual: 31,
            ..
        })
    ));
    assert!(matches!(
        cpu.matmul_packed(&packed, &[0.0; 32], 1, &mut y[..7]),
        Err(Error::OutputLen {
            expected: 8,
            actual: 7,
            ..
        })
    ));
}

/// `pack_from` asks for every source byte once, in order, in whole rows, and packs exactly as
/// `pack` does; a failed read stops it and comes back as its error.
#[test]
fn pack_from_reads_the_source_in_order() {
    let cpu = Cpu::new(1);
    let dtype = DType::Q8_0;
    // 2 MiB + a few rows + a 5-row tail: at least three reads of groups, then the tail.
    let n_in = 1024;
    let row_bytes = n_in / 32 * dtype.block_bytes();
    let n_out = (2 * skiff_backend_cpu::PACK_STEP_BYTES / row_bytes) + 21;
    let mut rng = rng(0x5eed);
    let w = random_weight(dtype, n_out, n_in, &mut rng);
    let weight = Weight {
        dtype,
        data: &w,
        n_out,
        n_in,
    };
    let mut ranges = Vec::new();
    let packed = cpu
        .pack_from(dtype, n_out, n_in, &mut |r, buf: &mut [u8]| {
            buf.copy_from_slice(&w[r.clone()]);
            ranges.push(r);
            Ok::<(), Error>(())
        })
        .expect("shape")
        .expect("packable");
    assert!(ranges.len() >= 4, "{ranges:?}");
    let mut at = 0;
    for r in &ranges {
        assert_eq!(r.start, at, "{ranges:?}");
        assert!(r.end > r.start && r.len() % row_bytes == 0, "{ranges:?}");
        at = r.end;
    }
    assert_eq!(at, w.len());
    let plain = cpu.pack(&weight).expect("shape").expect("packable");
    let x = random_acts(3 * n_in, &mut rng);
    let (mut a, mut b) = (vec![0.0; 3 * n_out], vec![0.0; 3 * n_out]);
    cpu.matmul_packed(&packed, &x, 3, &mut a).expect("shapes");
    cpu.matmul_packed(&plain, &x, 3, &mut b).expect("shapes");
    assert_eq!(a, b);

    // The second read fails: that error is returned, and nothing more is read.
    let mut calls = 0;
    let failed = cpu.pack_from(dtype, n_out, n_in, &mut |_, _| {
        calls += 1;
        if calls == 2 {
            Err(Error::ManyMismatch {
                why: "read failed".into(),
            })
        } else {
            Ok(())
        }
    });
    assert!(
        matches!(&failed, Err(Error::ManyMismatch { why }) if why == "read failed"),
        "{failed:?}"
    );
    assert_eq!(calls, 2);
    // A bad shape is refused before anything is read.
    let bad = cpu.pack_from(dtype, 8, 33, &mut |_, _| -> Result<(), Error> {
        panic!("read called for a shape that cannot be packed")
    });
    assert!(
        matches!(bad, Err(Error::RowNotBlockAligned { .. })),
        "{bad:?}"
    );
}

/// `matmul_packed_many` writes each output exactly as its own `matmul_packed` call would, for
/// weights of different widths (tails included) and types sharing one activation format.
#[test]
fn matmul_packed_many_equals_one_call_per_weight() {
    for k in Kernels::all_supported() {
        for n_threads in [1, 3] {
            let cpu = Cpu::with_kernels(n_threads, k);
            let (n_in, n_tokens) = (512, 5);
            let mut rng = rng(0x3a11 + n_threads as u64);
            // q/k/v-like: Q4_K, Q4_K and Q6_K (all Q8_K activations), 37 / 16 / 13 rows.
            let shapes = [(DType::Q4K, 37), (DType::Q4K, 16), (DType::Q6K, 13)];
            let bytes: Vec<Vec<u8>> = shapes
                .iter()
                .map(|&(dtype, n_out)| random_weight(dtype, n_out, n_in, &mut rng))
                .collect();
            let packed: Vec<_> = shapes
                .iter()
                .zip(&bytes)
                .map(|(&(dtype, n_out), data)| {
                    let w = Weight {
                        dtype,
                        data,
                        n_out,
                        n_in,
                    };
                    cpu.pack(&w).expect("shape").expect("packable")
                })
                .collect();
            let x = random_acts(n_tokens * n_in, &mut rng);
            let mut outs: Vec<Vec<f32>> = shapes
                .iter()
                .map(|&(_, n_out)| vec![f32::NAN; n_tokens * n_out])
                .collect();
            let ws: Vec<_> = packed.iter().collect();
            let mut ys: Vec<&mut [f32]> = outs.iter_mut().map(|y| y.as_mut_slice()).collect();
            cpu.matmul_packed_many(&ws, &x, n_tokens, &mut ys)
                .expect("matching weights");
            for (i, p) in packed.iter().enumerate() {
                let mut alone = vec![0.0f32; n_tokens * p.n_out()];
                cpu.matmul_packed(p, &x, n_tokens, &mut alone)
                    .expect("shapes");
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&outs[i]),
                    bits(&alone),
                    "isa={} threads={n_threads} weight {i}",
                    k.isa
                );
            }
        }
    }
}

/// Weights that do not go together, and mismatched outputs, are refused before any write.
#[test]
fn matmul_packed_many_refuses_mismatches() {
    let cpu = Cpu::new(2);
    let mut rng = rng(0xbad);
    let pack = |dtype: DType, n_in: usize, rng: &mut _| {
        let data = random_weight(dtype, 8, n_in, rng);
        let w = Weight {
            dtype,
            data: &data,
            n_out: 8,
            n_in,
        };
        cpu.pack(&w).expect("shape").expect("packable")
    };
    let (a, b) = (
        pack(DType::Q4_0, 64, &mut rng),
        pack(DType::Q4_1, 64, &mut rng),
    );
    let wide = pack(DType::Q4_0, 96, &mut rng);
    let x = random_acts(64, &mut rng);
    let (mut y1, mut y2) = (vec![7.0f32; 8], vec![7.0f32; 8]);
    let many = |ws: &[&PackedWeight], ys: &mut [&mut [f32]]| cpu.matmul_packed_many(ws, &x, 1, ys);
    // Q4_0 takes Q8_0 activations, Q4_1 Q8_1.
    assert!(matches!(
        many(&[&a, &b], &mut [&mut y1, &mut y2]),
        Err(Error::ManyMismatch { why })
            if why.to_lowercase().contains("q4_0") && why.to_lowercase().contains("q4_1")
    ));
    assert!(matches!(
        many(&[&a, &wide], &mut [&mut y1, &mut y2]),
        Err(Error::ManyMismatch { .. })
    ));
    assert!(matches!(
        many(&[&a, &a], &mut [&mut y1]),
        Err(Error::ManyMismatch { .. })
    ));
    let five = [&a; 5];
    let mut ys: Vec<Vec<f32>> = vec![vec![0.0; 8]; 5];
    let mut ys: Vec<&mut [f32]> = ys.iter_mut().map(|y| y.as_mut_slice()).collect();
    assert!(matches!(
        many(&five, &mut ys),
        Err(Error::ManyMismatch { why }) if why.contains("at most 4")
    ));
    assert!(matches!(
        many(&[&a, &a], &mut [&mut y1, &mut y2[..7]]),
        Err(Error::OutputLen {
            expected: 8,
            actual: 7,
            ..
        })
    ));
    assert!(y1.iter().chain(&y2).all(|&v| v == 7.0), "nothing written");
}

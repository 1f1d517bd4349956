//! Matmul micro-benchmarks on SmolLM2-like shapes, for every ISA this CPU supports.
//!
//! Run with `cargo bench -p skiff-backend-cpu --bench matmul` (add `-- q4_1` to filter, and set
//! `SKIFF_BENCH_THREADS=2` for the two-thread figures; the default is 1).
//!
//! Ids are `matmul/<dtype>/<isa>/<n_out>x<n_in>x<n_tokens>`. With one token the product is
//! memory-bound and the throughput is reported in bytes of weights read per second; with 8 or
//! more tokens it is reported in elements, where one element is one FLOP (2·n_out·n_in per
//! token). Scalar runs only on the small shapes (it is 10–50× slower).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skiff_backend_cpu::{Cpu, Isa, Kernels, Weight};
use skiff_tensor::DType;

const DTYPES: [DType; 5] = [
    DType::Q4_1,
    DType::Q8_0,
    DType::Q4K,
    DType::Q6K,
    DType::Q5_0,
];
/// SmolLM2-135M's shapes, and for the K-quants (rows of whole 256-value blocks) Gemma-3-270M's
/// attn_output and ffn_down, SmolLM2's ffn_down and a large memory-bound one.
const SHAPES: [(usize, usize); 4] = [(576, 576), (1536, 576), (576, 1536), (49152, 576)];
const SHAPES_K: [(usize, usize); 4] = [(640, 1024), (640, 2048), (576, 1536), (16384, 1536)];
const N_TOKENS: [usize; 2] = [1, 32];

/// Random quant bits with small finite f16 scales (the speed does not depend on the values).
fn random_weight(dtype: DType, n_out: usize, n_in: usize, rng: &mut StdRng) -> Vec<u8> {
    let n_bytes = n_out * n_in / dtype.block_len() * dtype.block_bytes();
    let mut bytes: Vec<u8> = (0..n_bytes).map(|_| rng.random()).collect();
    let scale_at: &[usize] = match dtype {
        DType::Q4_1 | DType::Q4K => &[0, 2],
        DType::Q6K => &[208],
        _ => &[0],
    };
    for block in bytes.chunks_exact_mut(dtype.block_bytes()) {
        for &at in scale_at {
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
    }
    bytes
}

fn bench_matmul(c: &mut Criterion) {
    let n_threads: usize = std::env::var("SKIFF_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = StdRng::seed_from_u64(42);
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for kernels in Kernels::all_supported() {
        let cpu = Cpu::with_kernels(n_threads, kernels);
        for dtype in DTYPES {
            let shapes = if dtype.block_len() == 256 {
                SHAPES_K
            } else {
                SHAPES
            };
            for (n_out, n_in) in shapes {
                if kernels.isa == Isa::Scalar && n_out * n_in > 1536 * 576 {
                    continue;
                }
                let w = random_weight(dtype, n_out, n_in, &mut rng);
                let weight = Weight {
                    dtype,
                    data: &w,
                    n_out,
                    n_in,
                };
                for n_tokens in N_TOKENS {
                    if n_tokens > 1 && n_out > 4096 {
                        continue;
                    }
                    let x: Vec<f32> = (0..n_tokens * n_in)
                        .map(|_| rng.random_range(-1.0..1.0))
                        .collect();
                    let mut y = vec![0.0f32; n_tokens * n_out];
                    group.throughput(if n_tokens == 1 {
                        Throughput::Bytes(w.len() as u64)
                    } else {
                        Throughput::Elements((2 * n_out * n_in * n_tokens) as u64)
                    });
                    let id = format!("{}/{}/{n_out}x{n_in}x{n_tokens}", dtype.name(), kernels.isa);
                    group.bench_function(id, |b| {
                        b.iter(|| {
                            cpu.matmul(&weight, black_box(&x), n_tokens, &mut y)
                                .expect("valid shapes")
                        })
                    });
                }
            }
        }
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_matmul(&mut c);
    c.final_summary();
}

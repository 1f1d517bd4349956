//! AVX-512 VNNI packed kernels: the shared VNNI kernels (`x86_64/vnni.rs`) with the EVEX
//! `vpdpbusd` on 256-bit vectors (AVX-512 VL).

crate::x86_64::vnni::vnni_packed!(
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    _mm256_dpbusd_epi32
);

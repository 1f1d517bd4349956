//! AVX-VNNI packed kernels: the shared VNNI kernels (`x86_64/vnni.rs`) with the VEX
//! `vpdpbusd`.

crate::x86_64::vnni::vnni_packed!("avx2,fma,f16c,avxvnni", _mm256_dpbusd_avx_epi32);

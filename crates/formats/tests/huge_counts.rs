//! RELIABILITY G13: a ~160-byte file declaring multi-gigabyte allocations fails in under
//! 10 ms with at most 1 MiB of extra peak RSS. This is its own test binary so no other test
//! shares the process's peak-RSS counter.

use std::time::{Duration, Instant};

use skiff_formats::{Error, parse_gguf};

/// Peak RSS in KiB (`VmHWM`), after resetting the peak to the current RSS.
#[cfg(target_os = "linux")]
fn reset_peak_rss() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5")
        .expect("linux lets a process reset its own peak RSS");
    peak_rss_kib()
}

#[cfg(target_os = "linux")]
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value in kB")
}

/// Header with the given counts, then one metadata entry whose array claims 2^61 strings,
/// padded to 160 bytes.
fn crafted(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&n_tensors.to_le_bytes());
    b.extend_from_slice(&n_kv.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(b'k');
    b.extend_from_slice(&9u32.to_le_bytes());
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(1u64 << 61).to_le_bytes());
    b.resize(160, 0);
    b
}

/// Every crafted file fails fast, with a count error, and without a memory spike.
#[test]
fn tiny_file_claiming_huge_counts_fails_fast_without_allocating() {
    let cases = [
        crafted(1 << 62, 1),
        crafted(0, 1 << 63),
        crafted(0, 1),
        crafted(u64::MAX, u64::MAX),
    ];
    #[cfg(target_os = "linux")]
    let before = reset_peak_rss();
    for bytes in &cases {
        let start = Instant::now();
        let r = parse_gguf(bytes);
        let took = start.elapsed();
        assert!(matches!(r, Err(Error::CountTooLarge { .. })), "{r:?}");
        assert!(took < Duration::from_millis(10), "took {took:?}");
    }
    #[cfg(target_os = "linux")]
    {
        let grown = peak_rss_kib().saturating_sub(before);
        assert!(grown <= 1024, "peak RSS grew by {grown} KiB");
    }
}

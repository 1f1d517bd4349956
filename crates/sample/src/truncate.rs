//! Truncation filters over a candidate list: top-k, top-p and min-p, as llama.cpp's
//! `llama_sampler_top_k/top_p/min_p` define them, each keeping at least one candidate.
//!
//! Candidates carry finite logits only (the sampler drops NaN and −inf first). The order
//! "logit descending, then id ascending" is total, so ties always resolve the same way.

use std::cmp::Ordering;

/// One token still in the running, with its (processed) logit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Logit, finite.
    pub logit: f32,
}

/// "Better first": higher logit first, ties to the lower id.
pub fn by_rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// Sorts `cands` best first.
pub fn sort_by_rank(cands: &mut [Candidate]) {
    cands.sort_unstable_by(by_rank);
}

/// Keeps the `k` best candidates (all of them when `k` is 0 or not smaller than the list).
/// Returns true when it truncated, in which case the list is now sorted best first; an
/// untouched list keeps its order, so the full vocabulary is never sorted needlessly.
pub fn top_k(cands: &mut Vec<Candidate>, k: usize) -> bool {
    if k == 0 || k >= cands.len() {
        return false;
    }
    cands.select_nth_unstable_by(k - 1, by_rank);
    cands.truncate(k);
    sort_by_rank(cands);
    true
}

/// Softmax probabilities of `cands` at temperature 1, computed in f64.
pub fn softmax(cands: &[Candidate]) -> Vec<f64> {
    let max = cands
        .iter()
        .map(|c| c.logit)
        .fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = cands
        .iter()
        .map(|c| f64::from(c.logit - max).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Keeps the shortest prefix of `cands` (which must be sorted best first) whose probability
/// mass reaches `p`. `p >= 1` keeps everything.
pub fn top_p(cands: &mut Vec<Candidate>, p: f32) {
    if p >= 1.0 || cands.is_empty() {
        return;
    }
    let probs = softmax(cands);
    let mut cum = 0.0;
    let mut keep = cands.len();
    for (i, prob) in probs.iter().enumerate() {
        cum += prob;
        if cum >= f64::from(p) {
            keep = i + 1;
            break;
        }
    }
    cands.truncate(keep);
}

/// Drops candidates whose probability is below `p` times the best one's, that is whose
/// logit is below `max_logit + ln(p)` (llama.cpp compares in logit space). `p <= 0` keeps
/// everything; the best candidate always survives. Order is preserved.
pub fn min_p(cands: &mut Vec<Candidate>, p: f32) {
    if p <= 0.0 || cands.is_empty() {
        return;
    }
    let max = cands
        .iter()
        .map(|c| c.logit)
        .fold(f32::NEG_INFINITY, f32::max);
    let threshold = max + p.ln();
    cands.retain(|c| c.logit >= threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(logits: &[f32]) -> Vec<Candidate> {
        logits
            .iter()
            .enumerate()
            .map(|(i, &logit)| Candidate {
                id: i as u32,
                logit,
            })
            .collect()
    }

    fn ids(cands: &[Candidate]) -> Vec<u32> {
        cands.iter().map(|c| c.id).collect()
    }

    #[test]
    fn top_k_keeps_the_best_and_breaks_ties_by_lowest_id() {
        let mut c = cands(&[1.0, 3.0, 2.0, 3.0, 0.0]);
        assert!(top_k(&mut c, 3));
        assert_eq!(ids(&c), [1, 3, 2]);
        let mut c = cands(&[1.0, 3.0, 2.0, 3.0]);
        assert!(top_k(&mut c, 1));
        assert_eq!(ids(&c), [1]);
        for k in [0, 2, 3] {
            let mut c = cands(&[1.0, 3.0]);
            assert!(!top_k(&mut c, k));
            assert_eq!(ids(&c), [0, 1], "k = {k} keeps the list as it was");
        }
    }

    #[test]
    fn top_p_keeps_the_smallest_prefix_reaching_the_mass() {
        // Probabilities 0.5, 0.25, 0.125, 0.125.
        let l = [0.0, -(2f32.ln()), -(4f32.ln()), -(4f32.ln())];
        for (p, want) in [(0.4, 1), (0.5, 1), (0.7, 2), (0.8, 3), (0.99, 4), (1.0, 4)] {
            let mut c = cands(&l);
            sort_by_rank(&mut c);
            top_p(&mut c, p);
            assert_eq!(c.len(), want, "p = {p}");
        }
    }

    #[test]
    fn min_p_drops_tokens_below_the_scaled_maximum() {
        // Probabilities relative to the best: 1, 0.5, 0.25, 0.1.
        let l = [0.0, -(2f32.ln()), -(4f32.ln()), -(10f32.ln())];
        let mut c = cands(&l);
        min_p(&mut c, 0.3);
        assert_eq!(ids(&c), [0, 1]);
        let mut c = cands(&l);
        min_p(&mut c, 1.0);
        assert_eq!(ids(&c), [0]);
        let mut c = cands(&l);
        min_p(&mut c, 0.0);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&cands(&[1000.0, 999.0, -1000.0]));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] / p[1] - std::f64::consts::E).abs() < 1e-9);
    }
}

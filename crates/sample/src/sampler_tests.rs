//! Tests of [`Sampler`]: greedy and seeded draws, the distribution, penalties, logprobs.

use proptest::prelude::*;

use super::*;

fn sampler(params: SamplingParams) -> Sampler {
    Sampler::new(params).expect("valid params")
}

/// Plain softmax sampling at temperature `t`: no truncation, no penalties.
fn plain(t: f32, seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: t,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: Some(seed),
        ..Default::default()
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Logits drawn from a small set of values, so ties are common.
fn logits_strategy() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((-20i32..20).prop_map(|v| v as f32 * 0.5), 1..300)
}

proptest! {
    #[test]
    fn greedy_is_argmax_with_ties_to_lowest_id(logits in logits_strategy()) {
        let got = sampler(SamplingParams::greedy()).sample(&mut logits.clone(), &[]).expect("finite");
        prop_assert_eq!(got.token, argmax(&logits));
    }

    #[test]
    fn top_k_1_is_greedy_at_any_temperature(logits in logits_strategy(), t in 0.05f32..3.0, seed: u64) {
        let params = SamplingParams { top_k: 1, ..plain(t, seed) };
        let got = sampler(params).sample(&mut logits.clone(), &[]).expect("finite");
        prop_assert_eq!(got.token, argmax(&logits));
        prop_assert_eq!(got.logprob, 0.0);
    }

    #[test]
    fn same_seed_gives_the_same_sequence(logits in logits_strategy(), seed: u64) {
        let params = SamplingParams { seed: Some(seed), ..Default::default() };
        let (mut a, mut b) = (sampler(params.clone()), sampler(params));
        for step in 0..20u32 {
            let history: Vec<u32> = (0..step).collect();
            let x = a.sample(&mut logits.clone(), &history).expect("finite");
            let y = b.sample(&mut logits.clone(), &history).expect("finite");
            prop_assert_eq!(x, y);
        }
    }

    #[test]
    fn logprobs_form_a_distribution(logits in logits_strategy(), t in 0.1f32..2.0, seed: u64) {
        let n = logits.len().min(20);
        let params = SamplingParams { top_logprobs: 20, ..plain(t, seed) };
        let got = sampler(params).sample(&mut logits.clone(), &[]).expect("finite");
        prop_assert_eq!(got.top_logprobs.len(), n);
        prop_assert!(got.top_logprobs.windows(2).all(|w| w[0].1 >= w[1].1));
        prop_assert!(got.logprob <= 0.0);
        if logits.len() <= 20 {
            let mass: f32 = got.top_logprobs.iter().map(|(_, lp)| lp.exp()).sum();
            prop_assert!((mass - 1.0).abs() < 1e-4, "mass {}", mass);
        }
        let listed = got.top_logprobs.iter().find(|(id, _)| *id == got.token);
        if let Some(&(_, lp)) = listed {
            prop_assert_eq!(lp, got.logprob);
        }
    }
}

#[test]
fn frequencies_match_the_softmax() {
    let logits = [1.0f32, 2.0, 0.5, -1.0, 0.0];
    for t in [1.0f32, 0.5] {
        let mut s = sampler(plain(t, 1234));
        let n = 40_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            counts[s.sample(&mut logits.to_vec(), &[]).expect("finite").token as usize] += 1;
        }
        let exps: Vec<f64> = logits
            .iter()
            .map(|&l| (f64::from(l) / f64::from(t)).exp())
            .collect();
        let z: f64 = exps.iter().sum();
        for (i, e) in exps.iter().enumerate() {
            let (want, got) = (e / z, counts[i] as f64 / n as f64);
            // 5 standard deviations of a binomial proportion at n = 40 000.
            let tol = 5.0 * (want * (1.0 - want) / n as f64).sqrt();
            assert!(
                (got - want).abs() < tol,
                "t={t} token {i}: got {got:.4}, want {want:.4}"
            );
        }
    }
}

#[test]
fn truncation_filters_never_let_dropped_tokens_through() {
    // Probabilities ∝ 8, 4, 2, 1, 1 (sum 16).
    let logits: Vec<f32> = [8f32, 4.0, 2.0, 1.0, 1.0].iter().map(|p| p.ln()).collect();
    let cases = [
        (
            SamplingParams {
                top_k: 2,
                ..plain(1.0, 1)
            },
            vec![0, 1],
        ),
        (
            SamplingParams {
                top_p: 0.7,
                ..plain(1.0, 2)
            },
            vec![0, 1],
        ),
        (
            SamplingParams {
                min_p: 0.2,
                ..plain(1.0, 3)
            },
            vec![0, 1, 2],
        ),
    ];
    for (params, allowed) in cases {
        let mut s = sampler(params.clone());
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            seen.insert(s.sample(&mut logits.clone(), &[]).expect("finite").token);
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), allowed, "{params:?}");
    }
}

#[test]
fn penalties_and_bias_change_the_greedy_choice() {
    let logits = [3.0f32, 2.5, 1.0];
    let rep = SamplingParams {
        repetition_penalty: 1.5,
        ..SamplingParams::greedy()
    };
    let mut row = logits.to_vec();
    assert_eq!(
        sampler(rep.clone())
            .sample(&mut row, &[0])
            .expect("finite")
            .token,
        1
    );
    assert_eq!(row, [2.0, 2.5, 1.0], "only the seen token's logit changes");
    assert_eq!(
        sampler(rep)
            .sample(&mut logits.to_vec(), &[2])
            .expect("finite")
            .token,
        0
    );
    let bias = SamplingParams {
        logit_bias: vec![(2, 10.0)],
        ..SamplingParams::greedy()
    };
    assert_eq!(
        sampler(bias)
            .sample(&mut logits.to_vec(), &[])
            .expect("finite")
            .token,
        2
    );
    let ban = SamplingParams {
        logit_bias: vec![(0, -100.0)],
        ..SamplingParams::greedy()
    };
    assert_eq!(
        sampler(ban)
            .sample(&mut logits.to_vec(), &[])
            .expect("finite")
            .token,
        1
    );
}

#[test]
fn bias_applies_before_the_repetition_penalty_as_in_llama_cpp() {
    let params = SamplingParams {
        repetition_penalty: 2.0,
        logit_bias: vec![(0, 2.0)],
        ..SamplingParams::greedy()
    };
    let mut row = vec![2.0f32, 0.0];
    sampler(params).sample(&mut row, &[0]).expect("finite");
    assert_eq!(row[0], 2.0, "(2 + 2) / 2, not 2 / 2 + 2");
}

#[test]
fn greedy_logprobs_are_the_full_softmax() {
    let params = SamplingParams {
        top_logprobs: 2,
        ..SamplingParams::greedy()
    };
    let got = sampler(params)
        .sample(&mut [0.0, 2f32.ln(), 0.0], &[])
        .expect("finite");
    assert_eq!(got.token, 1);
    assert!((got.logprob - 0.5f32.ln()).abs() < 1e-6);
    assert_eq!(got.top_logprobs.len(), 2);
    assert_eq!(got.top_logprobs[0].0, 1);
    assert_eq!(got.top_logprobs[1].0, 0, "ties listed lowest id first");
    assert!((got.top_logprobs[1].1 - 0.25f32.ln()).abs() < 1e-6);
}

#[test]
fn tiny_temperature_behaves_like_greedy_without_overflow() {
    let mut s = sampler(plain(1e-30, 9));
    let got = s.sample(&mut [1.0, 5.0, 4.999], &[]).expect("finite");
    assert_eq!((got.token, got.logprob), (1, 0.0));
}

#[test]
fn non_finite_logits_are_handled() {
    let mut s = sampler(SamplingParams::greedy());
    let got = s
        .sample(&mut [f32::NAN, 1.0, f32::NEG_INFINITY], &[])
        .expect("one finite");
    assert_eq!(got.token, 1);
    let got = s
        .sample(&mut [0.0, f32::INFINITY], &[])
        .expect("+inf is the largest");
    assert_eq!(got.token, 1);
    let err = s.sample(&mut [f32::NAN, f32::NEG_INFINITY], &[]);
    assert_eq!(err, Err(SampleError::NoFiniteLogits { n_vocab: 2 }));
    // Rows longer than the argmax's 16 lanes: ties between lanes and the tail, NaN inside.
    let mut row = vec![f32::NEG_INFINITY; 37];
    row[5] = f32::NAN;
    row[19] = f32::INFINITY;
    row[3] = f32::INFINITY;
    row[36] = f32::INFINITY;
    assert_eq!(s.sample(&mut row, &[]).expect("finite").token, 3);
    let mut row = vec![f32::NAN; 37];
    row[36] = -1.0;
    assert_eq!(s.sample(&mut row, &[]).expect("one finite").token, 36);
    let err = s.sample(&mut [f32::NAN; 40], &[]);
    assert_eq!(err, Err(SampleError::NoFiniteLogits { n_vocab: 40 }));
    let mut r = sampler(plain(1.0, 1));
    assert_eq!(
        r.sample(&mut [f32::NAN; 3], &[]),
        Err(SampleError::NoFiniteLogits { n_vocab: 3 })
    );
    assert_eq!(r.sample(&mut [], &[]), Err(SampleError::EmptyLogits));
}

#[test]
fn invalid_params_and_bias_tokens_are_rejected() {
    let err = Sampler::new(SamplingParams {
        temperature: -1.0,
        ..Default::default()
    });
    assert!(matches!(
        err,
        Err(SampleError::OutOfRange {
            param: "temperature",
            ..
        })
    ));
    let mut s = sampler(SamplingParams {
        logit_bias: vec![(5, 1.0)],
        ..Default::default()
    });
    let err = s.sample(&mut [0.0; 5], &[]);
    assert_eq!(
        err,
        Err(SampleError::BiasTokenOutOfRange {
            token: 5,
            n_vocab: 5
        })
    );
}

#[test]
fn unseeded_samplers_report_their_seed_and_it_reproduces() {
    let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
    let mut a = sampler(SamplingParams {
        top_k: 0,
        ..Default::default()
    });
    let mut b = sampler(SamplingParams {
        seed: Some(a.seed()),
        top_k: 0,
        ..Default::default()
    });
    for _ in 0..50 {
        let x = a.sample(&mut logits.clone(), &[]).expect("finite");
        let y = b.sample(&mut logits.clone(), &[]).expect("finite");
        assert_eq!(x, y);
    }
}

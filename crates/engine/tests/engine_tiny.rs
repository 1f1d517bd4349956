//! The batching engine end to end on the tiny committed llama fixture: batch invariance,
//! pressure, cancellation, prefix reuse, `n` choices, seeds, validation and shutdown.

mod common;

use common::{
    Loaded, Outcome, collect, config, greedy, prompt, run_all, run_alone, start, tiny, wait_idle,
};
use skiff_engine::{EngineError, FinishReason, Request, RequestEvent, ShutdownMode};
use skiff_sample::SamplingParams;

const N_VOCAB: usize = 320;

/// 16 greedy requests of different lengths.
fn sixteen(m: &Loaded) -> Vec<Request> {
    assert_eq!(m.model.n_vocab(), N_VOCAB);
    (0..16)
        .map(|i| {
            let len = 5 + (i as usize * 7) % 40;
            greedy(prompt(i, len, N_VOCAB), 10 + i as usize % 5)
        })
        .collect()
}

fn tokens(outcomes: &[Outcome]) -> Vec<Vec<Vec<u32>>> {
    outcomes.iter().map(|o| o.tokens.clone()).collect()
}

#[test]
fn sixteen_concurrent_greedy_sequences_equal_each_alone() {
    let m = tiny();
    let mut cfg = config(&m, 128, 16, 256);
    cfg.prefix_cache = false;
    let engine = start(&m, cfg);
    let alone = run_alone(&engine, sixteen(&m));
    let before = engine.stats().steps_total;
    let together = run_all(&engine, sixteen(&m));
    assert_eq!(tokens(&together), tokens(&alone));
    let steps = engine.stats().steps_total - before;
    assert!(steps <= 16, "the 16 sequences shared steps ({steps} steps)");
    for o in &together {
        assert_eq!(o.reasons, vec![Some(FinishReason::Length)]);
        assert_eq!(o.error, None);
    }
}

#[test]
fn a_quarter_of_the_kv_demand_still_completes_every_request_identically() {
    let m = tiny();
    let requests = sixteen(&m);
    // Demand: every sequence's prompt plus output, in 4-token blocks.
    let demand: usize = requests
        .iter()
        .map(|r| (r.prompt.len() + r.stop.max_tokens).div_ceil(4))
        .sum();
    let roomy = start(&m, config(&m, 64, 4, demand * 2));
    let want = tokens(&run_all(&roomy, sixteen(&m)));
    let tight = start(&m, config(&m, 64, 4, demand / 4));
    let got = run_all(&tight, sixteen(&m));
    assert_eq!(tokens(&got), want);
    let stats = wait_idle(&tight);
    assert!(
        stats.preempted_total > 0,
        "pressure forced preemption: {stats:?}"
    );
    assert_eq!(stats.kv_blocks_used, 0);
}

#[test]
fn two_hundred_random_cancellations_leave_every_block_free() {
    let m = tiny();
    let mut cfg = config(&m, 128, 4, 80);
    cfg.max_running = 8;
    let engine = start(&m, cfg);
    let mut x: u64 = 7;
    let mut rand = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let mut live = Vec::new();
    for i in 0..200 {
        let mut r = greedy(prompt(i, 3 + rand(40) as usize, N_VOCAB), 60);
        r.n = 1 + rand(3) as usize;
        live.push((engine.submit(r.clone()).expect("submits"), r.n));
        if rand(3) == 0 {
            // Let the engine run a little so some cancellations hit running sequences.
            let (h, _) = live.last_mut().expect("just pushed");
            let _ = h.blocking_recv();
        }
        let (victim, n) = live.swap_remove(rand(live.len() as u64) as usize);
        if i % 2 == 0 {
            victim.cancel();
            // Every choice ends: cancelled, or finished before the cancel arrived.
            let outcome = collect(victim, n);
            for reason in &outcome.reasons {
                assert!(
                    matches!(
                        reason,
                        Some(FinishReason::Cancelled) | Some(FinishReason::Length)
                    ),
                    "{outcome:?}"
                );
            }
        } else {
            drop(victim);
        }
    }
    drop(live);
    let stats = wait_idle(&engine);
    assert_eq!(stats.kv_blocks_used, 0, "{stats:?}");
    assert_eq!(stats.kv_blocks_total, 80);
}

#[test]
fn a_shared_prefix_is_computed_once() {
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let prefix = prompt(99, 96, N_VOCAB);
    let mut first = prefix.clone();
    first.extend(prompt(1, 5, N_VOCAB));
    let mut second = prefix.clone();
    second.extend(prompt(2, 7, N_VOCAB));
    let a = run_all(&engine, vec![greedy(first.clone(), 4)]).remove(0);
    let s1 = engine.stats();
    let b = run_all(&engine, vec![greedy(second.clone(), 4)]).remove(0);
    let s2 = engine.stats();
    assert_eq!(a.started, Some((101, 0)));
    assert_eq!(
        b.started,
        Some((103, 96)),
        "six full blocks of the prefix reused"
    );
    let computed_first = s1.prompt_tokens_total;
    let computed_second = s2.prompt_tokens_total - s1.prompt_tokens_total;
    assert_eq!(computed_first, 101);
    assert_eq!(computed_second, 7);
    assert!(computed_second * 10 <= computed_first);
    assert_eq!(s2.prefix_hit_tokens_total, 96);
    assert_eq!(s2.prefix_lookup_tokens_total, 204);
    // The reused prefix gives what a cold engine computes.
    let cold = start(&m, config(&m, 128, 16, 64));
    assert_eq!(run_all(&cold, vec![greedy(second, 4)])[0].tokens, b.tokens);
    // A different salt never reuses another tenant's blocks.
    let mut salted = greedy(first, 4);
    salted.cache_salt = 5;
    assert_eq!(run_all(&engine, vec![salted])[0].started, Some((101, 0)));
}

fn sampled(prompt: Vec<u32>, seed: u64, n: usize) -> Request {
    let mut r = greedy(prompt, 12);
    r.sampling = SamplingParams {
        temperature: 1.0,
        seed: Some(seed),
        ..SamplingParams::default()
    };
    r.n = n;
    r
}

/// [`sampled`] with a logit bias: the engine samples each row in place, so a choice forked
/// off the prompt's row must get the row as it came out of the model, not as another choice's
/// sampler left it (bias added twice).
fn biased(prompt: Vec<u32>, seed: u64, n: usize) -> Request {
    let mut r = sampled(prompt, seed, n);
    r.sampling.logit_bias = (3..60).map(|t| (t, 2.5)).collect();
    r
}

#[test]
fn n_choices_share_the_prompt_and_each_equals_its_own_seed() {
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let p = prompt(5, 37, N_VOCAB); // two full blocks and a partial one
    let before = engine.stats();
    let both = run_all(&engine, vec![biased(p.clone(), 40, 3)]).remove(0);
    let after = engine.stats();
    assert_eq!(
        after.prompt_tokens_total - before.prompt_tokens_total,
        37,
        "the prompt ran once for three choices"
    );
    assert_eq!(both.reasons, vec![Some(FinishReason::Length); 3]);
    // Choice i samples with seed + i: it equals a lone request with that seed.
    let mut cold_cfg = config(&m, 128, 16, 64);
    cold_cfg.prefix_cache = false;
    let cold = start(&m, cold_cfg);
    for i in 0..3 {
        let alone = run_all(&cold, vec![biased(p.clone(), 40 + i as u64, 1)]).remove(0);
        assert_eq!(both.tokens[i], alone.tokens[0], "choice {i}");
    }
    assert_ne!(
        both.tokens[0], both.tokens[1],
        "different seeds, different samples"
    );
    // Greedy choices are all the same.
    let mut g = greedy(p, 8);
    g.n = 2;
    let g = run_all(&engine, vec![g]).remove(0);
    assert_eq!(g.tokens[0], g.tokens[1]);
    assert_eq!(wait_idle(&engine).kv_blocks_used, 0);
}

#[test]
fn a_seed_reproduces_its_sample() {
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let p = prompt(8, 20, N_VOCAB);
    let a = run_all(&engine, vec![sampled(p.clone(), 3, 1)]).remove(0);
    let b = run_all(&engine, vec![sampled(p.clone(), 3, 1)]).remove(0);
    let c = run_all(&engine, vec![sampled(p, 4, 1)]).remove(0);
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(a.tokens, c.tokens);
}

#[test]
fn stop_tokens_stop_strings_and_logprobs() {
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let p = prompt(11, 10, N_VOCAB);
    let free = run_all(&engine, vec![greedy(p.clone(), 12)]).remove(0);
    let third = free.tokens[0][2];
    let mut r = greedy(p.clone(), 12);
    r.stop.stop_tokens = vec![third];
    r.logprobs = Some(3);
    let stopped = run_all(&engine, vec![r]).remove(0);
    let cut = free.tokens[0]
        .iter()
        .position(|&t| t == third)
        .expect("present");
    assert_eq!(stopped.tokens[0], free.tokens[0][..cut]);
    assert_eq!(stopped.reasons, vec![Some(FinishReason::Stop)]);
    assert!(stopped.top_logprob_lens.iter().all(|&n| n == 3));
    // ignore_eos keeps going through the tokenizer's end-of-generation tokens only.
    let mut r = greedy(p, 12);
    r.stop.stop_tokens = m.tokenizer.eog_ids().to_vec();
    r.ignore_eos = true;
    let through = run_all(&engine, vec![r]).remove(0);
    assert_eq!(through.tokens, free.tokens);
    // The text streamed is the detokenized output.
    let text = m.tokenizer.decode(&free.tokens[0], true).expect("decodes");
    assert_eq!(free.text[0], text);
}

#[test]
fn submit_rejects_bad_requests_by_name() {
    let m = tiny();
    let engine = start(&m, config(&m, 64, 16, 16));
    let p = prompt(1, 10, N_VOCAB);
    let err = |r: Request| engine.submit(r).expect_err("rejected");
    assert!(matches!(err(greedy(vec![], 4)), EngineError::EmptyPrompt));
    assert!(matches!(
        err(greedy(p.clone(), 60)),
        EngineError::ContextExceeded {
            prompt_tokens: 10,
            max_tokens: 60,
            limit: 64
        }
    ));
    let mut r = greedy(p.clone(), 4);
    r.n = 17;
    assert!(matches!(
        err(r),
        EngineError::InvalidRequest { param: "n", .. }
    ));
    let mut r = greedy(p.clone(), 4);
    r.logprobs = Some(21);
    assert!(matches!(
        err(r),
        EngineError::InvalidRequest {
            param: "logprobs",
            ..
        }
    ));
    let mut r = greedy(p.clone(), 4);
    r.sampling.temperature = -1.0;
    assert!(matches!(
        err(r),
        EngineError::InvalidRequest {
            param: "temperature",
            ..
        }
    ));
    let mut r = greedy(p.clone(), 4);
    r.stop.stop_strings = vec![String::new()];
    assert!(matches!(
        err(r),
        EngineError::InvalidRequest { param: "stop", .. }
    ));
    let e = err(greedy(vec![N_VOCAB as u32], 4));
    assert!(e.to_string().contains("320"), "{e}");
    let mut cfg = config(&m, 64, 16, 16);
    cfg.max_queue = 0;
    let full = start(&m, cfg);
    assert!(matches!(
        full.submit(greedy(p, 4)),
        Err(EngineError::QueueFull { limit: 0 })
    ));
}

#[test]
fn start_rejects_a_pool_too_small_for_one_sequence() {
    let m = tiny();
    let cfg = config(&m, 128, 16, 7);
    let result =
        skiff_engine::Engine::start(m.model.clone(), m.tokenizer.clone(), m.cpu.clone(), cfg);
    assert!(matches!(
        result,
        Err(EngineError::InvalidParam {
            param: "kv_memory_bytes",
            ..
        })
    ));
}

#[test]
fn shutdown_drains_or_cancels() {
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let h = engine
        .submit(greedy(prompt(1, 8, N_VOCAB), 20))
        .expect("submits");
    engine.shutdown(ShutdownMode::Drain);
    let drained = collect(h, 1);
    assert_eq!(drained.tokens[0].len(), 20);
    assert!(matches!(
        engine.submit(greedy(prompt(1, 8, N_VOCAB), 4)),
        Err(EngineError::ShuttingDown)
    ));

    let engine = start(&m, config(&m, 128, 16, 64));
    let mut h = engine
        .submit(greedy(prompt(2, 8, N_VOCAB), 100))
        .expect("submits");
    assert!(matches!(
        h.blocking_recv(),
        Some(RequestEvent::Started { .. })
    ));
    engine.shutdown(ShutdownMode::Cancel);
    let cancelled = collect(h, 1);
    assert_eq!(cancelled.reasons, vec![Some(FinishReason::Cancelled)]);
    assert!(cancelled.tokens[0].len() < 100);
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<skiff_engine::Engine>();
    send::<skiff_engine::RequestHandle>();
    // A clone submits from another thread; dropping every clone stops the core.
    let m = tiny();
    let engine = start(&m, config(&m, 128, 16, 64));
    let other = engine.clone();
    let out = std::thread::spawn(move || run_all(&other, vec![greedy(prompt(3, 9, N_VOCAB), 5)]))
        .join()
        .expect("the thread finishes");
    assert_eq!(out[0].tokens[0].len(), 5);
    assert_eq!(engine.config().max_seq_len, 128);
}

//! The batching engine on the real SmolLM2-135M (`SKIFF_TEST_MODEL_DIR`; skipped with a
//! message when unset, failing when set but the file is missing): batch invariance,
//! pressure, prefix reuse over a 1,000-token prefix, `n` choices and seeds, cancellations.

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::{
    Loaded, collect, greedy, load, real_model_path, run_all, run_alone, start, wait_idle,
};
use skiff_engine::{EngineConfig, FinishReason, KvDtype, Request, RequestEvent};
use skiff_sample::SamplingParams;

const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn model() -> Option<&'static Loaded> {
    static MODEL: OnceLock<Option<Loaded>> = OnceLock::new();
    MODEL
        .get_or_init(|| real_model_path(MODEL_FILE).map(|p| load(&p)))
        .as_ref()
}

/// The default f16 KV, `n_blocks` 16-token blocks.
fn config(m: &Loaded, max_seq_len: usize, n_blocks: usize) -> EngineConfig {
    let per_block =
        skiff_models::KvCache::bytes_per_block(&m.model.spec().hparams, 16, KvDtype::F16);
    EngineConfig {
        kv_memory_bytes: per_block * n_blocks,
        max_seq_len,
        ..EngineConfig::for_model(&m.model)
    }
}

fn encode(m: &Loaded, text: &str) -> Vec<u32> {
    m.tokenizer.encode(text, true).expect("encodes")
}

const TOPICS: [&str; 16] = [
    "the ocean",
    "a small village",
    "the history of bread",
    "how rain forms",
    "a robot that paints",
    "the moon landing",
    "learning to swim",
    "a lost key",
    "winter in the mountains",
    "the first computer",
    "a market at dawn",
    "bees and flowers",
    "a long train journey",
    "the speed of light",
    "an old lighthouse",
    "planting a garden",
];

fn sixteen(m: &Loaded, max_tokens: usize) -> Vec<Request> {
    TOPICS
        .iter()
        .map(|t| {
            greedy(
                encode(m, &format!("Write one sentence about {t}:")),
                max_tokens,
            )
        })
        .collect()
}

fn tokens(outcomes: &[common::Outcome]) -> Vec<Vec<u32>> {
    outcomes.iter().map(|o| o.tokens[0].clone()).collect()
}

#[test]
fn sixteen_concurrent_greedy_sequences_equal_each_alone_and_under_pressure() {
    let Some(m) = model() else { return };
    let max_tokens = 12;
    let mut cfg = config(m, 256, 256);
    cfg.prefix_cache = false;
    let engine = start(m, cfg);
    let alone = tokens(&run_alone(&engine, sixteen(m, max_tokens)));
    let together = tokens(&run_all(&engine, sixteen(m, max_tokens)));
    assert_eq!(
        together, alone,
        "batched greedy outputs equal each run alone"
    );
    assert!(alone.iter().all(|t| t.len() == max_tokens));

    // Pressure: a pool of 25% of the blocks the 16 sequences need at their longest.
    let demand: usize = sixteen(m, max_tokens)
        .iter()
        .map(|r| (r.prompt.len() + max_tokens).div_ceil(16))
        .sum();
    let tight = start(m, config(m, 64, demand / 4));
    let pressured = tokens(&run_all(&tight, sixteen(m, max_tokens)));
    assert_eq!(
        pressured, alone,
        "identical greedy outputs under KV pressure"
    );
    let stats = wait_idle(&tight);
    assert!(stats.preempted_total > 0, "{stats:?}");
    assert_eq!(stats.kv_blocks_used, 0);
}

/// A 1,000-token document prefix followed by a question.
fn document(m: &Loaded) -> Vec<u32> {
    let mut text = String::new();
    let mut i = 0;
    while encode(m, &text).len() < 1000 {
        text.push_str(&format!(
            "Record {i}: the warehouse in district {} shipped {} crates of apples on day {}. ",
            i % 7,
            i * 13 % 101,
            i % 30
        ));
        i += 1;
    }
    let mut tokens = encode(m, &text);
    tokens.truncate(1000);
    tokens
}

#[test]
fn a_shared_thousand_token_prefix_is_not_computed_again() {
    let Some(m) = model() else { return };
    let engine = start(m, config(m, 1100, 256));
    let prefix = document(m);
    let ask = |q: &str| {
        let mut p = prefix.clone();
        p.extend(
            encode(m, q)
                .iter()
                .skip(usize::from(m.tokenizer.adds_bos())),
        );
        greedy(p, 4)
    };
    let ttft = |request: Request| {
        let t0 = Instant::now();
        let mut h = engine.submit(request).expect("submits");
        let mut cached = None;
        loop {
            match h.blocking_recv().expect("events until a token") {
                RequestEvent::Started {
                    cached_prompt_tokens,
                    ..
                } => cached = Some(cached_prompt_tokens),
                RequestEvent::Token { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        let elapsed = t0.elapsed();
        let rest = collect(h, 1);
        assert_eq!(rest.error, None);
        (elapsed, cached.expect("Started came first"))
    };
    let s0 = engine.stats();
    let (t_first, cached_first) = ttft(ask(" Which district shipped the most?"));
    let s1 = engine.stats();
    let (t_second, cached_second) = ttft(ask(" On which day were the fewest crates shipped?"));
    let s2 = engine.stats();
    assert_eq!(cached_first, 0);
    assert_eq!(
        cached_second, 992,
        "62 full 16-token blocks of the prefix reused"
    );
    let computed_first = s1.prompt_tokens_total - s0.prompt_tokens_total;
    let computed_second = s2.prompt_tokens_total - s1.prompt_tokens_total;
    assert!(computed_first >= 1000);
    assert!(
        computed_second * 10 <= computed_first,
        "second prefill computed {computed_second} tokens vs {computed_first}"
    );
    eprintln!(
        "prefix reuse: TTFT {:.1} ms cold vs {:.1} ms cached (ratio {:.3}); prompt tokens \
         computed {computed_first} vs {computed_second}",
        t_first.as_secs_f64() * 1e3,
        t_second.as_secs_f64() * 1e3,
        t_second.as_secs_f64() / t_first.as_secs_f64()
    );
}

#[test]
fn n_choices_and_seeds_reproduce() {
    let Some(m) = model() else { return };
    let engine = start(m, config(m, 256, 64));
    let prompt = encode(m, "Once upon a time, in a quiet town,");
    let sampled = |seed: u64, n: usize| {
        let mut r = greedy(prompt.clone(), 10);
        r.sampling = SamplingParams {
            seed: Some(seed),
            ..SamplingParams::default()
        };
        r.n = n;
        r
    };
    let before = engine.stats().prompt_tokens_total;
    let two = run_all(&engine, vec![sampled(21, 2)]).remove(0);
    let computed = engine.stats().prompt_tokens_total - before;
    assert_eq!(
        computed as usize,
        prompt.len(),
        "one prefill for both choices"
    );
    assert_eq!(two.reasons, vec![Some(FinishReason::Length); 2]);
    for (i, seed) in [21, 22].into_iter().enumerate() {
        let again = run_all(&engine, vec![sampled(seed, 1)]).remove(0);
        assert_eq!(again.tokens[0], two.tokens[i], "choice {i} is seed {seed}");
    }
    assert_eq!(wait_idle(&engine).kv_blocks_used, 0);
}

#[test]
fn two_hundred_random_cancellations_leave_every_block_free() {
    let Some(m) = model() else { return };
    let mut cfg = config(m, 256, 128);
    cfg.max_running = 8;
    let engine = start(m, cfg);
    let base = encode(m, "List the numbers from one to fifty:");
    let mut x: u64 = 99;
    let mut rand = move |n: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let mut live = Vec::new();
    for i in 0..200u32 {
        let mut p = base.clone();
        p.push(1000 + i);
        let mut r = greedy(p, 50);
        r.n = 1 + rand(2) as usize;
        live.push(engine.submit(r).expect("submits"));
        if rand(4) == 0 {
            let _ = live.last_mut().expect("just pushed").blocking_recv();
        }
        let victim = live.swap_remove(rand(live.len() as u64) as usize);
        if i % 2 == 0 {
            victim.cancel();
        }
        drop(victim);
    }
    drop(live);
    let stats = wait_idle(&engine);
    assert_eq!(stats.kv_blocks_used, 0, "{stats:?}");
}

#!/usr/bin/env python3
"""Side-by-side speed of skiff and llama.cpp on the same GGUF files, same machine, same threads.

For each model and thread count this runs llama.cpp's tool and `skiff bench --json` one after
the other (alternating, `--rounds` times, so drift on a shared machine hits both alike) with the
same -p/-n/-r, then prints the tokens/s of each and the ratio skiff / llama.cpp.

  # llama-bench terms: pp512 and tg128 at 1 and 2 threads, 5 repetitions
  bench/side_by_side.py /root/sk/models/SmolLM2-135M-Instruct.Q4_1.gguf -t 1,2
  # llama-batched-bench terms: 1, 8 and 32 sequences of 128 prompt + 128 generated tokens
  bench/side_by_side.py MODEL.gguf --parallel 1,8,32 -p 128 -n 128 -t 2

llama.cpp is built by bench/build_llama_cpp.sh (from the llama-cpp-python sdist on PyPI,
cached under ~/.cache/skiff-bench); skiff is target/release/skiff, built with
`cargo build --release -p skiff-cli` when missing (or pass --skiff PATH).
Needs only Python 3 (no packages). See bench/README.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(msg):
    print(f"[side_by_side] {msg}", file=sys.stderr, flush=True)


def llama_bin_dir(args):
    if args.llama_bin_dir:
        return Path(args.llama_bin_dir)
    out = subprocess.run(
        [str(ROOT / "bench" / "build_llama_cpp.sh")], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def skiff_binary(args):
    if args.skiff:
        return Path(args.skiff)
    path = ROOT / "target" / "release" / "skiff"
    if not path.exists():
        log("building skiff (cargo build --release -p skiff-cli)")
        subprocess.run(["cargo", "build", "--release", "-p", "skiff-cli"], cwd=ROOT, check=True)
    return path


def run_json(cmd, jsonl=False):
    """Runs cmd; returns its JSON array (or the JSON objects of its lines)."""
    log(" ".join(str(c) for c in cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"command failed with status {proc.returncode}: {cmd[0]}")
    if not jsonl:
        return json.loads(proc.stdout)
    lines = (proc.stdout + "\n" + proc.stderr).splitlines()
    return [json.loads(l) for l in lines if l.startswith("{") and '"speed_tg"' in l]


def single(args, model, threads, llama_dir, skiff):
    """{(test, threads): {"llama": [t/s...], "skiff": [t/s...]}} over the rounds."""
    common = ["-p", args.p, "-n", args.n, "-r", str(args.r)]
    results = {}
    for rnd in range(args.rounds):
        for t in threads:
            llama = run_json([llama_dir / "llama-bench", "-m", model, "-t", str(t), "-o", "json", *common])
            ours = run_json([skiff, "bench", model, "-t", str(t), "--json", *common])
            for name, rows in (("llama", llama), ("skiff", ours)):
                for row in rows:
                    test = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
                    key = (test, row["n_threads"])
                    results.setdefault(key, {"llama": [], "skiff": []})[name].append(row["avg_ts"])
    return results


def parallel(args, model, threads, llama_dir, skiff):
    """{(pl, threads): {...}} with prompt and decode speeds of both tools."""
    pls = [int(x) for x in args.parallel.split(",")]
    pps = [int(x) for x in args.p.split(",")]
    tgs = [int(x) for x in args.n.split(",")]
    n_ctx = max(pls) * (max(pps) + max(tgs))
    results = {}
    for rnd in range(args.rounds):
        for t in threads:
            llama = run_json([
                llama_dir / "llama-batched-bench", "-m", model, "-c", str(n_ctx), "-b", "2048", "-ub", "512",
                "-npp", args.p, "-ntg", args.n, "-npl", args.parallel, "-t", str(t), "-tb", str(t),
                "--output-format", "jsonl",
            ], jsonl=True)
            ours = run_json([
                skiff, "bench", model, "--parallel", args.parallel, "-p", args.p, "-n", args.n,
                "-t", str(t), "--json",
            ], jsonl=True)
            for name, rows in (("llama", llama), ("skiff", ours)):
                for row in rows:
                    for kind in ("speed_pp", "speed_tg"):
                        key = (f"pl{row['pl']} {kind}", t)
                        results.setdefault(key, {"llama": [], "skiff": []})[name].append(row[kind])
    return results


def print_table(model, results):
    print(f"\n{Path(model).name}\n")
    # With several rounds, each round's own ratio too: on a shared machine the spread between
    # rounds says how far to trust the mean.
    print("| test | threads | llama.cpp t/s | skiff t/s | skiff / llama.cpp | per round |")
    print("| :--- | ------: | ------------: | --------: | ----------------: | :-------- |")
    for (test, t), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if not r["llama"] or not r["skiff"]:
            continue
        l, s = statistics.mean(r["llama"]), statistics.mean(r["skiff"])
        rounds = " ".join(f"{b / a:.2f}x" for a, b in zip(r["llama"], r["skiff"]))
        print(f"| {test} | {t} | {l:.2f} | {s:.2f} | {s / l:.2f}x | {rounds} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="GGUF files")
    ap.add_argument("-t", "--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("-p", default=None, help="prompt length(s) (default 512; 128 with --parallel)")
    ap.add_argument("-n", default=None, help="generated tokens (default 128)")
    ap.add_argument("-r", type=int, default=5, help="repetitions per test (default 5)")
    ap.add_argument("--rounds", type=int, default=1, help="alternations of the two tools (default 1)")
    ap.add_argument("--parallel", help="llama-batched-bench mode: sequence counts, e.g. 1,8,32")
    ap.add_argument("--skiff", help="skiff binary (default target/release/skiff)")
    ap.add_argument("--llama-bin-dir", help="directory with llama-bench (default: build it)")
    args = ap.parse_args()
    args.p = args.p or ("128" if args.parallel else "512")
    args.n = args.n or "128"
    threads = [int(x) for x in args.threads.split(",")]
    llama_dir = llama_bin_dir(args)
    skiff = skiff_binary(args)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tables = []
    for model in args.models:
        run = parallel if args.parallel else single
        tables.append((model, run(args, model, threads, llama_dir, skiff)))
    print(f"# skiff vs llama.cpp, measured {started} on {os.uname().nodename} ({os.cpu_count()} CPUs)")
    for model, results in tables:
        print_table(model, results)


if __name__ == "__main__":
    main()

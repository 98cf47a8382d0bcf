"""The reward server under load: `mixed-r1 serve` on 127.0.0.1, OpenRLHF /get_reward batches of
realistic mixed samples (rules_bench.make: yes_no, mcq, numeric, chart, grounding), driven by wrk
for a fixed time while the server's resident memory is sampled from /proc.

Before the load, every distinct body is sent once and its rewards are checked against
`mixed-r1 reward score` on the same samples; after it, /metrics must show no error of any kind.
Prints samples/s, latency percentiles, errors and RSS; writes bench/results/server.json.

    bash bench/server_bench.sh            # installs wrk if missing, builds, runs this
    python3 bench/server_bench.py --seconds 60 --connections 8 --batch 64

Only loopback traffic; the run is bounded by --seconds (plus a short warm-up).
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from rules_bench import make  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "mixed-r1")
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
QUESTIONS = {
    "yes_no": "Is there a red object in the image? Answer yes or no.",
    "mcq": "Which animal is in the picture? (A) cat (B) dog (C) red fox (D) owl",
    "numeric": "How many items are listed on the sign?",
    "chart": "What is the value for 2019 in the chart?",
    "grounding": "Locate the object in the image and give its bounding box.",
}


def openrlhf_item(sample, i):
    """(query, prompt, label) as OpenRLHF would send them for a Qwen2.5-VL rollout."""
    prompt = (f"{SYSTEM}<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
              f"{QUESTIONS[sample['task']]}<|im_end|>\n<|im_start|>assistant\n")
    # The processor expands the image pad in the decoded query: half the items show it, so the
    # server's chat-template fallback is exercised as much as the prompt-prefix path.
    shown = prompt.replace("<|image_pad|>", "<|image_pad|>" * 64) if i % 2 else prompt
    label = {k: v for k, v in sample.items() if k != "response"}
    return shown + sample["response"] + "<|im_end|>", prompt, json.dumps(label)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def post(url, body):
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def metric_sum(text, name, where=""):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and where in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_wrk(url, payloads, out, seconds, threads, connections):
    env = dict(os.environ, PAYLOADS=payloads, WRK_OUT=out)
    subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                    "--timeout", "30s", "-s", os.path.join(HERE, "server_wrk.lua"), url],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--bodies", type=int, default=32, help="distinct request bodies, used in turn")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--rss-every", type=float, default=2.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "server.json"))
    args = ap.parse_args()

    rng = random.Random(1234)
    samples = [make(rng, i) for i in range(args.batch * args.bodies)]
    with tempfile.TemporaryDirectory() as tmp:
        scoring = os.path.join(tmp, "samples.jsonl")
        with open(scoring, "w") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")
        out = subprocess.run([BIN, "reward", "score", "--input", scoring], check=True,
                             capture_output=True, text=True)
        expected = [json.loads(l)["reward"] for l in out.stdout.splitlines()]
        payloads = os.path.join(tmp, "payloads.jsonl")
        bodies = []
        with open(payloads, "w") as f:
            for b in range(args.bodies):
                items = [openrlhf_item(s, i) for i, s in
                         enumerate(samples[b * args.batch:(b + 1) * args.batch])]
                body = json.dumps({"query": [x[0] for x in items], "prompts": [x[1] for x in items],
                                   "labels": [x[2] for x in items]})
                bodies.append(body)
                f.write(body + "\n")
        body_bytes = sum(len(b) for b in bodies) / len(bodies)

        server = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            m = re.search(r"http://(127\.0\.0\.1:\d+)", line)
            if not m:
                raise SystemExit(f"server did not start: {line!r} {server.stderr.read()}")
            base = f"http://{m.group(1)}"
            rss_idle = rss_kib(server.pid)

            # Correctness first: each body's rewards equal the CLI's on the same samples.
            mismatches = 0
            for b, body in enumerate(bodies):
                got = post(base + "/get_reward", body)["rewards"]
                want = [0.0 if r is None else r for r in expected[b * args.batch:(b + 1) * args.batch]]
                mismatches += sum(1 for g, w in zip(got, want) if abs(g - w) > 1e-9)
                mismatches += abs(len(got) - len(want))
            if mismatches:
                raise SystemExit(f"{mismatches} rewards from the server differ from `reward score`")

            run_wrk(base, payloads, os.path.join(tmp, "warm.json"), args.warmup,
                    args.wrk_threads, args.connections)

            rss = []
            stop = threading.Event()

            def sample_rss():
                t0 = time.monotonic()
                while True:
                    rss.append((round(time.monotonic() - t0, 1), rss_kib(server.pid)))
                    if stop.wait(args.rss_every):
                        rss.append((round(time.monotonic() - t0, 1), rss_kib(server.pid)))
                        return

            sampler = threading.Thread(target=sample_rss)
            sampler.start()
            before = get(base + "/metrics")
            w = run_wrk(base, payloads, os.path.join(tmp, "wrk.json"), args.seconds,
                        args.wrk_threads, args.connections)
            stop.set()
            sampler.join()
            after = get(base + "/metrics")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                code = "killed"

    secs = w["duration_us"] / 1e6
    http_errors = sum(w["errors"].values())
    served = (metric_sum(after, "mixed_r1_http_requests_total", 'endpoint="/get_reward",status="200"')
              - metric_sum(before, "mixed_r1_http_requests_total", 'endpoint="/get_reward",status="200"'))
    server_errors = (metric_sum(after, "mixed_r1_http_request_errors_total")
                     - metric_sum(before, "mixed_r1_http_request_errors_total"))
    samples_scored = (metric_sum(after, "mixed_r1_samples_total")
                      - metric_sum(before, "mixed_r1_samples_total"))
    rss_values = [v for _, v in rss]
    summary = {
        "endpoint": "/get_reward (OpenRLHF protocol)",
        "batch": args.batch,
        "distinct_bodies": args.bodies,
        "mean_body_bytes": round(body_bytes),
        "tasks": sorted({s["task"] for s in samples}),
        "seconds": round(secs, 2),
        "connections": args.connections,
        "wrk_threads": args.wrk_threads,
        "cpus": os.cpu_count(),
        "requests": w["requests"],
        "requests_per_s": w["requests"] / secs,
        "samples_per_s": w["requests"] * args.batch / secs,
        "latency_ms": {k: w["latency_us"][k] / 1e3 for k in ("mean", "p50", "p90", "p99", "p999", "max")},
        "wrk_errors": w["errors"],
        "errors": http_errors + int(server_errors),
        "server_requests_200": int(served),
        "server_samples_counted": int(samples_scored),
        "rewards_checked_against_cli": len(bodies) * args.batch,
        "rss_kib": {"idle": rss_idle, "start": rss_values[0], "end": rss_values[-1],
                    "max": max(rss_values), "min": min(rss_values)},
        "rss_series": rss,
        "server_exit_code_after_sigterm": code,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    lat = summary["latency_ms"]
    r = summary["rss_kib"]
    print(f"mixed-r1 serve, POST /get_reward, batches of {args.batch} mixed samples "
          f"({', '.join(summary['tasks'])}), {args.connections} connections, {secs:.0f} s")
    print(f"  throughput   {summary['samples_per_s']:>12,.0f} samples/s  ({summary['requests_per_s']:,.0f} requests/s)")
    print(f"  latency      p50 {lat['p50']:.2f} ms   p90 {lat['p90']:.2f} ms   p99 {lat['p99']:.2f} ms   max {lat['max']:.2f} ms")
    print(f"  errors       {summary['errors']}  (wrk {w['errors']}, server {int(server_errors)})")
    print(f"  RSS          idle {r['idle'] / 1024:.1f} MiB, start {r['start'] / 1024:.1f} MiB, "
          f"end {r['end'] / 1024:.1f} MiB, max {r['max'] / 1024:.1f} MiB ({len(rss)} samples)")
    print(f"  checked      {summary['rewards_checked_against_cli']} rewards equal `mixed-r1 reward score`; "
          f"exit after SIGTERM: {code}")
    if summary["errors"] or code != 0 or served < w["requests"]:
        raise SystemExit("the run had errors")


if __name__ == "__main__":
    main()

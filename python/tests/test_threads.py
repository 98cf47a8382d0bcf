"""Scoring from many Python threads at once: the same results, and the GIL really released while
Rust scores (another Python thread keeps running during one long call)."""
import threading
import time

import mixed_r1
from conftest import CASES


def test_concurrent_callers_get_the_same_results():
    rewards = mixed_r1.Rewards()
    samples = [dict(s, id=i) for i, (s, *_rest) in enumerate(CASES * 40)]
    expected = rewards.score(samples)
    results, errors = {}, []

    def worker(k):
        try:
            for _ in range(20):
                got = rewards.score(samples) if k % 2 else [rewards.score_one(s) for s in samples]
                assert got == expected
            results[k] = got
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 6


def test_gil_is_released_while_scoring():
    # Long responses make the Rust part long, while reading them costs nothing (no copy with
    # the GIL held), so a call spends nearly all its time scoring. The batch grows until one
    # call lasts long enough to tell, whatever the machine's speed.
    long = "<think>" + "the cup is red and the table is brown " * 200_000 + "</think><answer>yes</answer>"
    rewards = mixed_r1.Rewards()
    samples = [{"task": "yes_no", "answer": "yes", "response": long}] * 4
    while True:
        start = time.perf_counter()
        rewards.score(samples)
        if time.perf_counter() - start > 0.1 or len(samples) >= 256:
            break
        samples = samples * 2

    ticks, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    t = threading.Thread(target=ticker)
    t.start()
    try:
        time.sleep(0.01)
        start = time.perf_counter()
        results = rewards.score(samples)
        end = time.perf_counter()
    finally:
        stop.set()
        t.join()
    assert all(r["reward"] == 1.5 for r in results)
    inside = [x for x in ticks if start < x < end]
    # With the GIL held for the whole call the ticker could not run at all inside it.
    assert len(inside) > 100, (len(inside), end - start)

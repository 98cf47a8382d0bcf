"""Bad input stays safe in the wheel: garbage of every kind gets one result per sample (an error,
a skip or a score), never an exception from ``score``, a crash or a hang."""
import json
import math
import random
import time

import mixed_r1

GOOD = "<think>look</think><answer>{}</answer>"


def garbage_samples():
    deep = []
    for _ in range(10_000):
        deep = [deep]
    loop = []
    loop.append(loop)  # a list that contains itself
    deep_dict = {}
    for _ in range(10_000):
        deep_dict = {"a": deep_dict}
    return [
        "{not json",
        "",
        "   ",
        "[]",
        "42",
        json.dumps({"task": "mcq", "answer": "B"}),  # no response
        '{"task": "grounding", "answer": [[NaN, 0, 1, 2]], "response": "x"}',
        '{"task": "numeric", "answer": 1e400, "response": "1"}',
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"task": "yes_no", "answer": "yes", "response": "<answer>yes</answer>", "meta": 1})[:-1]
        + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
        {"task": "mcq", "answer": deep, "response": "A"},
        {"task": "mcq", "answer": loop, "response": "A"},
        {"task": "mcq", "answer": "A", "choices": deep_dict, "response": "A"},
        {"task": "grounding", "answer": [[float("nan"), 0, 10, 10]], "image_size": [64, 64], "response": GOOD.format("[0,0,10,10]")},
        {"task": "grounding", "answer": [[0, 0, 10, 10]], "image_size": [float("inf"), 64], "response": GOOD.format("[0,0,10,10]")},
        {"task": "grounding", "answer": [[0, 0, 1e308, 1e308]], "response": GOOD.format("[0, 0, 1e308, 1e308]")},
        {"task": "grounding", "answer": [[0, 0, 10, 10]], "image_size": [64, 64],
         "response": GOOD.format("[nan, 0, 10, 10] [0, 0, 1e400, 10] [10, 10, 0, 0] [-1e308, -1e308, 1e308, 1e308]")},
        {"task": "math", "answer": r"\frac{1}{2}", "response": GOOD.format("\\frac{" * 50_000 + "}" * 50_000)},
        {"task": "math", "answer": "{" * 50_000 + "}" * 50_000, "response": GOOD.format("1")},
        {"task": "math", "answer": "2", "response": GOOD.format("9" * 100_000 + "^" + "9" * 100_000)},
        {"task": "numeric", "answer": "42", "response": GOOD.format("9 " * 500_000 + "42")},
        {"task": "yes_no", "answer": "yes", "response": "<answer>" * 200_000},
        {"task": "mcq", "answer": "A", "response": GOOD.format("A or C " * 100_000 + "A")},
        {"task": "yes_no", "answer": "yes", "response": "\ud800 <answer>yes</answer>"},  # a lone surrogate
        {"task": "yes_no", "answer": "yes", "response": "<|image_pad|>" * 200_000 + "<answer>yes</answer>"},
        {"task": 3, "answer": "B", "response": "B"},
        {"task": "mcq", "answer": object(), "response": "B"},
        None,
        3.5,
    ]


def test_garbage_gets_one_result_each_without_raising():
    samples = garbage_samples()
    started = time.perf_counter()
    out = mixed_r1.score(samples)
    assert len(out) == len(samples)
    assert time.perf_counter() - started < 60
    for sample, r in zip(samples, out):
        assert set(r) >= {"reward", "format", "accuracy", "task", "error"}, r
        if r["accuracy"] is not None:
            assert 0.0 <= r["accuracy"] <= 1.0 and math.isfinite(r["reward"])
        else:
            assert r["reward"] is None and r["error"], (str(sample)[:80], r)
    by_index = {i: r for i, r in enumerate(out)}
    assert by_index[20]["accuracy"] == 1.0  # a long sequence ending in the gold
    # The unclosed and the hedged responses never score; pads are removed before scoring.
    assert by_index[21]["accuracy"] == 0.0
    assert by_index[22]["accuracy"] == 0.0
    assert by_index[24]["accuracy"] == 1.0
    # The same through the other entry points, one sample at a time.
    for sample in samples:
        if isinstance(sample, (dict, str)):
            mixed_r1.score_one(sample)


def test_random_bytes_and_json_fragments():
    rng = random.Random(5)
    alphabet = '{}[]":,0123456789.eE-+ nulltruefalse\\u<>/answer think boxed\\frac()'
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(3000)]
    out = mixed_r1.score(lines)
    assert len(out) == len(lines)
    assert all(r["reward"] is None or 0.0 <= r["accuracy"] <= 1.0 for r in out)
    floats = mixed_r1.score(lines, output="floats")
    assert floats == [r["reward"] for r in out]

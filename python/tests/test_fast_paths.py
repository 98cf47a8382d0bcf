"""The fast entry points (one float per sample: ``score(..., output="floats")`` and
``score_columns(..., output="floats")``) give exactly the ``reward`` of the full results, and the
borrowed-text design holds up: samples that other threads change, or that change under the
scorer's feet, never crash it or leak into another sample's result."""
import json
import random
import threading

import pytest

import mixed_r1
import rules_bench
from conftest import CASES


def mixed(n, seed=11):
    rng = random.Random(seed)
    return [rules_bench.make(rng, i) for i in range(n)]


def columns_of(samples):
    return dict(
        responses=[s["response"] for s in samples], answers=[s["answer"] for s in samples],
        tasks=[s["task"] for s in samples], choices=[s.get("choices") for s in samples],
        frames=[s.get("frame") for s in samples], pred_frames=[s.get("pred_frame") for s in samples],
        image_sizes=[s.get("image_size") for s in samples],
    )


@pytest.mark.parametrize("n", [3, 40, 2500])  # one by one, all at once, pipelined
def test_floats_are_the_rewards_of_the_dicts(n):
    samples = mixed(n)
    samples[1] = {"task": "mcq", "answer": "B", "id": "bad"}  # no response: None
    samples[2] = json.dumps({"task": "yes_no", "answer": "yes", "response": "<answer>yes</answer>"})
    if n > 3:
        samples[3] = {"task": "yes_no", "answer": "maybe", "response": "<answer>yes</answer>"}  # skip
    dicts = mixed_r1.score(samples)
    floats = mixed_r1.score(samples, output="floats")
    assert floats == [r["reward"] for r in dicts]
    assert floats[1] is None and floats[2] == 1.0
    assert all(f is None or type(f) is float for f in floats)
    assert mixed_r1.Rewards().score(iter(samples), output="floats") == floats  # any iterable


@pytest.mark.parametrize("n", [3, 40, 2500])
def test_column_floats_are_the_reward_column(n):
    samples = [s for s in mixed(n) if isinstance(s, dict)]
    cols = columns_of(samples)
    full = mixed_r1.score_columns(**cols)
    assert mixed_r1.score_columns(**cols, output="floats") == full["reward"]
    assert full["reward"] == [r["reward"] for r in mixed_r1.score(samples)]
    # Tuples, generators and None columns read the same as lists.
    as_tuples = {k: tuple(v) for k, v in cols.items()}
    assert mixed_r1.score_columns(**as_tuples, output="floats") == full["reward"]
    cols["responses"] = (r for r in cols["responses"])
    assert mixed_r1.Rewards().score_columns(**cols, output="floats") == full["reward"]


def test_every_case_and_bad_output_names():
    samples = [s for s, *_ in CASES]
    expected = [reward for _, reward, *_ in CASES]
    assert mixed_r1.score(samples, output="floats") == pytest.approx(expected)
    cols = columns_of(samples)
    assert mixed_r1.score_columns(**cols, output="floats") == pytest.approx(expected)
    assert mixed_r1.score(samples, output="dicts") == mixed_r1.score(samples)
    assert mixed_r1.score_columns(**cols, output="columns") == mixed_r1.score_columns(**cols)
    with pytest.raises(ValueError, match="output"):
        mixed_r1.score(samples, output="columns")
    with pytest.raises(ValueError, match="output"):
        mixed_r1.score_columns(**cols, output="dicts")


def test_bad_values_in_columns_are_errors_of_their_sample():
    cols = columns_of([s for s, *_ in CASES[:3]])
    cols["responses"][1] = 5
    cols["answers"][2] = None
    full = mixed_r1.score_columns(**cols)
    assert full["reward"][0] == 1.5
    assert "`response` must be a string, got int" in full["error"][1]
    assert "missing field `answer`" in full["error"][2]
    assert mixed_r1.score_columns(**cols, output="floats") == [1.5, None, None]


def test_non_ascii_text_and_subclasses_read_the_same():
    class Text(str):
        pass

    base = {"task": "mcq", "answer": "B", "choices": ["chat", "chien"], "response": "<think>é</think><answer>chien</answer>"}
    odd = {"task": Text("mcq"), "answer": Text("B"), "choices": (Text("chat"), "chien"),
           "response": Text("<think>é</think><answer>chien</answer>")}
    assert mixed_r1.score([base, odd] * 600, output="floats") == [1.5] * 1200
    bad = dict(base, response="\ud800")  # a lone surrogate has no UTF-8 form
    assert "surrogates not allowed" in mixed_r1.score_one(bad)["error"]


class ShrinksTheBatch:
    """A gold answer whose conversion (`tolist()`, as for NumPy values) runs Python code that
    empties the list being scored, and frees its samples, mid-batch."""

    def __init__(self, victim):
        self.victim = victim

    def tolist(self):
        self.victim.clear()
        return [[0, 0, 10, 10]]


def test_a_batch_emptied_while_it_is_read_raises_cleanly():
    samples = [dict(s) for s in mixed(3000)]
    samples[1500] = {"task": "grounding", "answer": ShrinksTheBatch(samples), "response": "<answer>[0,0,10,10]</answer>"}
    with pytest.raises(RuntimeError, match="changed size"):
        mixed_r1.score(samples, output="floats")
    # Columns too (the list of responses is the one emptied).
    kept = mixed(3000)
    cols = columns_of(kept)
    cols["image_sizes"][2000] = None
    cols["answers"][2000] = ShrinksTheBatch(cols["responses"])
    with pytest.raises(RuntimeError, match="changed size"):
        mixed_r1.score_columns(**cols, output="floats")
    # The scorer is unharmed.
    assert mixed_r1.score(kept[:50], output="floats") == mixed_r1.score_columns(**columns_of(kept[:50]), output="floats")


def test_samples_replaced_by_another_thread_while_scoring():
    # Another thread keeps swapping each sample's strings for equal new objects (freeing the
    # old ones) while batches are scored: text borrowed by the workers is held, so every
    # result is still the right one.
    samples = mixed(4000)
    expected = mixed_r1.score(samples, output="floats")
    cols = columns_of(samples)
    expected_cols = mixed_r1.score_columns(**cols, output="floats")
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for s in samples:
                s["response"] = "".join([s["response"], "."])[:-1]
                s["task"] = "".join([s["task"], "."])[:-1]
            for i, r in enumerate(cols["responses"]):
                cols["responses"][i] = "".join([r, "."])[:-1]

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(15):
            assert mixed_r1.score(samples, output="floats") == expected
            assert mixed_r1.score_columns(**cols, output="floats") == expected_cols
    finally:
        stop.set()
        t.join()

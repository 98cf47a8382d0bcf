"""mixed_r1.trl, called exactly as TRL's GRPOTrainer._calculate_rewards calls reward functions:
keyword arguments prompts / completions / completion_ids, every dataset column as a list, plus
trainer_state, log_extra and log_metric.

Checked against TRL v1.9.0 (huggingface/trl, tag v1.9.0), ``trl/trainer/grpo_trainer.py``,
``_calculate_rewards``: ``keys = [key for key in inputs[0] if key not in ["prompt", "completion",
"completion_ids"]]``, ``reward_kwargs`` gets those columns plus ``trainer_state``, ``log_extra``,
``log_metric`` (and ``environments`` when set), and a synchronous function is called as
``reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
**reward_kwargs)``; a None in the result becomes NaN.
"""
import multiprocessing
import pickle

import pytest

from mixed_r1 import trl as rf

GOOD = "<think>look</think><answer>{}</answer>"

ROWS = [  # one dataset row per task, as TRL repeats them per generation
    {"task": "yes_no", "answer": "yes", "completion": GOOD.format("Yes")},
    {"task": "mcq", "answer": "B", "choices": ["cat", "dog"], "completion": GOOD.format("dog")},
    {"task": "chart", "answer": "23.5", "completion": GOOD.format("30")},
    {"task": "grounding", "answer": [[0, 0, 100, 100]], "frame": "abs", "image_size": [640, 480],
     "completion": GOOD.format("[0, 0, 100, 50]")},
    {"task": "math", "answer": "1/2", "completion": "<answer>0.5</answer>"},
    {"task": "yes_no", "answer": "maybe", "completion": GOOD.format("yes")},  # unusable gold
    {"task": "open_ended", "answer": "a red cup", "completion": GOOD.format("a red cup")},  # no table: skip
]
COLUMNS = ("task", "answer", "choices", "frame", "image_size")


def call(fn, rows, conversational=False):
    completions = [r["completion"] for r in rows]
    if conversational:
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    columns = {k: [r.get(k) for r in rows] for k in COLUMNS}
    logged = {}
    return fn(
        prompts=[[{"role": "user", "content": "q"}]] * len(rows),
        completions=completions,
        completion_ids=[[1, 2, 3]] * len(rows),
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        log_metric=lambda name, value: logged.__setitem__(name, value),
        **columns,
    )


EXPECTED = {
    rf.format_reward: [1.0, 1.0, 1.0, 1.0, 0.0, None, None],
    rf.matching_reward: [1.0, 1.0, None, None, 1.0, None, None],
    rf.chart_reward: [None, None, 0.0, None, None, None, None],
    rf.iou_reward: [None, None, None, 0.5, None, None, None],
    rf.bmas_reward: [None] * 7,
    rf.mixed_reward: [1.5, 1.5, 0.5, 1.0, 1.0, None, None],
}


@pytest.mark.parametrize("conversational", [False, True])
@pytest.mark.parametrize("fn", list(EXPECTED), ids=lambda f: f.__name__)
def test_values_and_none_semantics(fn, conversational):
    out = call(fn, ROWS, conversational)
    assert isinstance(out, list) and len(out) == len(ROWS)
    assert all(v is None or isinstance(v, float) for v in out)
    assert out == [None if v is None else pytest.approx(v) for v in EXPECTED[fn]]


def test_families_add_up_to_the_mixed_reward():
    parts = [call(f, ROWS) for f in (rf.format_reward, rf.matching_reward, rf.chart_reward, rf.iou_reward, rf.bmas_reward)]
    weights = [0.5, 1, 1, 1, 1]
    total = [None if all(p[i] is None for p in parts) else sum(w * p[i] for w, p in zip(weights, parts) if p[i] is not None)
             for i in range(len(ROWS))]
    assert total == [None if v is None else pytest.approx(v) for v in call(rf.mixed_reward, ROWS)]


def test_completion_shapes():
    content_parts = [{"role": "assistant", "content": [{"type": "text", "text": "<think>a</think>"},
                                                        {"type": "text", "text": "<answer>no</answer>"}]}]
    multi_turn = [{"role": "assistant", "content": "<think>first</think><answer>yes</answer>"},
                  {"role": "tool", "content": "ignored"},
                  {"role": "assistant", "content": "<think>then</think><answer>no</answer>"}]
    out = rf.matching_reward(prompts=["q", "q"], completions=[content_parts, multi_turn], task=["yes_no"] * 2,
                             answer=["no", "no"])
    assert out == [1.0, 1.0]


def test_columns_trl_users_have():
    # TRL's own convention is a `solution` column; a single-task dataset needs no task column.
    assert rf.chart_reward(prompts=["q"], completions=[GOOD.format("24")], solution=["23.5"]) == [1.0]
    assert rf.format_reward(prompts=["q", "q"], completions=[GOOD.format("x"), "x"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="needs a `task` column"):
        rf.matching_reward(prompts=["q"], completions=["x"], solution=["1"])
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        rf.mixed_reward(prompts=["q"], completions=["x"], task=["poetry"], answer=["1"])
    with pytest.raises(ValueError, match="`answer`"):
        rf.mixed_reward(prompts=["q"], completions=["x"], task=["mcq"])
    # A per-sample reward override routes to another family.
    assert rf.chart_reward(prompts=["q"], completions=[GOOD.format("103")], task=["numeric"],
                           reward=["chart"], answer=["100"]) == [1.0]


def test_pickling_round_trip():
    for fn in EXPECTED:
        assert pickle.loads(pickle.dumps(fn)) is fn


def _run_in_child(payload):
    fn, rows = pickle.loads(payload)
    return call(fn, rows)


def test_spawned_child_process_scores_the_same():
    # TRL's async GRPO worker sends reward functions to a *spawned* process.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.map(_run_in_child, [pickle.dumps((rf.mixed_reward, ROWS)), pickle.dumps((rf.iou_reward, ROWS))])
    assert got == [call(rf.mixed_reward, ROWS), call(rf.iou_reward, ROWS)]

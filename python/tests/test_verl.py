"""mixed_r1.verl, called exactly as verl's reward managers call a custom reward function.

Checked against verl v0.9.0 (verl-project/verl, tag v0.9.0): ``verl/trainer/ppo/reward.py``,
``get_custom_reward_fn`` reads ``config.reward.custom_reward_function`` (``path``, ``name``,
``reward_kwargs``; the top-level ``custom_reward_function`` of older configs is migrated by
``verl/experimental/reward_loop/reward_loop.py``), loads ``pkg://`` paths with
``verl/utils/import_utils.py::load_extern_object`` and wraps the function with
``_call_with_kwargs`` (reward_kwargs merged over the call's, taking precedence);
``verl/experimental/reward_loop/reward_manager/naive.py``, ``NaiveRewardManager.run_single``
calls ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`` in
``run_in_executor``, ``extra_info`` with ``num_turns`` and ``rollout_reward_scores`` added, and
reads ``result["score"]``, the other keys as ``reward_extra_info``. The batch manager
(``verl/workers/reward_manager/batch.py``, keyword lists) is reachable only up to verl 0.7.
"""
import importlib
import json

import numpy as np
import pytest

GOOD = "<think>look</think><answer>{}</answer>"


def load_pkg(path="pkg://mixed_r1.verl", name="compute_score"):
    # What verl.utils.import_utils.load_module does for a pkg:// path.
    assert path.startswith("pkg://")
    return getattr(importlib.import_module(path[len("pkg://"):]), name)


def naive_call(fn, data_source, response, ground_truth, extra_info, **reward_kwargs):
    # verl v0.9.0 reward_loop/reward_manager/naive.py: keyword arguments, extra_info with
    # num_turns and rollout_reward_scores added; reward.py::_call_with_kwargs merges the
    # configured reward_kwargs over the call's.
    extra_info = dict(extra_info or {})
    extra_info["num_turns"] = 1
    extra_info["rollout_reward_scores"] = {}
    kwargs = {"data_source": data_source, "solution_str": response, "ground_truth": ground_truth,
              "extra_info": extra_info}
    return fn(**{**kwargs, **reward_kwargs})


def test_per_sample_with_extra_info():
    fn = load_pkg()
    out = naive_call(fn, "chartqa", GOOD.format("24"), "23.5", {"task": "chart", "index": 3})
    assert out == {"score": 1.5, "format": 1.0, "accuracy": 1.0, "skipped": 0.0}
    # Parquet gives NumPy arrays for list columns.
    out = naive_call(fn, "refcoco", GOOD.format("[100, 100, 500, 500]"), np.array([[64, 48, 320, 240]]),
                     {"task": "grounding", "frame": "abs", "pred_frame": "rel1000", "image_size": np.array([640, 480])})
    assert out["score"] == pytest.approx(1.5) and out["accuracy"] == pytest.approx(1.0)


def test_ground_truth_json_and_data_source_hint():
    fn = load_pkg()
    gt = json.dumps({"task": "mcq", "answer": "B", "choices": ["cat", "dog"]})
    assert naive_call(fn, "scienceqa", GOOD.format("dog"), gt, None)["score"] == 1.5
    # The JSON wins over extra_info; extra_info over data_source; data_source over task=.
    assert naive_call(fn, "yes_no", GOOD.format("dog"), gt, {"task": "chart"})["accuracy"] == 1.0
    assert naive_call(fn, "yes_no", GOOD.format("yes"), "yes", None)["accuracy"] == 1.0
    assert fn("anything", GOOD.format("3"), "3", None, task="numeric")["accuracy"] == 1.0
    # A plain answer that merely looks like JSON stays an answer.
    box = '{"bbox_2d": [0, 0, 10, 10]}'
    out = fn("grounding", GOOD.format("[0, 0, 10, 10]"), box, {"image_size": [100, 100]})
    assert out["accuracy"] == 1.0


def test_skips_score_zero_and_bad_samples_raise():
    fn = load_pkg()
    out = naive_call(fn, "vqa", GOOD.format("yes"), "maybe", {"task": "yes_no"})
    assert out == {"score": 0.0, "format": 1.0, "accuracy": 0.0, "skipped": 1.0}
    with pytest.raises(ValueError, match="has no task"):
        naive_call(fn, "somewhere", GOOD.format("yes"), "yes", {})
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        naive_call(fn, "x", GOOD.format("yes"), "yes", {"task": "poetry"})
    with pytest.raises(ValueError, match="unknown variant"):
        naive_call(fn, "x", GOOD.format("[1,2,3,4]"), [[1, 2, 3, 4]], {"task": "grounding", "frame": "px"})


def test_batch_manager_call(tmp_path):
    fn = load_pkg(name="compute_score_batch")
    toml = tmp_path / "reward.toml"
    toml.write_text("format_weight = 0.1\n")
    # verl/workers/reward_manager/batch.py: keyword lists, data_sources and extra_infos as NumPy
    # object arrays, reward_kwargs (config=...) merged in.
    data_sources = np.array(["chartqa", "vqa", "geo"], dtype=object)
    extras = np.array([{"task": "chart"}, {"task": "yes_no"}, {"task": "math"}], dtype=object)
    out = fn(data_sources=data_sources, solution_strs=[GOOD.format("24"), "<answer>no</answer>", GOOD.format(r"\frac{3}{6}")],
             ground_truths=["23.5", "yes", "1/2"], extra_infos=extras, config=str(toml))
    assert [o["score"] for o in out] == [pytest.approx(1.1), 0.0, pytest.approx(1.1)]
    assert [o["accuracy"] for o in out] == [1.0, 0.0, 1.0]
    assert all(set(o) == {"score", "format", "accuracy", "skipped"} for o in out)
    assert all(isinstance(v, float) for o in out for v in o.values())


def test_verl_09_reward_loop_from_a_thread_pool(tmp_path):
    # v0.9.0 NaiveRewardManager: compute_score runs in loop.run_in_executor, many at once, with
    # reward.custom_reward_function.reward_kwargs (config=, task=) merged in.
    import asyncio

    fn = load_pkg()
    toml = tmp_path / "reward.toml"
    toml.write_text("format_weight = 0.1\n")

    async def run_all():
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(None, lambda i=i: naive_call(
            fn, "geo", GOOD.format(str(i % 3)), "1", None, config=str(toml), task="numeric")) for i in range(64)]
        return await asyncio.gather(*jobs)

    out = asyncio.run(run_all())
    assert [o["accuracy"] for o in out] == [1.0 if i % 3 == 1 else 0.0 for i in range(64)]
    assert all(o["score"] == pytest.approx(o["accuracy"] + 0.1) for o in out)

"""mixed_r1.verl, called exactly as verl's reward managers call a custom reward function."""
import importlib
import json

import numpy as np
import pytest

GOOD = "<think>look</think><answer>{}</answer>"


def load_pkg(path="pkg://mixed_r1.verl", name="compute_score"):
    # What verl.utils.import_utils.load_module does for a pkg:// path.
    assert path.startswith("pkg://")
    return getattr(importlib.import_module(path[len("pkg://"):]), name)


def naive_call(fn, data_source, response, ground_truth, extra_info):
    # verl/workers/reward_manager/naive.py: keyword arguments, extra_info gets num_turns added.
    extra_info = dict(extra_info or {})
    extra_info["num_turns"] = None
    return fn(data_source=data_source, solution_str=response, ground_truth=ground_truth, extra_info=extra_info)


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

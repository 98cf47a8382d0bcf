"""mixed_r1/easyr1_reward.py, loaded and called exactly as EasyR1's FunctionRewardManager does."""
import importlib.util
import json
import os
import sys

import pytest

import mixed_r1

GOOD = "<think>look</think><answer>{}</answer>"
PATH = os.path.join(os.path.dirname(mixed_r1.__file__), "easyr1_reward.py")


def load(path=PATH, name="compute_score"):
    # verl/workers/reward/function.py: a file path, checked with os.path.exists, loaded as
    # module "custom_reward_fn".
    assert os.path.exists(path)
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    spec.loader.exec_module(module)
    return module, getattr(module, name)


def test_batch_call_with_json_ground_truth():
    module, fn = load()
    assert module.REWARD_TYPE == "batch"
    inputs = [
        {"response": GOOD.format("dog"), "response_length": 12,
         "ground_truth": json.dumps({"task": "mcq", "answer": "B", "choices": ["cat", "dog"]})},
        {"response": GOOD.format("[100, 100, 500, 500]"), "response_length": 20,
         "ground_truth": json.dumps({"task": "grounding", "answer": [[64, 48, 320, 240]], "frame": "abs",
                                     "pred_frame": "rel1000", "image_size": [640, 480]})},
        {"response": GOOD.format("yes"), "response_length": 5,
         "ground_truth": json.dumps({"task": "yes_no", "answer": "maybe"})},
    ]
    out = fn(inputs)
    assert [o["overall"] for o in out] == [1.5, pytest.approx(1.5), 0.0]
    assert [o["skipped"] for o in out] == [0.0, 0.0, 1.0]
    assert all(set(o) == {"overall", "format", "accuracy", "skipped"} for o in out)


def test_kwargs_and_sequential_form(tmp_path):
    _, fn = load()
    toml = tmp_path / "reward.toml"
    toml.write_text("format_weight = 0.1\n")
    # reward_function_kwargs: a default task for plain ground truths, and a config file.
    one = {"response": GOOD.format("42"), "response_length": 4, "ground_truth": "42"}
    assert fn(one, task="numeric", config=str(toml))["overall"] == pytest.approx(1.1)
    with pytest.raises(ValueError, match="has no task"):
        fn([one])

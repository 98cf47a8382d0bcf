"""mixed_r1/easyr1_reward.py, loaded and called exactly as EasyR1's reward manager does.

Checked against EasyR1 main (hiyouga/EasyR1 b44b311, after v0.3.2): ``verl/workers/reward/config.py``
splits ``reward_function`` at the last ``:`` (no ``:`` means the function ``main``);
``verl/workers/reward/function.py``, ``AutoRewardManager`` checks the path with
``os.path.exists``, loads it as module ``custom_reward_fn`` (registered in ``sys.modules``), reads
``REWARD_TYPE`` (default ``batch``) and ``REWARD_NAME`` from the module, binds
``reward_function_kwargs`` with ``functools.partial`` and calls the function with a list of
``{"response", "response_length", "ground_truth"}`` (batch) or one such dict (sequential);
it needs ``score["overall"]`` and logs every key. v0.3.1-v0.3.2 read the type from
``worker.reward.reward_type`` instead (default ``batch``) and call it the same way.
"""
import importlib.util
import json
import os
import sys

import pytest

import mixed_r1

GOOD = "<think>look</think><answer>{}</answer>"
PATH = os.path.join(os.path.dirname(mixed_r1.__file__), "easyr1_reward.py")


def load(path=PATH, name="compute_score"):
    # EasyR1 main verl/workers/reward/function.py: a file path, checked with os.path.exists,
    # loaded as module "custom_reward_fn".
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


def test_easyr1_main_loading_rules(tmp_path):
    import functools

    module, fn = load(name="main")  # a path without ":name"
    assert fn is module.compute_score
    assert getattr(module, "REWARD_TYPE", "batch") == "batch" and module.REWARD_NAME == "mixed_r1"
    toml = tmp_path / "reward.toml"
    toml.write_text("format_weight = 0.1\n")
    bound = functools.partial(fn, **{"config": str(toml), "task": "numeric"})
    inputs = [{"response": GOOD.format("42"), "response_length": 4, "ground_truth": "42"},
              {"response": GOOD.format("41 or 42"), "response_length": 8, "ground_truth": "42"}]
    out = bound(inputs)
    assert [o["overall"] for o in out] == [pytest.approx(1.1), pytest.approx(0.1)]

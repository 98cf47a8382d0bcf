"""Shared test data: real samples of every rule task with hand-checked rewards, and the paths
of the repository's own assets (the tests run from a checkout, after scripts/fetch-assets.sh)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.environ.get("MIXED_R1_ASSETS", os.path.join(ROOT, ".cache", "assets"))
MINILM = os.path.join(ASSETS, "minilm")
CLI = os.path.join(ROOT, "target", "release", "mixed-r1")

# rules_py / rules_bench: the plain-Python reference, imported once from bench/. bench/ is taken
# off sys.path again afterwards: a folder there (bench/peers/) would otherwise be importable as a
# namespace package and shadow a missing real package (the OpenRLHF adapter's optional torch).
_BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, _BENCH)
import rules_py  # noqa: E402,F401
import rules_bench  # noqa: E402,F401

sys.path[:] = [p for p in sys.path if p != _BENCH]

# The reward differential test's generator, reference and comparison (tests/reward_diff), under
# names of their own: the folder is not a package.
import importlib.util  # noqa: E402

for _name in ("generate", "reference", "compare"):
    _path = os.path.join(ROOT, "tests", "reward_diff", f"{_name}.py")
    _spec = importlib.util.spec_from_file_location(f"reward_diff_{_name}", _path)
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[f"reward_diff_{_name}"] = _module
    if _name == "compare":
        sys.modules.setdefault("reference", sys.modules["reward_diff_reference"])
    _spec.loader.exec_module(_module)
sys.path[:] = [p for p in sys.path if p != os.path.join(ROOT, "tests", "reward_diff")]

GOOD = "<think>I look at the picture.</think> <answer>{}</answer>"

# (sample, expected reward, expected format, expected accuracy), defaults: accuracy 1, format 0.5.
CASES = [
    ({"task": "yes_no", "answer": "yes", "response": GOOD.format("Yes, it is.")}, 1.5, 1.0, 1.0),
    ({"task": "yes_no", "answer": "no", "response": "<answer>no</answer>"}, 1.0, 0.0, 1.0),
    ({"task": "mcq", "answer": "B", "choices": ["cat", "dog"], "response": GOOD.format("(B)")}, 1.5, 1.0, 1.0),
    ({"task": "mcq", "answer": "B", "choices": ["cat", "dog"], "response": GOOD.format("dog")}, 1.5, 1.0, 1.0),
    ({"task": "mcq", "answer": "B", "choices": ["cat", "dog"], "response": GOOD.format("Both")}, 0.5, 1.0, 0.0),
    ({"task": "numeric", "answer": "1,234", "response": GOOD.format("1234 apples")}, 1.5, 1.0, 1.0),
    ({"task": "math", "answer": "0.5", "response": GOOD.format(r"\frac{1}{2}")}, 1.5, 1.0, 1.0),
    ({"task": "chart", "answer": "23.5", "response": GOOD.format("24")}, 1.5, 1.0, 1.0),
    ({"task": "chart", "answer": "23.5", "response": GOOD.format("30")}, 0.5, 1.0, 0.0),
    ({"task": "grounding", "answer": [[64, 48, 320, 240]], "frame": "abs", "pred_frame": "rel1000",
      "image_size": [640, 480], "response": GOOD.format("[100, 100, 500, 500]")}, 1.5, 1.0, 1.0),
    ({"task": "grounding", "answer": [[0, 0, 100, 100]], "image_size": [640, 480],
      "response": GOOD.format('{"bbox_2d": [0, 0, 100, 50]}')}, 1.0, 1.0, 0.5),
]


@pytest.fixture(scope="session")
def minilm():
    if not os.path.exists(os.path.join(MINILM, "model.safetensors")):
        # CI fetches every asset first, so there a missing one is a failure, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(f"BMAS assets missing at {MINILM} under CI=true: run scripts/fetch-assets.sh minilm")
        pytest.skip(f"BMAS assets missing at {MINILM}: run scripts/fetch-assets.sh minilm")
    return MINILM

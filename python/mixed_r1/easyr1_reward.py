"""EasyR1 reward function file: ``worker.reward.reward_function=/path/to/easyr1_reward.py:compute_score``.

EasyR1 loads this file by path (not as a package module), so it imports the installed
``mixed_r1`` by absolute name only. Print the path with ``python -m mixed_r1 paths``. Without a
``:name`` EasyR1 calls ``main`` (``verl/workers/reward/config.py``), which is the same function.

EasyR1 passes each sample as ``{"response", "response_length", "ground_truth"}`` and nothing else,
so whatever the reward needs beyond the answer travels inside ``ground_truth`` as a JSON object:
``{"task": "grounding", "answer": [[10, 20, 110, 220]], "frame": "abs", "pred_frame":
"abs_resized", "image_size": [640, 480]}``. A plain ground truth is the answer itself, scored with
the ``task`` given in ``worker.reward.reward_function_kwargs`` (a single-task dataset).
``reward_function_kwargs`` may also set ``config`` (a ``reward.toml`` path).

The batch/sequential choice is this module's ``REWARD_TYPE`` (EasyR1 main reads it from the
module; v0.3.1-0.3.2 read ``worker.reward.reward_type``, whose default is also ``batch``).

Returns per sample ``{"overall", "format", "accuracy", "skipped"}`` (EasyR1 needs ``overall`` and
averages the others as metrics); a sample whose gold cannot be used scores 0.0 with ``skipped`` = 1.
"""
from typing import Any, Mapping, Optional, Sequence, Union

from mixed_r1._inputs import build_sample, check_names, check_results, flat_parts, rewards_for

# EasyR1 hands a batch-type function the whole batch at once: scored in parallel in Rust.
REWARD_TYPE = "batch"
# Printed by EasyR1 main when it loads the file.
REWARD_NAME = "mixed_r1"


def compute_score(
    reward_inputs: Union[Sequence[Mapping[str, Any]], Mapping[str, Any]],
    config: Any = None,
    task: Optional[str] = None,
    **kwargs: Any,
) -> Union[list, dict]:
    """Scores a batch (a list of reward-input dicts) or, for ``REWARD_TYPE = "sequential"``
    set-ups, one dict."""
    if isinstance(reward_inputs, Mapping):
        return compute_score([reward_inputs], config=config, task=task)[0]
    samples = [
        build_sample(str(item["response"]), item["ground_truth"], default_task=task) for item in reward_inputs
    ]
    check_names(samples, "easyr1")
    results = rewards_for(config).score(samples)
    check_results(results, "easyr1")
    out = []
    for r in results:
        parts = flat_parts(r)
        out.append({"overall": parts["score"], "format": parts["format"], "accuracy": parts["accuracy"],
                    "skipped": parts["skipped"]})
    return out


# EasyR1's default function name when `reward_function` has no `:name`.
main = compute_score

"""TRL ``GRPOTrainer`` reward functions: ``reward_funcs=[format_reward, matching_reward, ...]``.

Each is ``fn(prompts, completions, **columns) -> list[float | None]``, the way TRL calls a reward
callable (TRL 1.9, ``GRPOTrainer._calculate_rewards``: ``completion_ids``, ``trainer_state``,
``log_extra``, ``log_metric``, ``environments`` when set, and every dataset column arrive as
keyword arguments; columns are lists, one value per completion; None becomes NaN, which TRL
leaves out of the weighted sum). Completions may be plain
strings or conversations (``[{"role": "assistant", "content": ...}]``). They are module-level
functions, so they pickle by reference (TRL's async worker sends reward functions to a child
process).

Columns read: ``task`` (or a per-sample ``reward`` override), the gold ``answer`` (or TRL's usual
``solution``), and where a task needs them ``choices``, ``frame``, ``pred_frame``, ``image_size``.

One function per reward family, so TRL logs ``rewards/<name>/mean`` per family and can weight or
normalise each one (``reward_weights``, ``multi_objective_aggregation``):

=====================  ==============================================  ==========================
function               scores                                          value
=====================  ==============================================  ==========================
``format_reward``      every task                                      format (1.0 / 0.0)
``matching_reward``    ``yes_no``, ``mcq``, ``numeric``, ``math``      accuracy
``chart_reward``       ``chart``                                       accuracy
``iou_reward``         ``grounding``                                   accuracy (IoU)
``bmas_reward``        ``open_ended``                                  accuracy (BMAS)
``mixed_reward``       every task                                      the whole mixed reward
=====================  ==============================================  ==========================

None means "not mine": a sample of another task, or one whose gold answer cannot be used (a
skip: every function returns None for it, format included, as the mixed reward does). With
``reward_weights=[0.5, 1, 1, 1, 1]`` the first five add up to ``mixed_reward`` at its default
weights. A sample with a missing or unknown task raises ``ValueError``.

Configuration (weights, modes, the BMAS embedding table) is the process default of
:mod:`mixed_r1`: ``MIXED_R1_REWARD_CONFIG=reward.toml`` (reaches spawned workers too) or
``mixed_r1.set_default_rewards(...)``. A dataset without a ``task`` column works with the
single-task functions (``chart_reward``, ``iou_reward``, ``bmas_reward``), which then take every
sample as theirs.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from . import default_rewards
from ._inputs import check_names, check_results, completion_text

__all__ = [
    "format_reward",
    "matching_reward",
    "chart_reward",
    "iou_reward",
    "bmas_reward",
    "mixed_reward",
]

_SAMPLE_COLUMNS = ("choices", "frame", "pred_frame", "image_size")
# A reward name (a sample's `reward` override or task) and the family that owns it.
_KIND = {
    "yes_no": "matching",
    "mcq": "matching",
    "numeric": "matching",
    "math": "matching",
    "chart": "chart",
    "grounding": "iou",
    "iou": "iou",
    "open_ended": "bmas",
    "bmas": "bmas",
}
_SINGLE_TASK = {"chart": "chart", "iou": "grounding", "bmas": "open_ended"}


def _column(columns: dict, name: str, n: int) -> Optional[Sequence[Any]]:
    values = columns.get(name)
    if values is None:
        return None
    values = list(values)
    if len(values) != n:
        raise ValueError(f"mixed_r1.trl: column {name!r} has {len(values)} values for {n} completions")
    return values


def _score(family: str, completions: Sequence[Any], columns: dict) -> tuple:
    """Scores the samples `family` owns; returns (results aligned with completions, with None for
    samples not scored, the family of each sample)."""
    n = len(completions)
    tasks = _column(columns, "task", n)
    overrides = _column(columns, "reward", n)
    answers = _column(columns, "answer", n)
    if answers is None:
        answers = _column(columns, "solution", n)
    extra = {name: _column(columns, name, n) for name in _SAMPLE_COLUMNS}

    if tasks is None and overrides is None:
        if family == "format":
            return None, None  # no task to judge the gold by: the format alone, never a skip
        if family not in _SINGLE_TASK:
            raise ValueError(
                f"mixed_r1.trl.{family}_reward needs a `task` column (which task each sample is)"
            )
        tasks = [_SINGLE_TASK[family]] * n
    if answers is None:
        raise ValueError("mixed_r1.trl: the dataset needs an `answer` (or `solution`) column")

    samples, owners, index = [], [], []
    for i in range(n):
        sample = {"answer": answers[i], "response": completion_text(completions[i])}
        if tasks is not None and tasks[i] is not None:
            sample["task"] = tasks[i]
        if overrides is not None and overrides[i] is not None:
            sample["reward"] = overrides[i]
        for name, values in extra.items():
            if values is not None and values[i] is not None:
                sample[name] = values[i]
        samples.append(sample)
    check_names(samples, f"trl.{family}_reward")
    for i, sample in enumerate(samples):
        owner = _KIND[sample.get("reward") or sample["task"]]
        owners.append(owner)
        if family in ("format", "mixed") or owner == family:
            index.append(i)
    scored = default_rewards().score([samples[i] for i in index])
    check_results(scored, f"trl.{family}_reward")
    results: list = [None] * n
    for i, r in zip(index, scored):
        results[i] = r
    return results, owners


def _values(results: Optional[list], key: str) -> list:
    # A skipped sample (reward None) is None in every function, format included.
    return [None if r is None or r["reward"] is None else r[key] for r in results]


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """Format reward of every completion (1.0 / 0.0); None for samples whose gold is unusable."""
    results, _ = _score("format", completions, columns)
    if results is None:
        rewards = default_rewards()
        return [rewards.format(completion_text(c)) for c in completions]
    return _values(results, "format")


def matching_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """Accuracy of ``yes_no``, ``mcq``, ``numeric`` and ``math`` samples; None for others."""
    return _values(_score("matching", completions, columns)[0], "accuracy")


def chart_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """ChartQA relaxed accuracy of ``chart`` samples; None for others."""
    return _values(_score("chart", completions, columns)[0], "accuracy")


def iou_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """Box IoU of ``grounding`` samples; None for others."""
    return _values(_score("iou", completions, columns)[0], "accuracy")


def bmas_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """BMAS of ``open_ended`` samples; None for others (and for all of them without an
    embedding table: configure one, see the module docs)."""
    return _values(_score("bmas", completions, columns)[0], "accuracy")


def mixed_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list:
    """The whole mixed reward (accuracy_weight * accuracy + format_weight * format) of every
    sample; None for skipped samples."""
    return _values(_score("mixed", completions, columns)[0], "reward")

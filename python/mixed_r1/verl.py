"""verl reward functions: ``reward.custom_reward_function.path=pkg://mixed_r1.verl`` (verl 0.8 and
later; ``custom_reward_function.path=...`` before, which 0.9 still migrates).

* ``compute_score`` (the default name) for verl's per-sample reward managers (``naive``,
  ``dapo``, ``gdpo``, ``rate_limited``, ``remote`` in 0.9's reward loop; ``naive``, ``dapo``,
  ``prime`` before), called as
  ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``
  (verl 0.9: ``verl/experimental/reward_loop/reward_manager/naive.py``, from a thread pool);
* ``compute_score_batch`` for the ``batch`` reward manager of verl 0.7 and earlier
  (``reward_model.reward_manager=batch custom_reward_function.name=compute_score_batch``),
  called as ``compute_score_batch(data_sources=..., solution_strs=..., ground_truths=...,
  extra_infos=...)``. verl 0.8+ has no batch manager in its reward loop; ``compute_score`` is
  fast enough per sample there (tens of microseconds).

Both return a dict per sample: ``score`` (the mixed reward) plus ``format``, ``accuracy`` and
``skipped``, which verl logs as ``reward_extra_info``; every sample has the same keys, all
numbers, as verl's metric aggregation needs. A sample whose gold answer cannot be used scores 0.0
with ``skipped`` = 1 (see :func:`mixed_r1._inputs.flat_parts`).

Task, frames, image size and choices travel in ``extra_info`` or in a JSON ``ground_truth``;
``data_source`` counts as the task when it is a task name. ``reward.custom_reward_function.reward_kwargs``
(``custom_reward_function.reward_kwargs`` before 0.8) may set ``config`` (a ``reward.toml`` path)
and ``task`` (a default task). Precedence: see :mod:`mixed_r1._inputs`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ._inputs import build_sample, check_names, check_results, flat_parts, rewards_for

__all__ = ["compute_score", "compute_score_batch"]


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[Mapping[str, Any]] = None,
    config: Any = None,
    task: Optional[str] = None,
    **kwargs: Any,
) -> dict:
    """The mixed reward of one response: ``{"score", "format", "accuracy", "skipped"}``."""
    return compute_score_batch(
        [data_source], [solution_str], [ground_truth], [extra_info], config=config, task=task
    )[0]


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
    config: Any = None,
    task: Optional[str] = None,
    **kwargs: Any,
) -> list:
    """The mixed reward of a batch, scored in parallel: one dict per sample, in order."""
    n = len(solution_strs)
    if extra_infos is None:
        extra_infos = [None] * n
    if not (len(data_sources) == len(ground_truths) == len(extra_infos) == n):
        raise ValueError(
            "mixed_r1.verl: data_sources, solution_strs, ground_truths and extra_infos differ in length"
        )
    samples = [
        build_sample(str(response), gt, extra if isinstance(extra, Mapping) else None, source, task)
        for source, response, gt, extra in zip(data_sources, solution_strs, ground_truths, extra_infos)
    ]
    check_names(samples, "verl")
    results = rewards_for(config).score(samples)
    check_results(results, "verl")
    return [flat_parts(r) for r in results]

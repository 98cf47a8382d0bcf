"""OpenRLHF reward function file: ``--reward.remote_url /path/to/mixed_r1/openrlhf.py`` with
``--data.label_key`` naming the ground-truth column (OpenRLHF 0.11's dotted flags; releases
before 0.11 spell them ``--remote_rm_url`` and ``--label_key``).

OpenRLHF loads this file by path and calls ``reward_func(queries, prompts, labels)`` (0.11:
``openrlhf/utils/agent.py``, ``SingleTurnAgentExecutor``, one sample per call from a worker
thread; earlier releases: whole batches). ``queries`` are the prompts with the responses
appended, decoded with special tokens kept -- for a vision model with every image-pad token the
processor expanded -- so the response is cut out first: the text after the prompt (a run of
``<|image_pad|>`` in the prompt matches a run of any length in the query), else after the last
assistant opener of ChatML/Qwen, Llama 3, Gemma, Phi, DeepSeek or Mistral templates, end-of-turn
and padding markers removed. Placeholder tokens left inside the response are removed by the
reward itself. Print the path with ``python -m mixed_r1 paths``.

``labels`` carry the ground truth: a JSON object with the sample's fields
(``{"task": "chart", "answer": "23.5"}``, boxes with ``frame`` and ``image_size``...) or a plain
answer scored with the default task (``task=`` or ``$MIXED_R1_TASK``). The configuration is
mixed_r1's process default (``$MIXED_R1_REWARD_CONFIG``).

Returns ``{"rewards", "scores", "extra_logs": {"format", "accuracy", "skipped"}}``: torch tensors
when torch is importable (it is, inside OpenRLHF), lists otherwise. ``rewards`` is the mixed
reward; ``scores`` (what dynamic filtering reads; OpenRLHF falls back to ``rewards`` without it)
is the accuracy in [0, 1]. A sample whose gold cannot be used gets 0.0 in both, with
``skipped`` = 1.
"""
import os
from typing import Any, Optional, Sequence

from mixed_r1._inputs import (
    build_sample,
    check_names,
    check_results,
    flat_parts,
    response_from_query,
    rewards_for,
)


def _as_output(values: list) -> Any:
    try:
        import torch  # imported lazily: the adapter must load without it
    except ImportError:
        return values
    return torch.tensor(values, dtype=torch.float32)


def reward_func(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Optional[Sequence[Any]] = None,
    config: Any = None,
    task: Optional[str] = None,
    **kwargs: Any,
) -> dict:
    """Mixed reward of each query's response against its label."""
    n = len(queries)
    if prompts is None:
        prompts = [None] * n
    if labels is None:
        raise ValueError(
            "mixed_r1.openrlhf: no labels; pass the ground-truth column with --data.label_key "
            "(--label_key before OpenRLHF 0.11)"
        )
    if not (len(prompts) == len(labels) == n):
        raise ValueError("mixed_r1.openrlhf: queries, prompts and labels differ in length")
    default_task = task or os.environ.get("MIXED_R1_TASK") or None
    samples = [
        build_sample(response_from_query(q, p), label, default_task=default_task)
        for q, p, label in zip(queries, prompts, labels)
    ]
    check_names(samples, "openrlhf")
    results = rewards_for(config).score(samples)
    check_results(results, "openrlhf")
    parts = [flat_parts(r) for r in results]
    column = lambda key: _as_output([p[key] for p in parts])  # noqa: E731
    return {
        "rewards": column("score"),
        "scores": column("accuracy"),
        "extra_logs": {key: column(key) for key in ("format", "accuracy", "skipped")},
    }

"""What the framework adapters share: turning a framework's inputs (a completion in either TRL
shape, a ground truth that may be JSON, an ``extra_info`` dict, a chat-templated query) into
mixed-r1 samples, and telling a *skipped* result from a sample that cannot be scored at all.

Where a sample's fields come from, highest precedence first:

1. the ground truth itself, when it is a JSON object (a dict, or a string holding one) with an
   ``"answer"`` key: ``{"task": "grounding", "answer": [[10, 20, 110, 220]], "frame": "abs",
   "image_size": [640, 480]}``;
2. per-sample metadata: verl's ``extra_info``, TRL's dataset columns;
3. the data source (verl's ``data_source``), only when it *is* a task or reward name;
4. the adapter's ``task=`` argument (a default for single-task datasets).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping, Optional, Sequence

from . import REWARD_NAMES, Rewards, _is_schema_error, default_rewards

#: Sample fields (besides ``answer`` and ``response``) that metadata may carry.
FIELDS = ("task", "reward", "choices", "frame", "pred_frame", "image_size", "id")

_rewards_cache: dict = {}


def rewards_for(config: Any) -> Rewards:
    """The Rewards for an adapter's ``config=`` argument: None (the process default), a
    :class:`Rewards`, a path to a ``reward.toml`` or a dict. Paths are loaded once per process."""
    if config is None:
        return default_rewards()
    if isinstance(config, Rewards):
        return config
    if isinstance(config, (str, os.PathLike)):
        key = os.path.abspath(os.fspath(config))
        found = _rewards_cache.get(key)
        if found is None:
            found = _rewards_cache.setdefault(key, Rewards(key))
        return found
    return Rewards(config)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversation (a list of messages) whose last
    assistant message is the answer. A message's content may be a string or a list of parts
    (``{"type": "text", "text": ...}``) as multimodal chat templates use."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        chosen = assistant or messages
        return _content_text(chosen[-1].get("content")) if chosen else ""
    raise TypeError(f"a completion must be a string or a list of messages, not {type(completion).__name__}")


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    return str(content)


def _plain(value: Any) -> Any:
    # Parquet list columns arrive as NumPy arrays; the native reader handles those too, but
    # plain values keep `is None` / `in` checks here simple.
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) and not isinstance(value, (str, bytes)) else value


def fields_from_ground_truth(ground_truth: Any) -> dict:
    """A ground truth as sample fields: a JSON object with ``answer`` gives its fields, anything
    else is the answer itself."""
    gt = ground_truth
    if isinstance(gt, bytes):
        gt = gt.decode("utf-8")
    if isinstance(gt, str):
        text = gt.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and "answer" in parsed:
                return parsed
        return {"answer": gt}
    if isinstance(gt, Mapping) and "answer" in gt:
        return {k: _plain(v) for k, v in gt.items()}
    return {"answer": _plain(gt)}


def build_sample(
    response: str,
    ground_truth: Any,
    metadata: Optional[Mapping[str, Any]] = None,
    data_source: Any = None,
    default_task: Optional[str] = None,
) -> dict:
    """One sample, its fields taken by the precedence in the module docs."""
    sample = fields_from_ground_truth(ground_truth)
    if metadata:
        for key in FIELDS:
            if key not in sample:
                value = metadata.get(key)
                if value is not None:
                    sample[key] = _plain(value)
    if sample.get("task") is None and sample.get("reward") is None:
        if isinstance(data_source, str) and data_source in REWARD_NAMES:
            sample["reward" if data_source in ("iou", "bmas") else "task"] = data_source
        elif default_task is not None:
            sample["reward" if default_task in ("iou", "bmas") else "task"] = default_task
    sample["response"] = response
    return sample


def check_names(samples: Sequence[Mapping[str, Any]], where: str) -> None:
    """Raises for a missing or unknown task: a typo in a dataset must stop a run, not train it
    silently on zeros."""
    for i, s in enumerate(samples):
        task, reward = s.get("task"), s.get("reward")
        if task is None and reward is None:
            raise ValueError(
                f"mixed_r1 ({where}): sample {i} has no task. Give it a `task` "
                f"({', '.join(REWARD_NAMES[:7])}) in its ground-truth JSON or metadata, or pass task=..."
            )
        for field, name in (("task", task), ("reward", reward)):
            if name is not None and name not in REWARD_NAMES:
                raise ValueError(
                    f"mixed_r1 ({where}): sample {i} has unknown {field} {name!r} "
                    f"(expected one of {', '.join(REWARD_NAMES)})"
                )


def check_results(results: Sequence[Mapping[str, Any]], where: str) -> None:
    """Raises for results of samples that could not be scored at all (as opposed to skips)."""
    for i, r in enumerate(results):
        if r["reward"] is None and _is_schema_error(r["error"]):
            raise ValueError(f"mixed_r1 ({where}): sample {i} cannot be scored: {r['error']}")


def flat_parts(result: Mapping[str, Any]) -> dict:
    """The numbers a trainer can log for one result, the same keys for every sample (trainers
    collect them into per-key lists, and average them). A skipped sample scores 0.0 with
    ``skipped`` = 1: every response to a prompt shares its gold answer, so a constant reward
    gives the whole group zero advantage, and the skipped sample trains nothing."""
    skipped = result["reward"] is None
    return {
        "score": 0.0 if skipped else float(result["reward"]),
        "format": float(result["format"] or 0.0),
        "accuracy": 0.0 if skipped else float(result["accuracy"]),
        "skipped": 1.0 if skipped else 0.0,
    }


# Chat templates' assistant-turn openers and end-of-turn markers, to cut the response out of a
# full query when the prompt is not a literal prefix of it.
RESPONSE_OPENERS = (
    "<|im_start|>assistant\n",  # ChatML: Qwen2/2.5(-VL), Qwen3, InternVL
    "<|im_start|>assistant",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",  # Llama 3
    "<start_of_turn>model\n",  # Gemma
    "<|assistant|>\n",  # Phi-3 / Phi-3.5-V
    "<|assistant|>",
    "<\uff5cAssistant\uff5c>",  # DeepSeek-V3 / R1
    "[/INST]",  # Mistral / Llama 2
)
END_MARKERS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<eos>",
    "<|end|>",
    "</s>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",  # DeepSeek-R1 distills
)
# A vision processor repeats these once per patch: a run of them in the prompt is a run of any
# length in the query (OpenRLHF 0.11 decodes the query with special tokens kept, thousands of
# pads per image).
PAD_TOKENS = ("<|image_pad|>", "<|video_pad|>")
_PAD_RUN = re.compile("(?:" + "|".join(re.escape(t) for t in PAD_TOKENS) + ")+")
_PAD_SPLIT = re.compile("((?:" + "|".join(re.escape(t) for t in PAD_TOKENS) + ")+)")


def _prompt_end(query: str, prompt: str) -> Optional[int]:
    """Where `prompt` ends in `query` when the query starts with it up to pad-token runs."""
    pos = 0
    for k, part in enumerate(_PAD_SPLIT.split(prompt)):
        if k % 2 == 0:  # literal text
            if not query.startswith(part, pos):
                return None
            pos += len(part)
        else:  # a run of pads: the same kind of pad, once or more, in the query
            first = next(t for t in PAD_TOKENS if part.startswith(t))
            if not query.startswith(first, pos):
                return None
            pos = _PAD_RUN.match(query, pos).end()
    return pos


def response_from_query(query: str, prompt: Optional[str] = None) -> str:
    """The model's response inside an OpenRLHF query (chat-templated prompt + response): after
    the prompt when the query starts with it (image / video pad runs matched at any length),
    else after the last assistant opener of a known template (ChatML/Qwen, Llama 3, Gemma, Phi,
    DeepSeek, Mistral), with trailing end-of-turn and padding markers removed. Linear in the
    query's length."""
    end = _prompt_end(query, prompt) if prompt else None
    if end is not None:
        response = query[end:]
    else:
        response = query
        best = -1
        for opener in RESPONSE_OPENERS:
            at = query.rfind(opener)
            if at >= 0 and at + len(opener) > best:
                best = at + len(opener)
        if best >= 0:
            response = query[best:]
    # Trailing markers repeat (EOS then padding), in any order; moved past by index, so that
    # thousands of them cost no copies.
    end = len(response)
    changed = True
    while changed:
        changed = False
        while end > 0 and response[end - 1].isspace():
            end -= 1
        for marker in END_MARKERS:
            if response.endswith(marker, 0, end):
                end -= len(marker)
                changed = True
    return response[:end].strip()

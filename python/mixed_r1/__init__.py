"""Mixed-R1 rewards for Python: the Rust reward library (``mixed-r1-reward``) behind a small API.

Every reward of DESIGN.md (format, yes/no, MCQ, numeric, math, chart relaxed accuracy, box IoU
in any coordinate frame, BMAS for open-ended answers) scored in Rust, a batch at a time, in
parallel and with the GIL released::

    import mixed_r1
    mixed_r1.score([{"task": "mcq", "answer": "B", "choices": ["cat", "dog"],
                     "response": "<think>...</think><answer>(B)</answer>"}])
    # [{'reward': 1.5, 'format': 1.0, 'accuracy': 1.0, 'task': 'mcq', 'error': None}]
    mixed_r1.score(samples, output="floats")                 # [1.5]: just the rewards, faster
    mixed_r1.score_columns(responses, answers, tasks, output="floats")  # the fastest

A sample is a dict of the dataset schema (``task``, ``answer``, optional ``choices``, ``frame``,
``pred_frame``, ``image_size``, ``reward``, ``id``) plus ``response``; a JSON string of one works
too. A result is ``{"id"?, "reward", "format", "accuracy", "task", "error"}``: ``reward`` and
``accuracy`` are None when the gold answer cannot be used (a *skip*, never a made-up score) and
``error`` says why. A bad sample never raises: its result carries the error.

:class:`Rewards` holds one configuration (a ``reward.toml``, a dict of the same keys, and the
BMAS embedding table, loaded once). The module-level functions use a process-wide default,
configured by the ``MIXED_R1_REWARD_CONFIG`` environment variable (a path to a ``reward.toml``)
or :func:`set_default_rewards`.

Framework adapters: :mod:`mixed_r1.verl`, :mod:`mixed_r1.trl`, :mod:`mixed_r1.easyr1_reward`,
:mod:`mixed_r1.openrlhf`.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from ._native import TASKS as _TASKS
from ._native import Scorer as _Scorer
from ._native import __version__

__all__ = [
    "TASKS",
    "REWARD_NAMES",
    "Rewards",
    "default_rewards",
    "set_default_rewards",
    "score",
    "score_one",
    "score_columns",
    "format_score",
    "extract_answer",
    "accuracy",
    "yes_no",
    "mcq",
    "numeric",
    "math",
    "chart",
    "iou",
    "bmas",
    "__version__",
]

#: Task names of the sample schema.
TASKS: tuple = tuple(_TASKS)
#: Names a sample's ``reward`` field may use to override its task's reward.
REWARD_NAMES: tuple = TASKS + ("iou", "bmas")

ConfigLike = Union[None, str, "os.PathLike[str]", Mapping[str, Any], "Rewards"]


def _abs(path: Optional[Union[str, "os.PathLike[str]"]]) -> Optional[str]:
    # Absolute, so a pickled Rewards loads the same files from a process with another cwd.
    return None if path is None else os.path.abspath(os.fspath(path))


class Rewards:
    """One reward configuration, ready to score.

    ``config`` is None (DESIGN.md defaults), a path to a ``reward.toml``, or a dict with the same
    keys (``{"format_weight": 0.1, "chart": {"mode": "partial"}}``). The keyword arguments set the
    BMAS embedding table like the command line's flags: ``model`` (a Hugging Face model folder:
    the policy's own input embeddings), or ``tokenizer`` (a ``tokenizer.json``) with
    ``embeddings`` (a safetensors file) and optionally ``embedding_tensor`` (the tensor's name).
    The table is memory-mapped and loaded once; every method may be called from many threads.
    Picklable: a copy in another process reloads the same files.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        config: ConfigLike = None,
        *,
        model: Optional[Union[str, "os.PathLike[str]"]] = None,
        tokenizer: Optional[Union[str, "os.PathLike[str]"]] = None,
        embeddings: Optional[Union[str, "os.PathLike[str]"]] = None,
        embedding_tensor: Optional[str] = None,
    ) -> None:
        overrides = {
            k: v
            for k, v in (
                ("model", _abs(model)),
                ("tokenizer", _abs(tokenizer)),
                ("embeddings", _abs(embeddings)),
                ("tensor", embedding_tensor),
            )
            if v is not None
        }
        if isinstance(config, Rewards):
            base = config
            if not overrides:
                self._native = base._native
                return
            cfg = base.config
        elif config is None:
            cfg = {}
        elif isinstance(config, Mapping):
            cfg = json.loads(json.dumps(config))  # a deep copy that is also JSON-clean
        elif isinstance(config, (str, os.PathLike)):
            native = _Scorer.from_file(_abs(config))
            if not overrides:
                self._native = native
                return
            cfg = json.loads(native.config_json())
        else:
            raise TypeError(
                f"config must be None, a path to a reward.toml, a dict or a Rewards, not {type(config).__name__}"
            )
        if overrides:
            bmas = dict(cfg.get("bmas") or {})
            bmas.update(overrides)
            cfg["bmas"] = bmas
        self._native = _Scorer.from_json(json.dumps(cfg))

    @classmethod
    def from_toml(cls, text: str, **bmas: Any) -> "Rewards":
        """A configuration from ``reward.toml`` text (relative BMAS paths: from the cwd)."""
        return cls(json.loads(_Scorer.from_toml(text).config_json()), **bmas)

    @property
    def config(self) -> dict:
        """The full configuration, defaults filled in (the keys of ``reward.toml``)."""
        return json.loads(self._native.config_json())

    @property
    def has_bmas(self) -> bool:
        """True when an embedding table is loaded; without one ``open_ended`` samples skip."""
        return self._native.has_bmas

    # -- mixed reward ------------------------------------------------------------------------

    def score(self, samples: Iterable[Union[Mapping[str, Any], str]], *, output: str = "dicts") -> list:
        """Scores a batch (dicts or JSON strings) in parallel; results in input order.

        ``output="dicts"``: one result dict per sample. ``output="floats"``: one reward per
        sample, a float or None (exactly the result dicts' ``reward``), the list TRL and verl
        reward functions return, and faster: no dict is built per sample."""
        return self._native.score(samples, output)

    def score_one(self, sample: Union[Mapping[str, Any], str]) -> dict:
        """Scores one sample."""
        return self._native.score_one(sample)

    def score_columns(
        self,
        responses: Sequence[str],
        answers: Sequence[Any],
        tasks: Optional[Sequence[Optional[str]]] = None,
        *,
        rewards: Optional[Sequence[Optional[str]]] = None,
        choices: Optional[Sequence[Any]] = None,
        frames: Optional[Sequence[Optional[str]]] = None,
        pred_frames: Optional[Sequence[Optional[str]]] = None,
        image_sizes: Optional[Sequence[Any]] = None,
        output: str = "columns",
    ) -> Union[dict, list]:
        """Scores samples given as columns (one list per field, None for "not given"), the shape
        trainers hold them in; returns columns: ``{"reward": [...], "format": [...],
        "accuracy": [...], "task": [...], "error": [...]}``, or with ``output="floats"`` just
        the list of rewards (float or None). The fastest path: no dict per sample in either
        direction, and with ``"floats"`` one Python object per sample in all."""
        return self._native.score_columns(
            responses, answers, tasks, rewards, choices, frames, pred_frames, image_sizes, output
        )

    # -- the parts ---------------------------------------------------------------------------

    def format(self, response: str) -> Optional[float]:
        """The format reward of a response (1.0 or 0.0; None when the format mode is ``none``)."""
        return self._native.format_score(response)

    def extract(self, response: str) -> Optional[str]:
        """The answer accuracy is judged on (the last ``<answer>`` block, or the fallback)."""
        return self._native.extract_answer(response)

    def accuracy(self, task: str, prediction: Optional[str], answer: Any, **fields: Any) -> Optional[float]:
        """Accuracy of a bare ``prediction`` (no answer extraction) for ``task`` (or a reward name
        such as ``iou``), or None when the gold is unusable. ``fields``: ``choices``, ``frame``,
        ``pred_frame``, ``image_size``."""
        sample = dict(fields, answer=answer)
        sample["reward" if task in ("iou", "bmas") else "task"] = task
        value, error = self._native.accuracy(sample, prediction)
        if value is None and _is_schema_error(error):
            raise ValueError(error)
        return value

    def _family(self, task: str, response: str, answer: Any, fields: Mapping[str, Any]) -> Optional[float]:
        result = self._native.score_one(dict(fields, task=task, answer=answer, response=response))
        if result["accuracy"] is None and result["format"] is None and _is_schema_error(result["error"]):
            raise ValueError(result["error"])
        return result["accuracy"]

    def yes_no(self, response: str, answer: str) -> Optional[float]:
        """Yes/no accuracy of a response (its extracted answer) against ``answer``."""
        return self._family("yes_no", response, answer, {})

    def mcq(self, response: str, answer: str, choices: Optional[Sequence[str]] = None) -> Optional[float]:
        """Multiple-choice accuracy; ``choices`` lets the option text count as its letter."""
        return self._family("mcq", response, answer, {"choices": choices})

    def numeric(self, response: str, answer: Union[str, float]) -> Optional[float]:
        """Numeric equality (1e-6 relative; commas, units, currency and percent handled)."""
        return self._family("numeric", response, answer, {})

    def math(self, response: str, answer: str) -> Optional[float]:
        """Math equivalence (LaTeX fractions, roots, powers, pi, intervals, sets)."""
        return self._family("math", response, answer, {})

    def chart(self, response: str, answer: Union[str, float]) -> Optional[float]:
        """ChartQA relaxed accuracy (5% relative by default)."""
        return self._family("chart", response, answer, {})

    def iou(
        self,
        response: str,
        answer: Any,
        *,
        frame: Optional[str] = None,
        pred_frame: Optional[str] = None,
        image_size: Optional[Sequence[float]] = None,
    ) -> Optional[float]:
        """Box IoU: gold ``answer`` boxes in ``frame``, predicted boxes in ``pred_frame``, both
        mapped to pixels of the original ``image_size`` ([width, height])."""
        return self._family(
            "grounding", response, answer, {"frame": frame, "pred_frame": pred_frame, "image_size": image_size}
        )

    def bmas(self, response: str, answer: str) -> Optional[float]:
        """BMAS similarity of an open-ended answer to the reference (needs an embedding table)."""
        return self._family("open_ended", response, answer, {})

    def __reduce__(self):
        return (_rewards_from_config_json, (self._native.config_json(),))

    def __repr__(self) -> str:
        cfg = self.config
        bmas = cfg.get("bmas") or {}
        table = bmas.get("model") or bmas.get("embeddings")
        return (
            f"Rewards(accuracy_weight={cfg['accuracy_weight']}, format_weight={cfg['format_weight']}, "
            f"format={cfg['format']['mode']!r}, bmas={table!r})"
        )


def _rewards_from_config_json(text: str) -> Rewards:
    """Unpickles a :class:`Rewards` (module-level, so pickle can find it)."""
    return Rewards(json.loads(text))


# Errors that mean the sample itself is malformed (not a skip of an unusable gold answer).
_SCHEMA_ERROR_PREFIXES = ("bad sample", "invalid JSON", "missing field", "unknown task", "unknown reward")


def _is_schema_error(error: Optional[str]) -> bool:
    return bool(error) and error.startswith(_SCHEMA_ERROR_PREFIXES)


# -- the process-wide default -------------------------------------------------------------------

_default_lock = threading.Lock()
_default: Optional[Rewards] = None


def default_rewards() -> Rewards:
    """The process-wide :class:`Rewards`: from ``$MIXED_R1_REWARD_CONFIG`` (a ``reward.toml``)
    when set, else the defaults. Created on first use. An environment variable rather than only
    a setter because trainers re-import the adapters in spawned worker processes."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Rewards(os.environ.get("MIXED_R1_REWARD_CONFIG") or None)
    return _default


def set_default_rewards(config: ConfigLike = None, **bmas: Any) -> Rewards:
    """Replaces the process-wide default (same arguments as :class:`Rewards`) and returns it."""
    global _default
    rewards = config if isinstance(config, Rewards) and not bmas else Rewards(config, **bmas)
    with _default_lock:
        _default = rewards
    return rewards


def score(
    samples: Iterable[Union[Mapping[str, Any], str]], rewards: Optional[Rewards] = None, *, output: str = "dicts"
) -> list:
    """Scores a batch of samples with the mixed reward; see the module docs and
    :meth:`Rewards.score` (``output="floats"``: one reward per sample)."""
    return (rewards or default_rewards()).score(samples, output=output)


def score_one(sample: Union[Mapping[str, Any], str], rewards: Optional[Rewards] = None) -> dict:
    """Scores one sample with the mixed reward."""
    return (rewards or default_rewards()).score_one(sample)


def score_columns(responses: Sequence[str], answers: Sequence[Any], tasks=None, **columns: Any) -> Union[dict, list]:
    """Scores columns with the default configuration; see :meth:`Rewards.score_columns`
    (``output="floats"``: the list of rewards)."""
    return default_rewards().score_columns(responses, answers, tasks, **columns)


def format_score(response: str) -> Optional[float]:
    """The format reward of a response under the default configuration."""
    return default_rewards().format(response)


def extract_answer(response: str) -> Optional[str]:
    """The answer of a response that accuracy is judged on."""
    return default_rewards().extract(response)


def accuracy(task: str, prediction: Optional[str], answer: Any, **fields: Any) -> Optional[float]:
    """Accuracy of a bare prediction; see :meth:`Rewards.accuracy`."""
    return default_rewards().accuracy(task, prediction, answer, **fields)


def yes_no(response: str, answer: str) -> Optional[float]:
    """See :meth:`Rewards.yes_no`."""
    return default_rewards().yes_no(response, answer)


def mcq(response: str, answer: str, choices: Optional[Sequence[str]] = None) -> Optional[float]:
    """See :meth:`Rewards.mcq`."""
    return default_rewards().mcq(response, answer, choices)


def numeric(response: str, answer: Union[str, float]) -> Optional[float]:
    """See :meth:`Rewards.numeric`."""
    return default_rewards().numeric(response, answer)


def math(response: str, answer: str) -> Optional[float]:
    """See :meth:`Rewards.math`."""
    return default_rewards().math(response, answer)


def chart(response: str, answer: Union[str, float]) -> Optional[float]:
    """See :meth:`Rewards.chart`."""
    return default_rewards().chart(response, answer)


def iou(response: str, answer: Any, **fields: Any) -> Optional[float]:
    """See :meth:`Rewards.iou`."""
    return default_rewards().iou(response, answer, **fields)


def bmas(response: str, answer: str) -> Optional[float]:
    """See :meth:`Rewards.bmas`."""
    return default_rewards().bmas(response, answer)

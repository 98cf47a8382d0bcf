"""mixed_r1/openrlhf.py, loaded and called exactly as OpenRLHF calls a reward_func file."""
import importlib.util
import json
import os

import pytest

import mixed_r1
from mixed_r1._inputs import response_from_query

PATH = os.path.join(os.path.dirname(mixed_r1.__file__), "openrlhf.py")


def load():
    # openrlhf: spec_from_file_location("reward_func", remote_rm_url) and module.reward_func.
    spec = importlib.util.spec_from_file_location("reward_func", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reward_func


def chatml(question, response):
    prompt = (f"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
              "<|im_start|>assistant\n")
    return prompt, prompt + response + "<|im_end|><|endoftext|><|endoftext|>"


def test_reward_func_call():
    fn = load()
    p1, q1 = chatml("<image>What is the 2019 value?", "<think>bar</think><answer>24</answer>")
    p2, q2 = chatml("<image>Is it red?", "<think>no</think><answer>no</answer>")
    p3, q3 = chatml("<image>Is it big?", "<think>?</think><answer>yes</answer>")
    labels = [json.dumps({"task": "chart", "answer": "23.5"}), json.dumps({"task": "yes_no", "answer": "yes"}),
              json.dumps({"task": "yes_no", "answer": "maybe"})]
    out = fn([q1, q2, q3], [p1, p2, p3], labels)
    try:
        import torch
    except ImportError:
        torch = None
    as_list = (lambda t: t.tolist()) if torch is not None else list
    if torch is not None:
        assert isinstance(out["rewards"], torch.Tensor) and out["rewards"].dtype == torch.float32
    else:
        assert isinstance(out["rewards"], list)
    assert as_list(out["rewards"]) == [1.5, 0.5, 0.0]
    assert as_list(out["scores"]) == [1.0, 0.0, 0.0]
    assert as_list(out["extra_logs"]["format"]) == [1.0, 1.0, 1.0]
    assert as_list(out["extra_logs"]["skipped"]) == [0.0, 0.0, 1.0]


def test_plain_labels_with_a_default_task(monkeypatch):
    fn = load()
    p, q = chatml("How many?", "<think>count</think><answer>3 apples</answer>")
    out = fn([q], [p], ["3"], task="numeric")
    assert list(out["rewards"]) == [1.5]
    monkeypatch.setenv("MIXED_R1_TASK", "numeric")
    assert list(out["scores"]) == list(fn([q], [p], ["3"])["scores"]) == [1.0]
    with pytest.raises(ValueError, match="--label_key"):
        fn([q], [p], None)


@pytest.mark.parametrize("query, prompt, response", [
    # The prompt is a prefix: everything after it, end markers removed.
    ("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nA<|im_end|>", "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "A"),
    # Not a prefix (re-tokenised prompt): after the last assistant opener of a known template.
    ("<|im_start|>user\nq'<|im_end|>\n<|im_start|>assistant\nB<|im_end|>", "other", "B"),
    ("<|start_header_id|>assistant<|end_header_id|>\n\nC<|eot_id|>", None, "C"),
    ("<start_of_turn>user\nq<end_of_turn>\n<start_of_turn>model\nD<end_of_turn>", None, "D"),
    ("<|user|>\nq<|end|>\n<|assistant|>\nE<|end|><|endoftext|>", None, "E"),
    ("no template at all", None, "no template at all"),
])
def test_response_from_query(query, prompt, response):
    assert response_from_query(query, prompt) == response

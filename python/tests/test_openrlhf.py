"""mixed_r1/openrlhf.py, loaded and called exactly as OpenRLHF calls a reward_func file.

Checked against OpenRLHF v0.11.0 (tag v0.11.0, commit in OpenRLHF/OpenRLHF):
``openrlhf/cli/train_ppo_ray.py`` takes the file with ``--reward.remote_url`` (``--remote_rm_url``
before 0.11) and the labels with ``--data.label_key``; ``openrlhf/utils/agent.py``,
``SingleTurnAgentExecutor.__init__`` loads it with ``spec_from_file_location("reward_func", path)``
and ``module.reward_func``; ``execute`` decodes ``observation_tokens`` (the processor-expanded
prompt plus the action) with ``skip_special_tokens=False`` and ``_fetch_rewards_via_func`` calls
``reward_func([query], [prompt], [label])`` through ``asyncio.to_thread`` (batch size 1), then
reads ``rewards``, ``scores`` (falling back to ``rewards``) and ``extra_logs``; the samples
generator turns each extra_logs value into a tensor (``value.flatten()[0].item()``).
"""
import importlib.util
import json
import os

import pytest

import mixed_r1
from mixed_r1._inputs import response_from_query

PATH = os.path.join(os.path.dirname(mixed_r1.__file__), "openrlhf.py")


def load():
    # OpenRLHF v0.11.0 openrlhf/utils/agent.py: spec_from_file_location("reward_func", path),
    # spec.loader.exec_module(module), module.reward_func.
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
    with pytest.raises(ValueError, match="--data.label_key"):
        fn([q], [p], None)


@pytest.mark.parametrize("query, prompt, response", [
    # The prompt is a prefix: everything after it, end markers removed.
    ("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nA<|im_end|>", "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", "A"),
    # The prompt's one image pad is a run of 4 in the query (the processor expanded it).
    ("<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>q<|im_end|>\n<|im_start|>assistant\nF<|im_end|>",
     "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>q<|im_end|>\n<|im_start|>assistant\n", "F"),
    # Not a prefix (re-tokenised prompt): after the last assistant opener of a known template.
    ("<|im_start|>user\nq'<|im_end|>\n<|im_start|>assistant\nB<|im_end|>", "other", "B"),
    ("<|start_header_id|>assistant<|end_header_id|>\n\nC<|eot_id|>", None, "C"),
    ("<start_of_turn>user\nq<end_of_turn>\n<start_of_turn>model\nD<end_of_turn>", None, "D"),
    ("<|user|>\nq<|end|>\n<|assistant|>\nE<|end|><|endoftext|>", None, "E"),
    ("<\uff5cUser\uff5c>q<\uff5cAssistant\uff5c>G<\uff5cend\u2581of\u2581sentence\uff5c>", None, "G"),
    ("[INST] q [/INST]H</s>", None, "H"),
    ("no template at all", None, "no template at all"),
])
def test_response_from_query(query, prompt, response):
    assert response_from_query(query, prompt) == response


def test_openrlhf_011_single_turn_call_with_expanded_image_pads():
    # v0.11.0 SingleTurnAgentExecutor: one query per call, from a worker thread, the query
    # decoded with special tokens kept -- every image pad the Qwen processor expanded is in it.
    import asyncio

    fn = load()
    prompt = ("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
              "<|vision_start|><|image_pad|><|vision_end|>Where is the cup?<|im_end|>\n<|im_start|>assistant\n")
    label = json.dumps({"task": "grounding", "answer": [[10, 20, 110, 220]], "image_size": [640, 480]})
    for pads, sampled in [(1, 0), (5_000, 0), (60_000, 0), (5_000, 200)]:
        expanded = prompt.replace("<|image_pad|>", "<|image_pad|>" * pads)
        response = "<think>left</think><answer>[10, 20, " + "<|image_pad|>" * sampled + "110, 220]</answer>"
        query = expanded + response + "<|im_end|>"

        async def fetch():
            return await asyncio.gather(asyncio.to_thread(fn, [query], [prompt], [label]))

        info = asyncio.run(fetch())[0]
        rewards = info["rewards"]
        value = rewards.flatten()[0].item() if hasattr(rewards, "flatten") else rewards[0]
        assert value == 1.5, (pads, sampled)
        scores = info.get("scores")
        assert (scores if scores is not None else rewards) is not None
        for key, v in info["extra_logs"].items():
            assert (v.flatten()[0].item() if hasattr(v, "flatten") else v[0]) in (0.0, 1.0), key
        assert response_from_query(query, prompt).startswith("<think>left</think>")


def test_response_cutting_is_linear_in_the_query():
    import time

    prompt = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>q<|im_end|>\n<|im_start|>assistant\n"
    query = (prompt.replace("<|image_pad|>", "<|image_pad|>" * 200_000) + "<answer>A</answer><|im_end|>"
             + "<|endoftext|>" * 20_000)
    started = time.perf_counter()
    assert response_from_query(query, prompt) == "<answer>A</answer>"
    assert response_from_query(query, None) == "<answer>A</answer>"
    assert response_from_query("<|image_pad|>" * 100_000, prompt) == "<|image_pad|>" * 100_000
    # Linear: well under a second on an idle core; a quadratic cut (a copy per stripped marker)
    # would take minutes. The bound leaves room for a loaded CI machine.
    assert time.perf_counter() - started < 30.0

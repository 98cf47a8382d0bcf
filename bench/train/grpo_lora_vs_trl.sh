#!/usr/bin/env bash
# LoRA GRPO step throughput, ours vs TRL's GRPOTrainer + peft LoRA, on CPU, in one run on this
# machine: bench/train/grpo_vs_trl.sh (same tiny random Qwen2, hidden 128, 4 layers, vocab 151,669,
# 1 prompt x G = 8 completions of exactly 64 tokens, TRL's three rewards, beta 0 and 0.04, 2 threads,
# quiet-machine guard, one process per run with its peak RSS) with LoRA on both sides:
# rank 16, alpha 32, dropout 0, targets q,k,v,o,gate,up,down_proj.
#   TRL:  GRPOTrainer(..., peft_config=peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0, ...))
#   ours: Model::add_lora(&LoraConfig { rank: 16, alpha: 32, .. }), AdamW over params().trainable()
# With beta 0.04 both sides take the KL reference from the policy with its adapters off (TRL does so
# for a fresh peft adapter; we use Model::with_adapters_disabled): no second copy of the weights.
#
#   bash bench/train/grpo_lora_vs_trl.sh [STEPS]     (timed steps per run, default 8)
#   RUNS="trl:glibc ours:mimalloc" bash bench/train/grpo_lora_vs_trl.sh   (subset of the runs)
#
# Writes bench/results/grpo_lora_vs_trl.json and prints a table with the ratios (TRL s/step / ours).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LORA_RANK="${LORA_RANK:-16}" LORA_ALPHA="${LORA_ALPHA:-32}" exec bash "$here/grpo_vs_trl.sh" "${1:-8}"

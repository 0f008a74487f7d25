#!/usr/bin/env bash
# Makes what examples/pretrained.yaml starts from, without a hub: a random LlamaForCausalLM of
# examples/pretrained/config.json's shape with the tokenizer and chat template beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
RLAIF="${RLAIF_BIN:-.build/release/rlaif}"
if [ ! -x "$RLAIF" ]; then
  swift build -c release --product rlaif
fi
"$RLAIF" new-model --config examples/pretrained/config.json --tokenizer examples/pretrained --seed 1 \
  --out examples/pretrained/checkpoint

#!/usr/bin/env python3
"""The bf16 product scheme of `model.precision: bf16`, emulated in PyTorch on the Llama-family
reference fixtures (run by hand; CI never runs this). Each nn.Linear rounds its input and its
weight to bfloat16 and multiplies in Float32 (bias added in Float32); everything else stays
Float32. Prints the largest log-prob difference from the fixtures' Float32 log-probs with every
product rounded, and with only some of them, to show where the difference comes from.

    python3 tools/bf16_emulation.py
"""
import os

import torch
import torch.nn as nn
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "ModelsTests", "Fixtures")
SUBSETS = [
    ("every product", lambda name: True),
    ("all but the head", lambda name: "lm_head" not in name),
    ("the head alone", lambda name: "lm_head" in name),
    ("attention projections alone", lambda name: "self_attn" in name),
    ("MLP alone", lambda name: "mlp" in name),
]


def rounded(x):
    return x.to(torch.bfloat16).to(torch.float32)


def log_probs(model, ids):
    with torch.no_grad():
        logits = model(ids).logits[:, :-1].double()
        return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]


def main():
    for name in ["llama-tiny", "qwen2-tiny", "mistral-tiny"]:
        directory = os.path.join(FIXTURES, name)
        reference = load_file(os.path.join(directory, "reference.safetensors"))
        ids = reference["input_ids"].long()
        exact = reference["logprobs"].double()
        model = AutoModelForCausalLM.from_pretrained(directory, torch_dtype=torch.float32, attn_implementation="eager")
        model.eval()
        linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
        plain = {n: m.forward for n, m in linears.items()}
        results = []
        for label, chosen in SUBSETS:
            for n, m in linears.items():
                if chosen(n):
                    m.forward = lambda x, m=m: rounded(x) @ rounded(m.weight).t() + (0 if m.bias is None else m.bias)
                else:
                    m.forward = plain[n]
            results.append(f"{label} {(log_probs(model, ids) - exact).abs().max().item():.4f}")
        print(f"{name}: " + ", ".join(results))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference fixtures for rlaif's GPT-2, made with PyTorch + transformers (run by hand; CI never
runs this). Writes Tests/ModelsTests/Fixtures/gpt2-tiny/:

  config.json, model.safetensors   a tiny random GPT2LMHeadModel, via save_pretrained
  reference.safetensors            for fixed inputs: input_ids, logits, loss, per-token log-probs
                                   of each next token, and the gradient of the loss for every
                                   parameter (grad.<name>, HF names, wte's including the tied head)

    python3 tools/make_reference.py            # (re)make the fixtures
    python3 tools/make_reference.py check DIR  # load an rlaif-written checkpoint in transformers
                                               # and compare its logits with DIR/rlaif_logits.safetensors
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures", "gpt2-tiny")


def make():
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=61, n_positions=16, n_embd=24, n_layer=2, n_head=3,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new",
        layer_norm_epsilon=1e-5, initializer_range=0.2,
    )
    model = GPT2LMHeadModel(config).float()
    # Non-trivial norms and biases, so their gradients and effects are exercised.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.train()  # dropout is 0; train mode keeps autograd on
    model.save_pretrained(OUT, safe_serialization=True)
    if os.path.exists(os.path.join(OUT, "generation_config.json")):
        os.remove(os.path.join(OUT, "generation_config.json"))  # not part of the fixture

    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, config.vocab_size, (2, 9), generator=g)
    out = model(input_ids=input_ids, labels=input_ids)
    out.loss.backward()
    logprobs = torch.log_softmax(out.logits[:, :-1].double(), dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]

    ref = {
        "input_ids": input_ids.to(torch.int32).contiguous(),
        "logits": out.logits.detach().contiguous(),
        "loss": out.loss.detach().reshape(1),
        "logprobs": logprobs.float().contiguous(),
    }
    for name, p in model.named_parameters():
        ref["grad." + name] = p.grad.detach().contiguous()
    save_file(ref, os.path.join(OUT, "reference.safetensors"))
    print("wrote", OUT, "with", len(ref), "reference tensors; loss", out.loss.item())


def check(directory):
    model = GPT2LMHeadModel.from_pretrained(directory).float().eval()
    expected = load_file(os.path.join(directory, "rlaif_logits.safetensors"))
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"].long()).logits
    diff = (logits - expected["logits"]).abs().max().item()
    print(f"transformers loaded {directory}; max |logit difference| = {diff:.3g}")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    make()

#!/usr/bin/env python3
"""Reference fixtures for rlaif's Llama family, made with PyTorch + transformers (run by hand; CI
never runs this). For each of three tiny random models it writes Tests/ModelsTests/Fixtures/NAME/:

  config.json, model.safetensors   the model, via save_pretrained
  reference.safetensors            for fixed inputs (2, 12): input_ids, logits, loss, per-token
                                   log-probs of each next token, the gradient of the loss for every
                                   parameter (grad.<name>), and greedy continuations of three
                                   prompts by model.generate (prompt.K, greedy.K)

  llama-tiny    LlamaForCausalLM: 4 query / 2 key-value heads of 16 (wider than the model's 32),
                tied embeddings, llama3 rope scaling whose three wavelength bands all occur
  qwen2-tiny    Qwen2ForCausalLM: q/k/v biases, untied head, 4 query heads / 1 key-value head
  mistral-tiny  MistralForCausalLM: a sliding window of 4 inside the 12-token test context

and llama-tiny-bf16-sharded/: llama-tiny saved in bfloat16 in several shards with an index, and
reference.safetensors holding the Float32 values transformers loads from it (param.<name>) and
their logits.

    python3 tools/make_llama_reference.py              # (re)make the fixtures
    python3 tools/make_llama_reference.py check DIR    # load an rlaif-written checkpoint with
                                                       # AutoModelForCausalLM and compare its
                                                       # log-probs with DIR/rlaif_logprobs.safetensors
"""
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "ModelsTests", "Fixtures")
VOCAB = 97
PROMPTS = [[5, 17, 3], [42], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]


def common(**extra):
    return dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, head_dim=16, max_position_embeddings=128, rms_norm_eps=1e-5,
                initializer_range=0.2, bos_token_id=1, eos_token_id=2, pad_token_id=0, **extra)


def models():
    yield "llama-tiny", LlamaForCausalLM, LlamaConfig(**common(
        num_key_value_heads=2, tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}))
    yield "qwen2-tiny", Qwen2ForCausalLM, Qwen2Config(**common(
        num_key_value_heads=1, tie_word_embeddings=False, rope_theta=1000.0))
    yield "mistral-tiny", MistralForCausalLM, MistralConfig(**common(
        num_key_value_heads=2, tie_word_embeddings=False, sliding_window=4))


def perturb(model):
    """Non-trivial norms and biases, so their gradients and effects are exercised."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))


def reference(model, input_ids):
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
    with torch.no_grad():
        for k, prompt in enumerate(PROMPTS):
            ids = torch.tensor([prompt])
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10,
                                       do_sample=False, eos_token_id=None, pad_token_id=0)
            ref[f"prompt.{k}"] = ids[0].to(torch.int32)
            ref[f"greedy.{k}"] = generated[0, len(prompt):].to(torch.int32).contiguous()
    return ref


def make():
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, VOCAB, (2, 12), generator=g)
    for name, cls, config in models():
        torch.manual_seed(0)
        config._attn_implementation = "eager"
        model = cls(config).float()
        perturb(model)
        out = os.path.join(FIXTURES, name)
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out, safe_serialization=True)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(out, extra)):
                os.remove(os.path.join(out, extra))
        model.train()  # no dropout in these models; train mode keeps autograd on
        ref = reference(model, input_ids)
        save_file(ref, os.path.join(out, "reference.safetensors"))
        print("wrote", out, "loss", ref["loss"].item())
        if name == "llama-tiny":
            make_reward(model, config, input_ids, ref)
            save_file(ref, os.path.join(out, "reference.safetensors"))
            make_sharded(model, input_ids)


def make_reward(model, config, input_ids, ref):
    """LlamaForSequenceClassification (one label) on the same trunk: its score at the last real
    token of right-padded sequences (pad id 0, which no real token of these inputs uses)."""
    from transformers import LlamaForSequenceClassification
    torch.manual_seed(2)
    reward = LlamaForSequenceClassification(config.__class__(**{**config.to_dict(), "num_labels": 1})).float().eval()
    reward.model.load_state_dict(model.model.state_dict())
    ids = input_ids.clone() % (VOCAB - 1) + 1
    ids[1, 7:] = 0
    with torch.no_grad():
        scores = reward(input_ids=ids).logits[:, 0]
    ref["reward.input_ids"] = ids.to(torch.int32).contiguous()
    ref["reward.score.weight"] = reward.score.weight.detach().contiguous()
    ref["reward.scores"] = scores.contiguous()


def make_sharded(model, input_ids):
    out = os.path.join(FIXTURES, "llama-tiny-bf16-sharded")
    shutil.rmtree(out, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True, max_shard_size="40KB")
    if os.path.exists(os.path.join(out, "generation_config.json")):
        os.remove(os.path.join(out, "generation_config.json"))
    loaded = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ref = {"param." + n: p.detach().contiguous() for n, p in loaded.named_parameters()}
    with torch.no_grad():
        ref["logits"] = loaded(input_ids=input_ids).logits.contiguous()
    ref["input_ids"] = input_ids.to(torch.int32).contiguous()
    save_file(ref, os.path.join(out, "reference.safetensors"))
    print("wrote", out, "with", len([f for f in os.listdir(out) if f.startswith("model-")]), "shards")


def check(directory):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    expected = load_file(os.path.join(directory, "rlaif_logprobs.safetensors"))
    ids = expected["input_ids"].long()
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    logprobs = torch.log_softmax(logits[:, :-1].double(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    diff = (logprobs.float() - expected["logprobs"]).abs().max().item()
    print(f"transformers loaded {directory} as {type(model).__name__}; max |log-prob difference| = {diff:.3g}")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    make()

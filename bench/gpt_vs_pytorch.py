#!/usr/bin/env python3
"""rlaif's models beside PyTorch + transformers on the same machine, in one run, 2 threads each.

Shapes (issue 3): training step (forward, backward, AdamW) for the small preset (4 layers, width
256, 4 heads, vocab 512, context 256) at batch 8 x 128 and for gpt2-124M at batch 4 x 256;
KV-cache generation of 64 new tokens from 32-token prompts at batch 8 for both. Issue 20 adds
SmolLM2-135M's Llama shape (30 layers, width 576, 9 heads, 3 KV heads, MLP 1536, vocab 49152,
tied) with random weights, the same two tasks.

    swift build -c release --product rlaif-bench
    python3 bench/gpt_vs_pytorch.py [--repeats 3] [--rounds 3] [--only smollm2-135M] [--task generate]

rlaif's peak resident memory (VmHWM) of each case is printed beside it. `train-checkpointed` is
the same step with gradient checkpointing on both sides (rlaif: blocks and LM-head chunks
recomputed in backward; transformers: gradient_checkpointing_enable()).

The two sides take turns, round after round (each round: rlaif's repeats, then PyTorch's), so a
slow minute of a shared machine falls on both; best and median are over every timed run.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BENCH = os.path.join(ROOT, ".build", "release", "rlaif-bench")

PRESETS = {
    "small": dict(vocab_size=512, n_positions=256, n_embd=256, n_layer=4, n_head=4),
    "gpt2-124M": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12),
}
SMOLLM2 = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
               num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5,
               rope_theta=100000.0, tie_word_embeddings=True)
CASES = [
    ("small", "train", 8, 128),
    ("small", "generate", 8, 32),
    ("gpt2-124M", "train", 4, 256),
    ("gpt2-124M", "generate", 8, 32),
    ("smollm2-135M", "train", 4, 256),
    ("smollm2-135M", "train-checkpointed", 4, 256),
    ("smollm2-135M", "generate", 8, 32),
]


def torch_case(preset, task, batch, tokens, repeats, new_tokens=64, precision="float32"):
    """`precision` bf16: PyTorch's mixed precision on CPU (torch.autocast, bfloat16)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(2)
    torch.manual_seed(1)
    if preset == "smollm2-135M":
        from transformers import LlamaConfig, LlamaForCausalLM
        config = LlamaConfig(**SMOLLM2)
        model = LlamaForCausalLM(config)
        if task == "train-checkpointed":
            model.gradient_checkpointing_enable()
    else:
        config = GPT2Config(**PRESETS[preset], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                            activation_function="gelu_new")
        model = GPT2LMHeadModel(config)
    ids = torch.randint(0, config.vocab_size, (batch, tokens))
    times = []
    if task.startswith("train"):
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=False)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
    else:
        model.eval()
        mask = torch.ones_like(ids)
        for r in range(repeats + 1):
            torch.manual_seed(r)
            t0 = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model.generate(
                    input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens, pad_token_id=0, use_cache=True,
                )
            assert out.shape[1] == tokens + new_tokens
            times.append(time.perf_counter() - t0)
    return [t * 1000 for t in times[1:]]


def rlaif_case(bench, preset, task, batch, tokens, repeats, precision="float32"):
    env = dict(os.environ, RLAIF_THREADS="2")
    flags = ["--task", "train", "--checkpointing"] if task == "train-checkpointed" else ["--task", task]
    flags += ["--precision", precision]
    out = subprocess.run(
        [bench, "gpt", "--preset", preset, *flags, "--batch", str(batch), "--tokens", str(tokens),
         "--repeats", str(repeats)],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["times_ms"], result.get("vm_hwm_kb", 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["small", "gpt2-124M", "smollm2-135M"])
    parser.add_argument("--task", choices=["train", "train-checkpointed", "generate"], help="one case of each preset")
    parser.add_argument("--bench", default=BENCH, help="the rlaif-bench binary")
    args = parser.parse_args()
    print(f"{'case':42} {'rlaif ms':>10} {'torch ms':>10} {'torch/rlaif':>12}   (best of {args.rounds}x{args.repeats}; median in brackets)")
    for preset, task, batch, tokens in CASES:
        if (args.only and preset != args.only) or (args.task and task != args.task):
            continue
        ours, theirs, peak = [], [], 0
        for _ in range(args.rounds):
            times, hwm = rlaif_case(args.bench, preset, task, batch, tokens, args.repeats)
            ours += times
            peak = max(peak, hwm)
            theirs += torch_case(preset, task, batch, tokens, args.repeats)
        ours = (min(ours), statistics.median(ours))
        theirs = (min(theirs), statistics.median(theirs))
        shape = f"{batch}x{tokens}" + (" +64 new" if task == "generate" else "")
        label = f"{preset} {task} {shape}"
        print(f"{label:42} {ours[0]:10.1f} {theirs[0]:10.1f} {theirs[0] / ours[0]:11.2f}x   "
              f"[{ours[1]:.1f} / {theirs[1]:.1f} = {theirs[1] / ours[1]:.2f}x]   rlaif VmHWM {peak / 1024:.0f} MB",
              flush=True)


if __name__ == "__main__":
    main()

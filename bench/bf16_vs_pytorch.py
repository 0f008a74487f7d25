#!/usr/bin/env python3
"""bf16 products beside Float32, rlaif and PyTorch, in one run, 2 threads each (issue 25).

Cases: the small preset's training step (batch 8 x 128: forward, backward, AdamW) and gpt2-124M
KV-cache generation (batch 8, 32 prompt + 64 new tokens). Four columns per case: rlaif Float32,
rlaif `--precision bf16`, PyTorch Float32, PyTorch with torch.autocast("cpu", bfloat16), the
peer for mixed precision on CPU. Each round runs all four in turn, so a slow minute of a shared
machine falls on every column; best and median are over every timed run.

    swift build -c release --product rlaif-bench
    python3 bench/bf16_vs_pytorch.py [--repeats 3] [--rounds 3]
"""
import argparse
import statistics

from gpt_vs_pytorch import BENCH, rlaif_case, torch_case

CASES = [("small", "train", 8, 128), ("gpt2-124M", "generate", 8, 32)]
COLUMNS = [("rlaif", "float32"), ("rlaif", "bf16"), ("torch", "float32"), ("torch", "bf16")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bench", default=BENCH, help="the rlaif-bench binary")
    args = parser.parse_args()
    print(f"{'case':34} " + " ".join(f"{side + ' ' + p:>14}" for side, p in COLUMNS)
          + "   bf16/f32 (rlaif)  torch-bf16/rlaif-bf16   (best ms; medians below)")
    for preset, task, batch, tokens in CASES:
        times = {column: [] for column in COLUMNS}
        for _ in range(args.rounds):
            for side, precision in COLUMNS:
                if side == "rlaif":
                    times[(side, precision)] += rlaif_case(args.bench, preset, task, batch, tokens, args.repeats,
                                                           precision)[0]
                else:
                    times[(side, precision)] += torch_case(preset, task, batch, tokens, args.repeats,
                                                           precision=precision)
        for name, pick in (("best", min), ("median", statistics.median)):
            value = {c: pick(t) for c, t in times.items()}
            label = f"{preset} {task} {batch}x{tokens}" + (" +64" if task == "generate" else "") + f" ({name})"
            print(f"{label:34} " + " ".join(f"{value[c]:14.1f}" for c in COLUMNS)
                  + f"   {value[('rlaif', 'float32')] / value[('rlaif', 'bf16')]:15.2f}x"
                  + f"   {value[('torch', 'bf16')] / value[('rlaif', 'bf16')]:20.2f}x", flush=True)


if __name__ == "__main__":
    main()

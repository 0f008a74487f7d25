#!/usr/bin/env python3
"""What TensorBoard's own event reader finds in a run's event files, as JSON on stdout.

  python3 tools/read_tensorboard.py RUN_DIR
  {"scalars": {tag: [[step, value], ...]}, "text": {tag: [[step, markdown], ...]}}

Used by the telemetry test; needs PyPI's tensorboard (tools/telemetry-peers.sh install).
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    accumulator = event_accumulator.EventAccumulator(
        sys.argv[1] + "/tensorboard",
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0},
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {t: [[e.step, e.value] for e in accumulator.Scalars(t)] for t in tags["scalars"]}
    text = {
        t: [[e.step, e.tensor_proto.string_val[0].decode("utf-8")] for e in accumulator.Tensors(t)]
        for t in tags["tensors"]
    }
    json.dump({"scalars": scalars, "text": text}, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Regenerates Sources/Telemetry/TensorBoard/tensorboard_{event,summary,tensor}.pb.swift from the .proto files here.
# Needs protoc (Debian's protobuf-compiler) and protoc-gen-swift built from swift-protobuf at the
# version Package.swift names: swift build --product protoc-gen-swift in a checkout of it, then
#   PROTOC_GEN_SWIFT=/path/to/.build/debug/protoc-gen-swift tools/proto/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
out=../../Sources/Telemetry/TensorBoard
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="${PROTOC_GEN_SWIFT:?path to protoc-gen-swift}" \
  --swift_out="$out" --swift_opt=Visibility=Internal tensorboard_event.proto tensorboard_summary.proto tensorboard_tensor.proto

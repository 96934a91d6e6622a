#!/usr/bin/env bash
# Regenerate the committed gRPC/protobuf code from protos/ (tests/test_proto_fresh.py fails when it is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.}
.venv/bin/python -m grpc_tools.protoc -Iprotos --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
    protos/advisor/api/v1/advisor.proto

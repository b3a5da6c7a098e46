#!/usr/bin/env bash
# Regenerate the committed Python stubs of the wire contract (proto/npcs/v1/*.proto).
# With -Iproto the generated modules import as `npcs.v1`, matching the package layout.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-proto}"
python -m grpc_tools.protoc -Iproto --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" --mypy_grpc_out="$out" proto/npcs/v1/*.proto

#!/usr/bin/env bash
# Fail when the committed stubs differ from what scripts/gen_protos.sh generates now.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
scripts/gen_protos.sh "$scratch"
stale=0
for generated in "$scratch"/npcs/v1/*; do
  committed="proto/npcs/v1/$(basename "$generated")"
  if ! diff -q "$generated" "$committed" >/dev/null 2>&1; then
    echo "stale or missing: $committed (run scripts/gen_protos.sh)" >&2
    stale=1
  fi
done
for committed in proto/npcs/v1/*_pb2*.py proto/npcs/v1/*_pb2*.pyi; do
  [ -e "$committed" ] || continue
  if [ ! -e "$scratch/npcs/v1/$(basename "$committed")" ]; then
    echo "generated file without a .proto: $committed" >&2
    stale=1
  fi
done
if [ "$stale" -eq 0 ]; then echo "protobuf stubs are up to date"; fi
exit "$stale"

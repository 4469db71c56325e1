#!/usr/bin/env bash
# Generates Python modules from protos/ into gen/ (gitignored; `make protos` runs this).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
case $py in /*) ;; */*) py="$PWD/$py" ;; esac  # absolute, but keep the venv symlink
common=$("$py" -c 'import os, google.api.annotations_pb2 as a; print(os.path.dirname(os.path.dirname(os.path.dirname(a.__file__))))')
rm -rf "$root/gen" && mkdir -p "$root/gen"
cd "$root/protos"
# gen/transmute.pb: the descriptor set (imports and comments included) envoy's gRPC-JSON
# transcoder reads to serve the google.api.http annotations as REST (deploy/envoy/).
"$py" -m grpc_tools.protoc -I . -I "$common" \
  --python_out="$root/gen" --pyi_out="$root/gen" --grpc_python_out="$root/gen" \
  --descriptor_set_out="$root/gen/transmute.pb" --include_imports --include_source_info \
  $(find transmute -name '*.proto' | sort)
# Regular packages so setuptools finds them and mypy resolves them.
find "$root/gen/transmute" -type d -exec touch {}/__init__.py \;

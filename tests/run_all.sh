#!/bin/bash
# Installs what is missing, builds, and runs every test: unit tests,
# end-to-end tests with real files, real NBD clients and a real
# single-node Ceph cluster. This is exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cd build
ctest --output-on-failure --timeout 600 "$@"

#!/bin/bash
# Installs what is missing, builds, and runs every test: unit tests,
# end-to-end tests with real files, real NBD clients and a real
# single-node Ceph cluster. This is exactly what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cd build
# Most e2e tests wait on I/O, sockets and timers, so run twice as many
# as there are cores (fuzz_smoke counts as two; Ceph tests take turns).
ctest --output-on-failure --timeout 600 -j"$((2 * $(nproc)))" "$@"

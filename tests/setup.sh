#!/bin/bash
# Installs what backy needs on Debian 12 (as root; only missing packages,
# `apt-get update` once) and builds it into ./build. Used by demo.sh,
# run_all.sh and .ci/run. Set BACKY_SETUP_NO_APT=1 to skip the install.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  cmake g++ make pkg-config
  libxxhash-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libboost-dev
  liblzo2-dev libmurmurhash-dev  # backy 2.x chunks (src/store/legacy_chunk.cc)
  libzstd-dev libgtest-dev libcli11-dev librbd-dev librados-dev libnbd-dev
  nlohmann-json3-dev
  prometheus-cpp-dev  # the scheduler's metrics (src/backup/scheduler/metrics.cc)
  libgnutls28-dev  # TLS in src/nbd
  libsystemd-dev  # sd_notify: the scheduler unit's Type=notify
  # tests and demo
  xxhash openssl e2fsprogs util-linux mount passwd curl uuid-runtime fuse3 time
  ceph-mon ceph-osd ceph-common
  libnbd-bin python3-libnbd nbdkit qemu-utils nbd-client jq  # libnbd-bin has nbdfuse
  qemu-system-x86  # tests/e2e/nbd_instant_recovery.sh: a VM on the overlay, block-stream
  systemd strace  # the units: systemd-analyze verify/security; SystemCallFilter= against strace -f
  gnutls-bin  # certtool, psktool: TLS credentials in the tests
  logrotate  # tests/e2e/scheduler_log_rotate.sh: the shipped snippet
  prometheus  # promtool check metrics (tests/e2e/metrics.sh)
  clang libclang-rt-14-dev  # tests/fuzz: libFuzzer, ASan, UBSan
  clang-format  # tests/format_check.sh
)

if [ -z "${BACKY_SETUP_NO_APT:-}" ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > build.log 2>&1 || { cat build.log; exit 1; }
make -C build -j"$(nproc)" >> build.log 2>&1 || { tail -50 build.log; exit 1; }
echo "setup: built $(pwd)/build/src/backup/backy" >&2

#!/bin/sh
# scripts/deps.sh - install the Debian 12 packages govgate builds and tests with.
# Run as root (or with sudo). Safe to run again.
set -eu
PKGS="
build-essential autoconf automake pkg-config make
libssl-dev libevent-dev libyaml-dev libmaxminddb-dev libbsd-dev
openssl ca-certificates tzdata curl procps iproute2 rsync
python3 python3-pytest python3-cryptography
clang-14 libclang-rt-14-dev
libmaxmind-db-writer-perl faketime strace valgrind mandoc
"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $PKGS

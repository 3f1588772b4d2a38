#!/bin/sh
# deps.sh — make sure the Debian packages weir needs are installed.
# usage: scripts/deps.sh build|test|demo
# As root, missing packages are installed with apt-get; otherwise the script
# prints the apt-get command to run and fails.
set -eu
what=${1:-build}
pkgs="gcc make cmake pkg-config libcbor-dev libcjson-dev liblz4-dev zlib1g-dev libhdf5-dev libopenmpi-dev openmpi-bin libzmq3-dev libcurl4-openssl-dev libmicrohttpd-dev"
case "$what" in
  test) pkgs="$pkgs libcmocka-dev clang libclang-rt-14-dev hdf5-tools bitshuffle hdf5-filter-plugin python3-zmq chromium" ;;
  demo) pkgs="$pkgs libcmocka-dev hdf5-tools" ;;
esac
# The live web page takes its JavaScript from the npm registry at build time.
# Any working npm will do (NodeSource's nodejs bundles one); Debian's npm
# package is installed only when there is no npm command at all.
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "weir: installing missing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
  echo "weir: missing Debian packages:$missing" >&2
  echo "weir: install them with:  sudo apt-get install$missing" >&2
  exit 1
fi

#!/bin/sh
# test.sh — build weir and run every test (unit, format, pipeline, end to
# end), then the libFuzzer harnesses briefly. WEIR_SANITIZE=1 builds with
# ASan + UBSan (as CI does). Needs ../shared/data beside the checkout.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh test
san=${WEIR_SANITIZE:-0}
if [ "$san" = 1 ]; then dir=build-ci; else dir=build-test; fi
if [ ! -d ../shared/data ]; then
  echo "test.sh: ../shared/data is missing: the tests need the shared sample data" >&2
  exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
sanflag=OFF; [ "$san" = 1 ] && sanflag=ON
cmake -S . -B "$dir" -DWEIR_WERROR=ON -DWEIR_SANITIZE=$sanflag -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
# Fuzz harnesses: clang with libFuzzer + ASan/UBSan, each run briefly.
CC=clang cmake -S . -B "$dir-fuzz" -DWEIR_FUZZ=ON -DWEIR_SANITIZE=ON -DWEIR_WERROR=ON \
  -DWEIR_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fuzzers=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
# shellcheck disable=SC2086
cmake --build "$dir-fuzz" -j"$(nproc)" --target $fuzzers
ctest --test-dir "$dir-fuzz" --output-on-failure -j"$(nproc)" -R '^fuzz_'

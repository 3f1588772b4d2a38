#!/bin/sh
# demo.sh — build weir and run the demo: generate a synthetic STINS capture
# (bitshuffle-LZ4 compressed), replay it through the example plug-ins with a
# progress bar, and show where the HDF5 output is and a few of its values.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p demo-output
cd demo-output
../build/weir synth -o demo.cbors --frames 2000 --shape 256x256 --compression bslz4 \
  --seed 42 --filename raw/demo_scan.h5
echo '[{"name": "till_x", "data": "64"}, {"name": "from_y", "data": "192"}]' > params.json
../build/weir replay -w ../build/examples/roi_mean_worker.so \
  -r ../build/examples/tutorial_reducer.so -f demo.cbors -p params.json --nworkers 2 --progress
echo
echo "HDF5 output: $(pwd)/raw/demo_scan_processed.h5"
echo "first values of /reduced (mean of frame[:64, 192:] per event; row 0 is the header):"
h5dump -d reduced -c 8 raw/demo_scan_processed.h5 | sed -n '/DATA {/,/}/p'
h5dump -d till_x raw/demo_scan_processed.h5 | grep '(0)' | sed 's/^ */till_x /'
h5dump -d from_y raw/demo_scan_processed.h5 | grep '(0)' | sed 's/^ */from_y /'
echo
echo "to watch a replay live (parameter form, ROI-mean trace), run and open http://127.0.0.1:5000/:"
echo "  build/weir replay -w build/examples/roi_mean_worker.so -r build/examples/tutorial_reducer.so \\"
echo "    -f demo-output/demo.cbors -p demo-output/params.json --output-dir demo-output/live \\"
echo "    --port 5000 --keep-alive --rate 50"

#!/bin/bash
# Issue #15's cost: `pretrainedkit inspect` on 2,000 Fashion-MNIST images (draw 0 at 200 per class of
# bench/results/fashion-draws.csv), once with a cold feature cache and then twice with it warm. The inspection itself
# (head fits and similarity search, after the features) is the "Inspected ... in X s" the CLI prints; the wall time
# includes loading the backbone and reading the cache. Writes bench/results/inspect-cost.json.
# Needs dataset-fashion-mnist and a Release build of src/PretrainedKit.Cli.
#   bench/inspect-cost.sh [WORK_DIR]
set -euo pipefail
work=${1:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
/usr/bin/python3 "$root/bench/peers/fashion_folders.py" "$root/bench/results/fashion-draws.csv" "$work" 200
cache=$(mktemp -d "$work/cache-XXXX")
runs=()
for run in cold warm warm; do
  start=$(date +%s.%N)
  line=$(PRETRAINEDKIT_CACHE_DIR="$cache" dotnet "$root/src/PretrainedKit.Cli/bin/Release/net10.0/PretrainedKit.Cli.dll" inspect "$work/d0-200" --seed 1 | grep '^Inspected')
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  inspect=$(echo "$line" | sed -E 's/.* in ([0-9.]+) s \(.*/\1/')
  fits=$(echo "$line" | sed -E 's/.*out-of-fold fits ([0-9.]+) s.*/\1/')
  similarity=$(echo "$line" | sed -E 's/.*similarity search ([0-9.]+) s.*/\1/')
  echo "$run: wall $wall s; $line"
  runs+=("{\"cache\": \"$run\", \"wallSeconds\": $wall, \"inspectSeconds\": $inspect, \"outOfFoldSeconds\": $fits, \"similaritySeconds\": $similarity, \"found\": \"$(echo "$line" | sed -E 's/.*s\): (.*)\.$/\1/')\"}")
done
cpu=$(lscpu | grep 'Model name' | sed 's/.*: *//')
flags=$(lscpu | grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile' | sort -u | tr '\n' ' ')
cat > "$root/bench/results/inspect-cost.json" <<JSON
{
  "date": "$(date -u +%Y-%m-%d)",
  "cpu": "$cpu",
  "flags": "$flags",
  "cores": $(nproc),
  "images": 2000,
  "runs": [$(IFS=,; echo "${runs[*]}")]
}
JSON
cat "$root/bench/results/inspect-cost.json"

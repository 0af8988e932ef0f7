#!/bin/bash
# PretrainedKit's side of the from-scratch comparison (README "Against a CNN trained from scratch"): CPU time of one
# `pretrainedkit train` run with a cold feature cache on draw 0 of bench/results/fashion-draws.csv at 10, 50 and 200
# images per class. Needs dataset-fashion-mnist and a Release build of src/PretrainedKit.Cli.
#   bench/peers/pretrainedkit_train_cpu.sh [WORK_DIR]
set -euo pipefail
work=${1:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/../.." && pwd)
/usr/bin/python3 "$root/bench/peers/fashion_folders.py" "$root/bench/results/fashion-draws.csv" "$work" 10,50,200
for n in 10 50 200; do
  cache=$(mktemp -d "$work/cache-XXXX")
  /usr/bin/time -f "$n per class: user %U s, system %S s, wall %e s" env PRETRAINEDKIT_CACHE_DIR="$cache" \
    dotnet "$root/src/PretrainedKit.Cli/bin/Release/net10.0/PretrainedKit.Cli.dll" train "$work/d0-$n" --model "$work/m-$n.pkmodel" --seed 1 --quiet
done
lscpu | grep -E 'Model name|Flags' | cut -c1-200

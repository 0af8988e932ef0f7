#!/bin/bash
# PretrainedKit's side of the from-scratch comparison (README "Against a CNN trained from scratch"): CPU time of one
# `pretrainedkit train` run with a cold feature cache on draw 0 of bench/results/fashion-draws.csv at 10, 50 and 200
# images per class. Needs dataset-fashion-mnist and a Release build of src/PretrainedKit.Cli.
#   bench/peers/pretrainedkit_train_cpu.sh [WORK_DIR]
set -euo pipefail
work=${1:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/../.." && pwd)
/usr/bin/python3 - "$root/bench/results/fashion-draws.csv" "$work" <<'PY'
import csv, gzip, os, struct, sys, zlib
draws, work = sys.argv[1], sys.argv[2]
src = '/usr/share/datasets/fashion-mnist'
images = gzip.open(f'{src}/train-images-idx3-ubyte.gz').read()[16:]
labels = gzip.open(f'{src}/train-labels-idx1-ubyte.gz').read()[8:]
def png(pixels):  # 28x28 8-bit grey PNG
    raw = b''.join(b'\x00' + pixels[r * 28:(r + 1) * 28] for r in range(28))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
for n in (10, 50, 200):
    for row in csv.DictReader(open(draws)):
        if row['draw'] == '0' and int(row['rank']) < n:
            i = int(row['index'])
            folder = f'{work}/d0-{n}/{labels[i]}'
            os.makedirs(folder, exist_ok=True)
            open(f'{folder}/{i:05d}.png', 'wb').write(png(images[i * 784:(i + 1) * 784]))
PY
for n in 10 50 200; do
  cache=$(mktemp -d "$work/cache-XXXX")
  /usr/bin/time -f "$n per class: user %U s, system %S s, wall %e s" env PRETRAINEDKIT_CACHE_DIR="$cache" \
    dotnet "$root/src/PretrainedKit.Cli/bin/Release/net10.0/PretrainedKit.Cli.dll" train "$work/d0-$n" --model "$work/m-$n.pkmodel" --seed 1 --quiet
done
lscpu | grep -E 'Model name|Flags' | cut -c1-200

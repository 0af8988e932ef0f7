"""Writes draw 0 of bench/results/fashion-draws.csv as class folders of 28x28 grey PNGs, one folder per size:
WORK/d0-N/<label>/<index>.png. Reads Debian's dataset-fashion-mnist; no third-party modules.
    /usr/bin/python3 bench/peers/fashion_folders.py DRAWS_CSV WORK [SIZES, default 10,50,200]"""
import csv, gzip, os, struct, sys, zlib

draws, work = sys.argv[1], sys.argv[2]
sizes = [int(s) for s in (sys.argv[3] if len(sys.argv) > 3 else '10,50,200').split(',')]
src = '/usr/share/datasets/fashion-mnist'
images = gzip.open(f'{src}/train-images-idx3-ubyte.gz').read()[16:]
labels = gzip.open(f'{src}/train-labels-idx1-ubyte.gz').read()[8:]


def png(pixels):  # 28x28 8-bit grey PNG
    raw = b''.join(b'\x00' + pixels[r * 28:(r + 1) * 28] for r in range(28))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 28, 28, 8, 0, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')


for n in sizes:
    for row in csv.DictReader(open(draws)):
        if row['draw'] == '0' and int(row['rank']) < n:
            i = int(row['index'])
            folder = f'{work}/d0-{n}/{labels[i]}'
            os.makedirs(folder, exist_ok=True)
            open(f'{folder}/{i:05d}.png', 'wb').write(png(images[i * 784:(i + 1) * 784]))

#!/usr/bin/env python3
"""Builds the bundled Fashion-MNIST subset used by PretrainedKit's tests, samples and README.

Source: Debian's `dataset-fashion-mnist` package (apt-get install dataset-fashion-mnist),
which installs the original IDX files in /usr/share/datasets/fashion-mnist/.
Fashion-MNIST is (c) Zalando SE, MIT licence (see LICENSE in this folder).

The subset is deterministic: the first N images of each class in file order, N per class from
the training file (into train/) and N per class from the test file (into test/).
Usage: python3 make_subset.py [--per-class 20] [--source DIR] [--out DIR]
"""
import argparse
import gzip
import os
import struct
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png_gray(width, height, pixels):
    """Encodes 8-bit grayscale pixels as a PNG without third-party libraries."""
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def export(images_file, labels_file, out_dir, per_class):
    (count, rows, cols), pixels = read_idx(images_file)
    (_,), labels = read_idx(labels_file)
    taken = [0] * len(CLASSES)
    size = rows * cols
    for i in range(count):
        label = labels[i]
        if taken[label] >= per_class:
            continue
        folder = os.path.join(out_dir, CLASSES[label])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
            f.write(png_gray(cols, rows, pixels[i * size:(i + 1) * size]))
        taken[label] += 1
        if min(taken) >= per_class:
            break


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.source, "train-images-idx3-ubyte.gz")):
        raise SystemExit(f"Fashion-MNIST not found in {args.source}: run 'sudo apt-get install dataset-fashion-mnist'.")
    export(os.path.join(args.source, "train-images-idx3-ubyte.gz"), os.path.join(args.source, "train-labels-idx1-ubyte.gz"),
           os.path.join(args.out, "train"), args.per_class)
    export(os.path.join(args.source, "t10k-images-idx3-ubyte.gz"), os.path.join(args.source, "t10k-labels-idx1-ubyte.gz"),
           os.path.join(args.out, "test"), args.per_class)


if __name__ == "__main__":
    main()

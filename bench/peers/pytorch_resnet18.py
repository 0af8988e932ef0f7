#!/usr/bin/env python3
"""Measures the PyTorch peer on this machine: torchvision ResNet18, TorchScript frozen, FP32, CPU.

Install once with `sudo apt-get install python3-torch python3-torchvision` (Debian). The weights are random
(nothing is downloaded): throughput and latency do not depend on the values of the weights.

It prints a table and writes JSON (default bench/peers/pytorch-results.json) with images/s at batch 1 and 32 on
pre-made tensors, p50 batch-1 latency, and end-to-end images/s from files (PIL decode + resize + normalise + model).
Usage: python3 bench/peers/pytorch_resnet18.py [--images DIR] [--count 200] [--threads N] [--json FILE]
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torchvision
except ImportError:
    sys.exit("PyTorch is not installed: run 'sudo apt-get install python3-torch python3-torchvision' and try again.")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="folder of images for the end-to-end measurement (default: assets/fashion-mnist)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch-results.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()  # 512-d features, like the ONNX backbone
    model.eval()
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.script(model))
        x1 = torch.randn(1, 3, 224, 224)
        for _ in range(5):
            frozen(x1)
        latencies = []
        start = time.perf_counter()
        for _ in range(args.count):
            t = time.perf_counter()
            frozen(x1)
            latencies.append((time.perf_counter() - t) * 1000)
        batch1 = args.count / (time.perf_counter() - start)
        x32 = torch.randn(32, 3, 224, 224)
        frozen(x32)
        runs = max(1, args.count // 32)
        start = time.perf_counter()
        for _ in range(runs):
            frozen(x32)
        batch32 = runs * 32 / (time.perf_counter() - start)

        end_to_end = None
        root = args.images or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "assets", "fashion-mnist")
        files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True) if f.lower().endswith((".png", ".jpg", ".jpeg")))[: args.count]
        if files:
            from PIL import Image
            import numpy as np
            mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
            std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
            start = time.perf_counter()
            for f in files:
                img = Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR)
                a = (np.asarray(img, dtype=np.float32) / 255 - mean) / std
                frozen(torch.from_numpy(a.transpose(2, 0, 1)).unsqueeze(0))
            end_to_end = len(files) / (time.perf_counter() - start)

    results = {
        "torchVersion": torch.__version__,
        "threads": args.threads,
        "batch1ImagesPerSecond": round(batch1, 2),
        "batch32ImagesPerSecond": round(batch32, 2),
        "latencyMsP50": round(statistics.median(latencies), 2),
        "endToEndImagesPerSecond": round(end_to_end, 2) if end_to_end else None,
    }
    print(f"| PyTorch {torch.__version__} ResNet18 (TorchScript frozen, {args.threads} threads) | value |")
    print("|---|---|")
    for k, v in results.items():
        print(f"| {k} | {v} |")
    with open(args.json, "w") as out:
        json.dump(results, out, indent=2)
    print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch int8 peer (issue #18): ResNet18 (torchvision's architecture, built here because Debian has no
python3-torchvision; random weights, nothing is downloaded: speed does not depend on the weights' values), FP32 eager
and FX static post-training quantisation (per-channel weights, min/max observers, the quantised engine's default
QConfigMapping), on the CPU.

Measures images/s at batch 1 and batch 8 on pre-made tensors, and end to end from image files at batch 1 (PIL decode +
resize to 224 + normalise + model), for FP32 and int8, in one process. Run it with Debian's /usr/bin/python3:

    /usr/bin/python3 bench/peers/pytorch_int8_resnet18.py [--images DIR] [--count 200] [--threads 2] [--engine onednn] [--json FILE]
"""
import argparse
import glob
import json
import os
import platform
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
    from PIL import Image
except ImportError:
    sys.exit("PyTorch, NumPy or Pillow is missing: run 'sudo apt-get install python3-torch python3-numpy python3-pil' and use /usr/bin/python3.")


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ResNet18Features(nn.Module):
    """torchvision.models.resnet18 without its final fully connected layer: 512 pooled features."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, inplanes = [], 64
        for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers.append(nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def images_per_second(model, batch, count):
    x = torch.randn(batch, 3, 224, 224)
    for _ in range(3):
        model(x)
    runs = max(1, count // batch)
    start = time.perf_counter()
    for _ in range(runs):
        model(x)
    return runs * batch / (time.perf_counter() - start)


def end_to_end(model, files):
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    start = time.perf_counter()
    for f in files:
        img = Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR)
        a = (np.asarray(img, dtype=np.float32) / 255 - mean) / std
        model(torch.from_numpy(a.transpose(2, 0, 1).copy()).unsqueeze(0))
    return len(files) / (time.perf_counter() - start)


def cpu_line():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), platform.processor())
        flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
        return model, [x for x in flags if x in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")]
    except OSError:
        return platform.processor(), []


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="image folder for calibration and the end-to-end measurement (default: assets/fashion-mnist)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="onednn", help="torch.backends.quantized.engine: onednn, fbgemm or qnnpack")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch-int8-results.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.engine not in torch.backends.quantized.supported_engines:
        sys.exit(f"The quantised engine '{args.engine}' is not in this PyTorch ({torch.backends.quantized.supported_engines}).")
    torch.backends.quantized.engine = args.engine

    root = args.images or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "assets", "fashion-mnist")
    files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True) if f.lower().endswith((".png", ".jpg", ".jpeg")))[: args.count]
    if not files:
        sys.exit(f"No images in {root}: pass --images DIR.")

    model = ResNet18Features().eval()
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    example = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        prepared = prepare_fx(model, get_default_qconfig_mapping(args.engine), example_inputs=(example,))
        mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
        std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
        for f in files[:100]:  # Calibration: the observers see real images.
            img = Image.open(f).convert("RGB").resize((224, 224), Image.BILINEAR)
            prepared(torch.from_numpy(((np.asarray(img, dtype=np.float32) / 255 - mean) / std).transpose(2, 0, 1).copy()).unsqueeze(0))
        quantized = convert_fx(prepared)
        cosine = torch.nn.functional.cosine_similarity(model(example), quantized(example)).item()

        results = {"torchVersion": torch.__version__, "engine": args.engine, "threads": args.threads, "weights": "random (speed only)"}
        for name, m in [("fp32", model), ("int8", quantized)]:
            results[f"{name}Batch1ImagesPerSecond"] = round(images_per_second(m, 1, args.count), 2)
            results[f"{name}Batch8ImagesPerSecond"] = round(images_per_second(m, 8, args.count), 2)
            results[f"{name}EndToEndImagesPerSecond"] = round(end_to_end(m, files), 2)
        results["int8VsFp32CosineOnRandomInput"] = round(cosine, 4)
        cpu, flags = cpu_line()
        results["cpu"] = cpu
        results["cpuFlags"] = flags
        results["images"] = len(files)
        results["dateUtc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    for key, value in results.items():
        print(f"{key:34} {value}")
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()

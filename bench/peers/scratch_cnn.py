#!/usr/bin/env python3
"""From-scratch peer for the pretraining evidence (issue #14): a small ResNet-style CNN trained from random weights.

Fashion-MNIST on the same draws as bench/PretrainedKit.Experiments (bench/results/fashion-draws.csv, written by
`dotnet run -c Release --project bench/PretrainedKit.Experiments -- --draws 5 --sizes 10,50,200 --write-draws FILE`),
accuracy on the official 10,000 t10k test images. Nothing is downloaded: Debian's python3-torch (1.13) and
dataset-fashion-mnist (the four IDX .gz files in /usr/share/datasets/fashion-mnist).

Per (images per class n, draw d):
  * the draw is the rows of the draws CSV with draw = d and rank < n (n per class);
  * validation for early stopping: per class the last max(1, round(0.2 n)) of those ranks (the CSV order is already a
    seeded shuffle), so 8/2, 40/10, 160/40 train/validation images per class; the CNN trains on the rest only;
  * model: ResNet-20-style, 28x28x1 input, 3x3 stem (16 ch), 3 stages of 3 basic residual blocks with 16/32/64
    channels (stride 2 at stages 2 and 3, 1x1 conv + BN projection shortcuts), BatchNorm, global average pool,
    linear 64 -> 10; 272,186 parameters; random initialisation seeded with 1000 * n + d;
  * input: pixels / 255 standardised with the mean and sd of the training part of the draw;
  * augmentation: random crop 28x28 from the image zero-padded by 3 pixels, random horizontal flip (p = 0.5);
  * AdamW (lr 3e-3, weight decay 5e-2, betas 0.9/0.999), equal batches of at most 64 per epoch (80 training images:
    2 x 40; 400: 7 of at most 58; 1600: 25 x 64), label smoothing 0.1,
    one-cycle-like schedule: linear warm-up over the first 5% of the step budget, then cosine decay to 0 at the
    budget's end (the budget = min(MAX_EPOCHS epochs, MAX_STEPS steps));
  * early stopping: validation accuracy after every epoch (ties broken by lower validation loss), patience
    PATIENCE epochs, the best epoch's weights are restored before testing;
  * caps (CPU time): MAX_EPOCHS = 200 and MAX_STEPS = 600 optimiser steps per run, so at most 200 epochs at 10 per
    class, 85 at 50 and 24 at 200 (measured on a shared 2-CPU AMD EPYC: about 0.4 s CPU per step of 64 images, so
    the 200-per-class runs take about 4 minutes of CPU each, test inference about 20 s).

CPU time is time.process_time() (all threads of this process), wall time is time.perf_counter(); both for training
(including the per-epoch validation) and for test inference (10,000 images, batch 500). torch.set_num_threads(2).

Writes (appends with --append) one row per run to bench/results/scratch-cnn.csv and rewrites the JSON summary
bench/results/scratch-cnn.json from every row of the CSV.

Usage: /usr/bin/python3 bench/peers/scratch_cnn.py [--data DIR] [--draws-csv FILE] [--sizes 10,50,200]
       [--draw-ids 0,1,2,3,4] [--out-csv FILE] [--out-json FILE] [--append] [--threads 2]
"""
import argparse
import csv
import datetime
import gzip
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import numpy as np

# OpenMP threads that spin while waiting for each other burn CPU time on a shared machine (measured here: 2.85 s CPU
# per training step with the default policy against 0.31 s with PASSIVE, under load). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.exit("PyTorch is not installed: run 'sudo apt-get install python3-torch' and use Debian's /usr/bin/python3.")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

MAX_EPOCHS = 200
MAX_STEPS = 600
PATIENCE = 20
VALIDATION_FRACTION = 0.2
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 5e-2
WARMUP_FRACTION = 0.05
LABEL_SMOOTHING = 0.1
PAD = 3
TEST_BATCH = 500


def read_idx(images_path, labels_path):
    with gzip.open(images_path, "rb") as f:
        data = f.read()
    magic, count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise ValueError(f"{images_path}: not an IDX image file (magic {magic})")
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)
    with gzip.open(labels_path, "rb") as f:
        data = f.read()
    magic, label_count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic != 2049 or label_count != count:
        raise ValueError(f"{labels_path}: not the IDX label file for {images_path}")
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    return images, labels


def read_draws(path):
    """{draw: {class: [index by rank]}}"""
    draws = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            d, c, rank, index = int(row["draw"]), int(row["class"]), int(row["rank"]), int(row["index"])
            ranks = draws.setdefault(d, {}).setdefault(c, {})
            ranks[rank] = index
    return {d: {c: [ranks[r] for r in sorted(ranks)] for c, ranks in classes.items()} for d, classes in draws.items()}


class Block(nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, widths=(16, 32, 64), blocks=3, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, inputs = [], widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks):
                layers.append(Block(inputs, width, 2 if stage > 0 and b == 0 else 1))
                inputs = width
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(inputs, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, Block):
                nn.init.zeros_(m.bn2.weight)  # each residual block starts as the identity

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(x, generator):
    """Random 28x28 crop of the zero-padded batch (pad PAD) and random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))  # zeros after standardisation would not be the background: pad raw
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w)[None, :])  # n x w
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def evaluate(model, x, y, mean, sd, batch=TEST_BATCH):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model((x[i:i + batch] - mean) / sd)
            loss += F.cross_entropy(logits, y[i:i + batch], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x), loss / len(x)


def run(per_class, draw, draws, train_images, train_labels, test_x, test_y):
    seed = 1000 * per_class + draw
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n_val = max(1, round(VALIDATION_FRACTION * per_class))
    train_idx, val_idx = [], []
    for c in range(10):
        ranks = draws[draw][c][:per_class]
        if len(ranks) < per_class:
            raise ValueError(f"draw {draw} class {c} has {len(ranks)} ranks, fewer than {per_class}")
        train_idx += ranks[:per_class - n_val]
        val_idx += ranks[per_class - n_val:]
    x_train = torch.from_numpy(train_images[train_idx].astype(np.float32) / 255.0).unsqueeze(1)
    y_train = torch.from_numpy(train_labels[train_idx].astype(np.int64))
    x_val = torch.from_numpy(train_images[val_idx].astype(np.float32) / 255.0).unsqueeze(1)
    y_val = torch.from_numpy(train_labels[val_idx].astype(np.int64))
    assert all(int((y_train == c).sum()) == per_class - n_val for c in range(10))
    mean, sd = x_train.mean().item(), x_train.std().item()

    model = SmallResNet()
    parameters = sum(p.numel() for p in model.parameters())
    optimiser = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = math.ceil(len(train_idx) / BATCH)
    batch = math.ceil(len(train_idx) / steps_per_epoch)  # equal batches of at most BATCH: 80 -> 2 x 40, 400 -> 7 of at most 58
    budget = min(MAX_EPOCHS * steps_per_epoch, MAX_STEPS)
    warmup = max(1, round(WARMUP_FRACTION * budget))

    def lr_at(step):
        if step < warmup:
            return LR * (step + 1) / warmup
        return LR * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, budget - warmup)))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    best = (-1.0, float("inf"))
    best_state, best_epoch, epoch, step, stale, stopped_by = None, 0, 0, 0, 0, None
    while stopped_by is None:
        model.train()
        order = torch.randperm(len(train_idx), generator=generator)
        for i in range(0, len(order), batch):
            if step >= budget:
                break
            take = order[i:i + batch]
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step)
            x = (augment(x_train[take], generator) - mean) / sd
            loss = F.cross_entropy(model(x), y_train[take], label_smoothing=LABEL_SMOOTHING)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
        epoch += 1
        val_acc, val_loss = evaluate(model, x_val, y_val, mean, sd)
        if (val_acc, -val_loss) > (best[0], -best[1]):
            best, best_epoch, stale = (val_acc, val_loss), epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if stale >= PATIENCE:
            stopped_by = "patience"
        elif epoch >= MAX_EPOCHS:
            stopped_by = "max_epochs"
        elif step >= budget:
            stopped_by = "max_steps"
    model.load_state_dict(best_state)
    train_cpu, train_wall = time.process_time() - cpu0, time.perf_counter() - wall0

    cpu0, wall0 = time.process_time(), time.perf_counter()
    test_acc, test_loss = evaluate(model, test_x, test_y, mean, sd)
    test_cpu, test_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "per_class": per_class, "draw": draw, "train_images": len(train_idx), "validation_images": len(val_idx),
        "test_images": len(test_y), "test_accuracy": round(test_acc, 4), "test_loss": round(test_loss, 4),
        "best_validation_accuracy": round(best[0], 4), "epochs_run": epoch, "best_epoch": best_epoch,
        "optimiser_steps": step, "step_budget": budget, "stopped_by": stopped_by, "parameters": parameters,
        "train_cpu_s": round(train_cpu, 2), "train_wall_s": round(train_wall, 2),
        "test_cpu_s": round(test_cpu, 2), "test_wall_s": round(test_wall, 2), "threads": torch.get_num_threads(),
    }


FIELDS = ["per_class", "draw", "train_images", "validation_images", "test_images", "test_accuracy", "test_loss",
          "best_validation_accuracy", "epochs_run", "best_epoch", "optimiser_steps", "step_budget", "stopped_by",
          "parameters", "train_cpu_s", "train_wall_s", "test_cpu_s", "test_wall_s", "threads"]


def cpu_info():
    model, flags = platform.processor(), []
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"^model name\s*:\s*(.*)$", text, re.M).group(1).strip()
        present = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
        flags = [f for f in ("avx", "fma", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in present]
    except (OSError, AttributeError):
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        match = re.search(r"^Model name:\s*(.*)$", lscpu, re.M)
        if match:
            model = match.group(1).strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return model, flags


def cpu_capability():
    match = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    return match.group(1) if match else None


def summarise(csv_path, json_path, threads):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    sizes = sorted({int(r["per_class"]) for r in rows})
    summary = []
    for n in sizes:
        group = [r for r in rows if int(r["per_class"]) == n]
        acc = [float(r["test_accuracy"]) for r in group]
        mean = lambda key: round(statistics.fmean(float(r[key]) for r in group), 2)
        summary.append({
            "per_class": n, "runs": len(group), "draws": sorted(int(r["draw"]) for r in group),
            "accuracy_mean": round(statistics.fmean(acc), 4),
            "accuracy_sd": round(statistics.stdev(acc), 4) if len(acc) > 1 else None,
            "train_cpu_s_mean": mean("train_cpu_s"), "train_wall_s_mean": mean("train_wall_s"),
            "test_cpu_s_mean": mean("test_cpu_s"), "test_wall_s_mean": mean("test_wall_s"),
            "epochs_mean": mean("epochs_run"), "best_epoch_mean": mean("best_epoch"),
            "stopped_by": {s: sum(r["stopped_by"] == s for r in group) for s in sorted({r["stopped_by"] for r in group})},
        })
    model, flags = cpu_info()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": model, "cpu_flags": flags, "logical_cpus": os.cpu_count(),
        "torch_version": torch.__version__, "torch_cpu_capability": cpu_capability(),
        "python": platform.python_version(), "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "note": "The machine (2 logical CPUs) was shared with other sessions building .NET at the same time: wall times "
                "are inflated and noisy; CPU times (time.process_time, all threads of the process) are the better "
                "measure but still include some contention effects.",
        "model": "ResNet-20-style: 3x3 stem 16 ch, 3 stages x 3 basic blocks (16/32/64 ch), BatchNorm, GAP, linear",
        "parameters": int(rows[0]["parameters"]) if rows else None,
        "recipe": {"validation": "per class the last max(1, round(0.2 n)) ranks of the draw", "optimiser": "AdamW",
                   "lr": LR, "weight_decay": WEIGHT_DECAY, "label_smoothing": LABEL_SMOOTHING,
                   "schedule": "linear warm-up 5% of the step budget, cosine to 0 at the budget's end",
                   "augmentation": f"random crop 28x28 from zero padding {PAD}, horizontal flip p=0.5",
                   "batch": "equal batches of at most 64 per epoch",
                   "early_stopping": f"validation accuracy (ties: lower loss) each epoch, patience {PATIENCE}, best weights restored",
                   "max_epochs": MAX_EPOCHS, "max_steps": MAX_STEPS},
        "summary": summary,
    }
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--draws-csv", default=os.path.join(ROOT, "bench", "results", "fashion-draws.csv"))
    parser.add_argument("--sizes", default="10,50,200")
    parser.add_argument("--draw-ids", default="0,1,2,3,4")
    parser.add_argument("--out-csv", default=os.path.join(ROOT, "bench", "results", "scratch-cnn.csv"))
    parser.add_argument("--out-json", default=os.path.join(ROOT, "bench", "results", "scratch-cnn.json"))
    parser.add_argument("--append", action="store_true", help="append rows to --out-csv instead of rewriting it")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    globals()["MAX_STEPS"] = args.max_steps
    torch.set_num_threads(args.threads)

    if not os.path.exists(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")):
        sys.exit(f"Fashion-MNIST was not found in {args.data}: 'sudo apt-get install dataset-fashion-mnist' or --data DIR.")
    train_images, train_labels = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"),
                                          os.path.join(args.data, "train-labels-idx1-ubyte.gz"))
    test_images, test_labels = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"),
                                        os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"))
    draws = read_draws(args.draws_csv)
    for d, classes in draws.items():  # the CSV's class column must agree with the official labels
        for c, indices in classes.items():
            if any(train_labels[i] != c for i in indices):
                sys.exit(f"{args.draws_csv}: draw {d} class {c} lists images of another class")
    test_x = torch.from_numpy(test_images.astype(np.float32) / 255.0).unsqueeze(1)
    test_y = torch.from_numpy(test_labels.astype(np.int64))

    sizes = [int(s) for s in args.sizes.split(",")]
    draw_ids = [int(s) for s in args.draw_ids.split(",")]
    mode = "a" if args.append and os.path.exists(args.out_csv) else "w"
    with open(args.out_csv, mode, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if mode == "w":
            writer.writeheader()
        for n in sizes:
            for d in draw_ids:
                row = run(n, d, draws, train_images, train_labels, test_x, test_y)
                writer.writerow(row)
                f.flush()
                print(f"n={n:>3} draw={d} acc={row['test_accuracy']:.4f} epochs={row['epochs_run']} "
                      f"(best {row['best_epoch']}, {row['stopped_by']}) steps={row['optimiser_steps']} "
                      f"train {row['train_cpu_s']:.1f} s CPU / {row['train_wall_s']:.1f} s wall, "
                      f"test {row['test_cpu_s']:.1f} s CPU", flush=True)
    result = summarise(args.out_csv, args.out_json, args.threads)
    print(f"{result['parameters']} parameters; torch {result['torch_version']}; {result['cpu_model']}")
    for s in result["summary"]:
        sd = f"{s['accuracy_sd']:.3f}" if s["accuracy_sd"] is not None else "n/a"
        print(f"n={s['per_class']:>3}: {s['accuracy_mean']:.3f} ± {sd} over {s['runs']} draws, "
              f"train {s['train_cpu_s_mean']:.1f} s CPU, {s['epochs_mean']:.1f} epochs, test {s['test_cpu_s_mean']:.1f} s CPU")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Times the Python peers on the workloads of `node benches/run.js peers` (optional; not in CI).

Run from the repository root, in an environment with scripts/requirements-peers.txt:
    python scripts/bench_peers.py [--srg-path PATH] [--threads 1,2] [--repeats 5]
then `node benches/run.js peers` times xai-eval on the same workloads and writes the ratios.

Workloads (same models and inputs as xai-eval: the demo ONNX converted to torch with onnx2torch,
the ResNet-18 from the weights make_resnet18.py saved next to its ONNX export):
  small CNN (data/demo, 1x28x28, 64 samples, integrated-gradients attributions):
    quantus 0.6 PixelFlipping, features_in_step 28, perturb_baseline 0.0, softmax, batch_size 64
    Quantus PR #374 SymmetricRelevanceGain, features_in_step 28, baseline 0.0 (its torch fast path)
    quantus 0.6 ROAD, 16 samples, the paper's percentages 10..90 (step 10), noise 0.01
  ResNet-18-sized model (benches/models/resnet18.onnx from scripts/make_resnet18.py, 2 images of
  3x224x224 with seeded random pixels and attributions):
    pytorch-grad-cam ROADMostRelevantFirst at percentiles 10..90 (9 removals per image)
PR #374 is not released: fetch its file yourself (e.g. `git fetch <Quantus remote> pull/374/head`,
then quantus/metrics/faithfulness/symmetric_relevance_gain.py) and pass --srg-path; without it that
workload is skipped. Each workload runs once as a warm-up, then `--repeats` times; the median and
the quartiles of the wall times go to benches/results/peers.json with the package versions.
torch.set_num_threads sets the threads (1 and 2 by default), like xai-eval's pool of one session.
"""
import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np
import onnx
import torch
from onnx2torch import convert

DEMO = os.path.join("data", "demo")
RESNET = os.path.join("benches", "models", "resnet18.onnx")
OUT = os.path.join("benches", "results", "peers.json")


def demo(n):
    shape = (64, 1, 28, 28)
    x = np.fromfile(os.path.join(DEMO, "x.bin"), dtype="<f4").reshape(shape)[:n]
    y = np.fromfile(os.path.join(DEMO, "y.bin"), dtype="<i4")[:n].astype(np.int64)
    a = np.fromfile(os.path.join(DEMO, "attr-integrated-gradients.bin"), dtype="<f4").reshape(shape)[:n]
    return x, y, a


def mulberry32(seed, length):
    """benches/common.js's randomArray: the same pixels and attributions as the node side."""
    out = np.empty(length, dtype=np.float32)
    s = seed & 0xFFFFFFFF
    for i in range(length):
        s = (s + 0x6D2B79F5) & 0xFFFFFFFF
        t = s
        t = ((t ^ (t >> 15)) * (1 | t)) & 0xFFFFFFFF
        t = (t + (((t ^ (t >> 7)) * (61 | t)) & 0xFFFFFFFF)) & 0xFFFFFFFF ^ t
        out[i] = ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296
    return out * 2 - 1


def resnet_inputs(n):
    x = ((mulberry32(1, n * 3 * 224 * 224) + 1) / 2).reshape(n, 3, 224, 224)
    a = mulberry32(2, n * 224 * 224).reshape(n, 1, 224, 224)
    return x, np.zeros(n, dtype=np.int64), a


def torch_model(path):
    return convert(onnx.load(path)).eval()


def timed(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    q = np.percentile(times, [25, 50, 75])
    return {"ms": float(q[1]), "q1": float(q[0]), "q3": float(q[2]), "runs": len(times)}


def workloads(srg_path):
    import quantus

    small = torch_model(os.path.join(DEMO, "model.onnx"))
    x, y, a = demo(64)
    common = dict(normalise=False, disable_warnings=True, display_progressbar=False)
    out = {
        "quantus PixelFlipping (small CNN, N 64, featuresInStep 28)": lambda: quantus.PixelFlipping(
            features_in_step=28, perturb_baseline=0.0, **common
        )(model=small, x_batch=x, y_batch=y, a_batch=a, softmax=True, batch_size=64, device="cpu"),
    }
    if srg_path:
        spec = importlib.util.spec_from_file_location("pr374_srg", srg_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out["Quantus PR #374 SRG (small CNN, N 64, featuresInStep 28)"] = lambda: module.SymmetricRelevanceGain(
            features_in_step=28, perturb_baseline=0.0, **common
        )(model=small, x_batch=x, y_batch=y, a_batch=a, softmax=True, batch_size=64, device="cpu")
    xr, yr, ar = x[:16], y[:16], a[:16]
    out["quantus ROAD (small CNN, N 16, 10..90 %)"] = lambda: quantus.ROAD(
        percentages=list(range(10, 100, 10)), noise=0.01, **common
    )(model=small, x_batch=xr, y_batch=yr, a_batch=ar, softmax=True, batch_size=64, device="cpu")
    if os.path.exists(RESNET):
        from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

        # The exporter writes opset 18, which onnx2torch 1.5 does not read: the same architecture and
        # weights come from make_resnet18.py and its resnet18.pt instead.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from make_resnet18 import ResNet18

        big = ResNet18().eval()
        big.load_state_dict(torch.load(RESNET.replace(".onnx", ".pt")))
        xb, yb, ab = resnet_inputs(2)
        xt = torch.from_numpy(xb)
        cams = ab[:, 0]
        targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in yb]

        def gradcam_road():
            for p in range(10, 100, 10):
                ROADMostRelevantFirst(percentile=p)(xt, cams, targets, big)

        out["pytorch-grad-cam ROAD MoRF (ResNet-18, N 2, 10..90 %)"] = gradcam_road
    else:
        print(f"{RESNET} missing (python scripts/make_resnet18.py): ResNet-18 skipped", file=sys.stderr)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srg-path", help="Quantus PR #374's symmetric_relevance_gain.py")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import quantus
    import pytorch_grad_cam

    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, fn in workloads(args.srg_path).items():
            r = {"workload": name, "threads": threads, **timed(fn, args.repeats)}
            results.append(r)
            print(f"  {threads} thread(s) | {name}: {r['ms']:.0f} ms ({r['q1']:.0f}-{r['q3']:.0f})", flush=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "quantus": quantus.__version__ if hasattr(quantus, "__version__") else "0.6.0",
        "grad-cam": getattr(pytorch_grad_cam, "__version__", "1.5.7"),
        "srg": args.srg_path and "Quantus PR #374",
    }
    with open(OUT, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "versions": versions, "results": results}, f, indent=2)
    print("wrote", OUT)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Quantus 0.6.0 parity fixtures for PixelFlipping and the SRG-equivalent construction.

Run from the repository root:  python3 scripts/make_quantus_fixture.py
Writes into __test__/fixtures/quantus/:
  pf-gray.onnx / pf-gray.json   tiny seeded random CNN, 8 samples x [1,28,28], 4 classes, a: [8,1,28,28]
  pf-rgb.onnx  / pf-rgb.json    tiny seeded random CNN, 8 samples x [3,9,9],   3 classes, a: [8,1,9,9]
ONNX: input "input" [batch,C,H,W] float32 (dynamic batch), output "logits" (raw logits; Quantus applies
softmax itself because the metrics are called with softmax=True), opset 17, single file.

JSON layout:
  { provenance: {tool, version, script, torch, numpy, python, onnxruntime},
    shape: [N,C,H,W], aShape: [N,1,H,W], x: [flat row-major floats], a: [flat floats], y: [ints],
    runs: [ {metric: "PixelFlipping", params: {...}, curves: [[T floats] x N], auc: [N floats]},
            {metric: "SRG-equivalent", params: {...}, mif: [[..]], lif: [[..]], srg: [N floats]} ] }
All floats are float32 values written as Python floats (exact). x, a are float32.

What is run (quantus==0.6.0, see /work/shared/specs/quantus-semantics.md sections 0, 1.1, 3):
  quantus.PixelFlipping(features_in_step=fis, perturb_baseline=b, disable_warnings=True,
                        return_auc_per_sample=False|True)(model, x, y, a,
                        softmax=True, channel_first=True)          # batch_size default 64
  for b in ("black", 0.0); fis in (28,) for gray and (3, 9) for rgb.
  curves[n][k] = softmax(f(x~_k))[n, y_n] after the (k+1)-th cumulative flip (no unperturbed point);
  auc = np.trapz(curve, dx=1) (float32).
  SRG-equivalent (PR #374 is not in 0.6.0): mif = PixelFlipping(perturb_baseline=0.0) curves with a,
  lif = same with -a, srg[n] = mean_k(lif[n][k] - mif[n][k]) (float64 over the float32 curve values);
  fis = 28 (gray), 3 (rgb).
Self-checks: ONNX (onnxruntime) logits vs torch; an independent numpy re-implementation of
PixelFlipping driven by the ONNX model must reproduce Quantus's curves to 1e-5.

Needs (pip): quantus==0.6.0, torch (2.15.0 used), numpy<2.4 (2.3.5 used; Quantus 0.6.0 calls np.trapz,
which NumPy 2.4 removed), onnx (1.23.2), onnxruntime (1.32.0). See scripts/requirements.txt.
"""
import json
import os
import platform
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

SEED = 1234
OUT_DIR = os.path.join("__test__", "fixtures", "quantus")
N = 8


class GrayNet(nn.Module):
    def __init__(self, n_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 4x14x14
            nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 8x7x7
        )
        self.fc = nn.Linear(8 * 7 * 7, n_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class RgbNet(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
            nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(6 * 9 * 9, n_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def make_model(cls, n_classes, seed, fc_scale):
    torch.manual_seed(seed)
    m = cls(n_classes)
    with torch.no_grad():  # spread the logits so that softmax outputs are not all ~1/K
        m.fc.weight.mul_(fc_scale)
    return m.eval()


def export_onnx(model, shape, path):
    dummy = torch.zeros(2, *shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), path, dynamo=False, input_names=["input"],
                          output_names=["logits"], opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    import onnx

    onnx.checker.check_model(onnx.load(path))


def onnx_logits(path, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def reference_pixel_flipping(logits_fn, x, y, a, fis, baseline):
    """Independent re-implementation of spec section 1.1 (float32 throughout, like Quantus)."""
    n = x.shape[0]
    xf = x.reshape(n, -1).copy()
    af = np.broadcast_to(a, x.shape).reshape(n, -1)
    order = np.argsort(-af, axis=1, kind="stable")  # tie-free up to channel copies kept in one step
    steps = -(-xf.shape[1] // fis)
    curves = np.empty((n, steps), dtype=np.float32)
    for k in range(steps):
        idx = order[:, k * fis:(k + 1) * fis]
        for i in range(n):
            b = xf[i].min() if baseline == "black" else np.float32(baseline)
            xf[i, idx[i]] = b
        z = logits_fn(xf.reshape(x.shape)).astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        curves[:, k] = p[np.arange(n), y]
    return curves


def run_case(name, model, x, y, a, pf_steps, srg_step):
    import quantus

    onnx_path = os.path.join(OUT_DIR, f"{name}.onnx")
    export_onnx(model, x.shape, onnx_path)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = onnx_logits(onnx_path, x)
    err = float(np.abs(got - ref).max())
    print(f"[{name}] onnxruntime vs torch max |logit diff| = {err:.3g} (logit range {ref.min():.3f}..{ref.max():.3f})")
    assert err < 1e-5, err

    def pf(fis, baseline, attr, auc):
        metric = quantus.PixelFlipping(features_in_step=fis, perturb_baseline=baseline,
                                       return_auc_per_sample=auc, disable_warnings=True)
        out = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=attr.copy(),
                     softmax=True, channel_first=True)
        return [[float(v) for v in row] for row in out] if not auc else [float(v) for v in out]

    runs = []
    for fis in pf_steps:
        for baseline in ("black", 0.0):
            curves = pf(fis, baseline, a, False)
            auc = pf(fis, baseline, a, True)
            mine = reference_pixel_flipping(lambda z: onnx_logits(onnx_path, z), x, y, a, fis, baseline)
            d = float(np.abs(mine - np.asarray(curves)).max())
            d_auc = float(np.abs(np.trapezoid(np.asarray(curves, dtype=np.float32), dx=1, axis=1) - np.asarray(auc)).max())
            print(f"[{name}] PixelFlipping fis={fis} baseline={baseline!r}: T={len(curves[0])}, "
                  f"reimpl(onnx) diff {d:.2g}, trapz diff {d_auc:.2g}, auc[0]={auc[0]:.6f}")
            assert d < 1e-5 and d_auc < 1e-5, (d, d_auc)
            runs.append({
                "metric": "PixelFlipping",
                "params": {"features_in_step": fis, "perturb_baseline": baseline, "softmax": True,
                           "channel_first": True, "normalise": True, "abs": False, "batch_size": 64},
                "curves": curves,
                "auc": auc,
            })

    mif = pf(srg_step, 0.0, a, False)
    lif = pf(srg_step, 0.0, -a, False)
    srg = (np.asarray(lif, dtype=np.float64) - np.asarray(mif, dtype=np.float64)).mean(axis=1)
    print(f"[{name}] SRG-equivalent fis={srg_step}: srg = {np.round(srg, 5).tolist()}")
    runs.append({
        "metric": "SRG-equivalent",
        "params": {"features_in_step": srg_step, "perturb_baseline": 0.0, "softmax": True,
                   "channel_first": True, "normalise": True, "abs": False, "batch_size": 64,
                   "construction": "mif = PixelFlipping(a) curves, lif = PixelFlipping(-a) curves, "
                                   "srg = mean_k(lif - mif) in float64"},
        "mif": mif,
        "lif": lif,
        "srg": [float(v) for v in srg],
    })

    import onnxruntime

    doc = {
        "provenance": {"tool": "quantus", "version": quantus.__version__,
                       "script": "scripts/make_quantus_fixture.py", "torch": torch.__version__,
                       "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
                       "python": platform.python_version(), "seed": SEED},
        "shape": list(x.shape),
        "aShape": list(a.shape),
        "model": f"{name}.onnx",
        "input": "input",
        "output": "logits",
        "x": [float(v) for v in x.ravel()],
        "a": [float(v) for v in a.ravel()],
        "y": [int(v) for v in y],
        "runs": runs,
    }
    json_path = os.path.join(OUT_DIR, f"{name}.json")
    with open(json_path, "w") as f:
        json.dump(doc, f)
        f.write("\n")
    return [onnx_path, json_path]


def tie_free(rng, shape):
    while True:
        a = rng.standard_normal(shape).astype(np.float32)
        if all(len(np.unique(r)) == r.size for r in a.reshape(shape[0], -1)):
            return a


def main():
    import quantus

    assert quantus.__version__ == "0.6.0", quantus.__version__
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    rng = np.random.default_rng(SEED)
    written = []

    # pf-gray: 8 x [1,28,28], 4 classes
    x = rng.uniform(0.1, 1.0, size=(N, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 4, size=N).astype(np.int64)
    a = tie_free(rng, (N, 1, 28, 28))
    model = make_model(GrayNet, 4, SEED, fc_scale=40.0)
    written += run_case("pf-gray", model, x, y, a, pf_steps=(28,), srg_step=28)

    # pf-rgb: 8 x [3,9,9], 3 classes, per-pixel attributions [8,1,9,9] broadcast over channels
    x = rng.uniform(0.1, 1.0, size=(N, 3, 9, 9)).astype(np.float32)
    y = rng.integers(0, 3, size=N).astype(np.int64)
    a = tie_free(rng, (N, 1, 9, 9))
    model = make_model(RgbNet, 3, SEED + 1, fc_scale=40.0)
    written += run_case("pf-rgb", model, x, y, a, pf_steps=(3, 9), srg_step=3)

    print("wrote:")
    for p in written:
        print(f"  {p:45s} {os.path.getsize(p):8d} bytes")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Generate the embedded xai-eval demo: a tiny shapes CNN (ONNX), 64 held-out samples, masks, attributions.

Run from the repository root:  python3 scripts/make_demo.py
Writes into data/demo/:
  model.onnx                      tiny CNN, input "input" [batch,1,28,28] float32 (dynamic batch),
                                  output "logits" [batch,4] (raw logits, no softmax), opset 17, single file
  x.bin                           float32 LE [64,1,28,28] row-major, values in [0,1]
  y.bin                           int32 LE [64] true labels (0=disk, 1=square, 2=triangle, 3=cross)
  masks.bin                       uint8 [64,28,28], 1 = object pixel
  attr-<method>.bin               float32 LE [64,1,28,28] attributions w.r.t. the true label for
                                  gradient, gradient-x-input, integrated-gradients, occlusion, random
  manifest.json                   metadata (classes, files, accuracy, versions, seed, attribution params)

Everything is seeded (SEED below); training runs single-threaded on CPU so a rerun on the same
package versions reproduces the same files. Attributions are written in plain torch (no captum):
  gradient               d logit_y / d x
  gradient-x-input       x * d logit_y / d x
  integrated-gradients   zero baseline, 64 steps, trapezoidal rule on alpha = linspace(0,1,64)
                         (same as captum's method="riemann_trapezoid", n_steps=64)
  occlusion              4x4 patches, stride 2 (13x13 positions), baseline 0; per pixel the mean of
                         (logit_y(x) - logit_y(x with patch zeroed)) over the patches covering it
                         (same as captum Occlusion(sliding_window_shapes=(1,4,4), strides=(1,2,2)))
  random                 N(0,1) from numpy default_rng(SEED + 1)

Needs (pip): torch (2.15.0 used), numpy (2.3.5), onnx (1.23.2), onnxscript (0.7.2, for the exporter),
onnxruntime (1.32.0, optional: used to check the exported model). See scripts/requirements.txt.
"""
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240607
H = W = 28
CLASSES = ["disk", "square", "triangle", "cross"]
N_TRAIN = 8000
N_TEST = 2000
N_DEMO = 64
OUT_DIR = os.path.join("data", "demo")


# --------------------------------------------------------------------------------------------------
# Synthetic shapes
# --------------------------------------------------------------------------------------------------
def shape_mask(cls: int, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean 28x28 mask of a filled shape of class `cls` centred at (cy, cx) with half-size r."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    if cls == 0:  # disk
        m = dy * dy + dx * dx <= r * r
    elif cls == 1:  # axis-aligned filled square
        m = (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    elif cls == 2:  # upward-pointing isosceles triangle: apex at top, base at bottom
        t = (dy + r) / (2.0 * r)  # 0 at apex row, 1 at base row
        m = (t >= 0.0) & (t <= 1.0) & (np.abs(dx) <= t * r)
    elif cls == 3:  # plus-shaped cross with arm thickness ~ r/2.5
        th = max(1.0, r / 2.5)
        m = ((np.abs(dy) <= th) & (np.abs(dx) <= r)) | ((np.abs(dx) <= th) & (np.abs(dy) <= r))
    else:
        raise ValueError(cls)
    return m


def draw_dataset(n: int, rng: np.random.Generator):
    x = np.empty((n, 1, H, W), dtype=np.float32)
    y = np.empty((n,), dtype=np.int32)
    masks = np.empty((n, H, W), dtype=np.uint8)
    for i in range(n):
        cls = int(rng.integers(0, len(CLASSES)))
        r = rng.uniform(4.5, 9.0)
        cy = rng.uniform(r + 0.5, H - 1.5 - r)
        cx = rng.uniform(r + 0.5, W - 1.5 - r)
        m = shape_mask(cls, cy, cx, r)
        bg = rng.uniform(0.0, 0.2)
        intensity = rng.uniform(0.5, 1.0)
        img = np.full((H, W), bg) + rng.normal(0.0, 0.05, size=(H, W))
        img[m] = intensity + rng.normal(0.0, 0.05, size=int(m.sum()))
        x[i, 0] = np.clip(img, 0.0, 1.0)
        y[i] = cls
        masks[i] = m.astype(np.uint8)
    return x, y, masks


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------
class TinyCNN(nn.Module):
    def __init__(self, n_classes: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.fc = nn.Linear(16 * 7 * 7, n_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 8x14x14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 16x7x7
        return self.fc(torch.flatten(x, 1))


def train(model, x, y, epochs=12, bs=64, lr=3e-3, seed=SEED):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        tot = 0.0
        for s in range(0, len(xt), bs):
            idx = perm[s : s + bs]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        print(f"  epoch {ep + 1:2d}  loss {tot / len(xt):.4f}")
    model.eval()


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


# --------------------------------------------------------------------------------------------------
# Attributions (plain torch)
# --------------------------------------------------------------------------------------------------
def target_logit_grad(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    out = model(x).gather(1, y[:, None]).sum()
    (g,) = torch.autograd.grad(out, x)
    return g.detach()


def attr_gradient(model, x, y):
    return target_logit_grad(model, x, y)


def attr_gradient_x_input(model, x, y):
    return target_logit_grad(model, x, y) * x


def attr_integrated_gradients(model, x, y, steps=64):
    alphas = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    w = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
    w[0] = w[-1] = 0.5 / (steps - 1)
    total = torch.zeros_like(x, dtype=torch.float64)
    for a, wk in zip(alphas, w):
        total += wk * target_logit_grad(model, (a.float() * x), y).double()
    return (total * x.double()).float()  # (x - baseline) * avg grad, baseline = 0


def attr_occlusion(model, x, y, patch=4, stride=2):
    n = x.shape[0]
    with torch.no_grad():
        base = model(x).gather(1, y[:, None])[:, 0].double()
        acc = torch.zeros((n, 1, H, W), dtype=torch.float64)
        cnt = torch.zeros((1, 1, H, W), dtype=torch.float64)
        for r0 in range(0, H - patch + 1, stride):
            for c0 in range(0, W - patch + 1, stride):
                xo = x.clone()
                xo[:, :, r0 : r0 + patch, c0 : c0 + patch] = 0.0
                drop = base - model(xo).gather(1, y[:, None])[:, 0].double()
                acc[:, :, r0 : r0 + patch, c0 : c0 + patch] += drop[:, None, None, None]
                cnt[:, :, r0 : r0 + patch, c0 : c0 + patch] += 1.0
    return (acc / cnt).float()


# --------------------------------------------------------------------------------------------------
def export_onnx(model, path):
    dummy = torch.zeros(2, 1, H, W)
    kw = dict(input_names=["input"], output_names=["logits"], opset_version=17)
    try:  # legacy TorchScript exporter: a plain, small opset-17 graph
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (dummy,), path, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kw)
    except Exception as e:  # newer torch without the legacy exporter
        print(f"  legacy exporter unavailable ({type(e).__name__}); using dynamo exporter")
        batch = torch.export.Dim("batch")
        torch.onnx.export(model, (dummy,), path, dynamo=True, external_data=False,
                          dynamic_shapes={"x": {0: batch}}, **kw)
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m)
    for t in m.graph.initializer:
        assert t.data_location != onnx.TensorProto.EXTERNAL, "external data in model"
    return m


def main():
    t0 = time.time()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)

    rng = np.random.default_rng(SEED)
    print("drawing shapes ...")
    x_tr, y_tr, _ = draw_dataset(N_TRAIN, rng)
    x_te, y_te, m_te = draw_dataset(N_TEST, rng)

    print("training ...")
    model = TinyCNN(len(CLASSES))
    n_params = sum(p.numel() for p in model.parameters())
    train(model, x_tr, y_tr)
    acc = accuracy(model, x_te, y_te)
    print(f"  params {n_params}, held-out accuracy {acc:.4f} on {N_TEST} samples")
    assert acc > 0.9, acc

    # demo set: first 64 held-out samples
    xd, yd, md = x_te[:N_DEMO].copy(), y_te[:N_DEMO].copy(), m_te[:N_DEMO].copy()
    demo_acc = accuracy(model, xd, yd)

    model_path = os.path.join(OUT_DIR, "model.onnx")
    m = export_onnx(model, model_path)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    with torch.no_grad():
        ref = model(torch.from_numpy(xd)).numpy()
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        got = sess.run(["logits"], {"input": xd})[0]
        err = float(np.abs(got - ref).max())
        print(f"  onnxruntime max |logit diff| vs torch: {err:.3g}")
        assert err < 1e-4, err
        got1 = sess.run(["logits"], {"input": xd[:1]})[0]  # dynamic batch
        assert got1.shape == (1, len(CLASSES))
    except ImportError:
        print("  onnxruntime not installed: skipped ONNX check")

    print("attributions ...")
    xt, yt = torch.from_numpy(xd), torch.from_numpy(yd.astype(np.int64))
    attrs = {
        "gradient": attr_gradient(model, xt, yt),
        "gradient-x-input": attr_gradient_x_input(model, xt, yt),
        "integrated-gradients": attr_integrated_gradients(model, xt, yt, steps=64),
        "occlusion": attr_occlusion(model, xt, yt, patch=4, stride=2),
        "random": torch.from_numpy(
            np.random.default_rng(SEED + 1).standard_normal((N_DEMO, 1, H, W)).astype(np.float32)),
    }
    # IG completeness sanity check (trapezoid with 64 steps is approximate)
    with torch.no_grad():
        delta = (model(xt) - model(torch.zeros_like(xt))).gather(1, yt[:, None])[:, 0]
    ig_sum = attrs["integrated-gradients"].sum(dim=(1, 2, 3))
    print(f"  IG completeness: median |sum(IG) - (f(x)-f(0))| = "
          f"{float((ig_sum - delta).abs().median()):.3g} (median |f(x)-f(0)| {float(delta.abs().median()):.3g})")

    files = {}

    def write(name, arr, dtype):
        p = os.path.join(OUT_DIR, name)
        np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")).tofile(p)
        files[name] = p

    write("x.bin", xd, np.float32)
    write("y.bin", yd, np.int32)
    write("masks.bin", md, np.uint8)
    attr_files = {}
    for k, v in attrs.items():
        name = f"attr-{k}.bin"
        write(name, v.numpy(), np.float32)
        attr_files[k] = name

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for mod in ("onnx", "onnxruntime", "onnxscript"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    manifest = {
        "classes": CLASSES,
        "shape": [N_DEMO, 1, H, W],
        "x": "x.bin",
        "y": "y.bin",
        "masks": "masks.bin",
        "attributions": attr_files,
        "model": "model.onnx",
        "input": "input",
        "output": "logits",
        "opset": opset,
        "heldOutAccuracy": acc,
        "heldOutSize": N_TEST,
        "demoAccuracy": demo_acc,
        "trainSize": N_TRAIN,
        "modelParams": n_params,
        "dtypes": {"x": "float32le", "y": "int32le", "masks": "uint8", "attributions": "float32le"},
        "attributionParams": {
            "target": "true label, raw logit (no softmax)",
            "gradient": {},
            "gradient-x-input": {},
            "integrated-gradients": {"baseline": 0.0, "steps": 64, "rule": "riemann_trapezoid"},
            "occlusion": {"patch": [4, 4], "stride": [2, 2], "baseline": 0.0,
                          "value": "mean over covering patches of logit_y(x) - logit_y(x_occluded)"},
            "random": {"dist": "N(0,1)", "seed": SEED + 1},
        },
        "generator": "scripts/make_demo.py",
        "versions": versions,
        "seed": SEED,
    }
    mpath = os.path.join(OUT_DIR, "manifest.json")
    with open(mpath, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    files["manifest.json"] = mpath
    files["model.onnx"] = model_path

    total = 0
    print("wrote:")
    for p in sorted(files.values()):
        sz = os.path.getsize(p)
        total += sz
        print(f"  {p:40s} {sz:8d} bytes")
    print(f"  total {total} bytes; done in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    sys.exit(main())

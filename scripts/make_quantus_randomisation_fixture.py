#!/usr/bin/env python3
"""Quantus 0.6.0 reference fixture for RandomLogit, MPRT, EfficientMPRT and SmoothMPRT.

Run from the repository root:  /work/venv-fixtures/bin/python scripts/make_quantus_randomisation_fixture.py
(needs scripts/requirements.txt; about a minute). Writes __test__/fixtures/quantus/randomisation-cnn.onnx (a tiny
CNN exported with torch.onnx) and __test__/fixtures/quantus/randomisation.json (data, runs, Quantus's outputs).

Model: conv1 Conv2d(1, 3, 3, padding 1) -> ReLU -> conv2 Conv2d(3, 4, 3, stride 2, padding 1) -> ReLU -> Flatten ->
fc Linear(64, 3), on 6 inputs [1, 8, 8], labels i % 3, raw logits. Its ONNX graph has exactly three layers with float
weights (Conv, Conv, Gemm with transB = 1), in the order of the torch modules that have `reset_parameters` - so
xai-eval's layer l is Quantus's l-th module (the script checks the exported graph).

Randomization handed to Quantus: every module's `reset_parameters` (what Quantus calls, after
`torch.manual_seed(seed + 1)`, to randomize a layer) is replaced by xai-eval's keyed draws
(src/models/onnx-edit.ts randomizeLayers): tensor t of layer l (t = 0 weight, 1 bias: the ONNX node's input order)
is float32((2u - 1) * b), u the uniforms of Rng.keyed(seed, l, WEIGHTS, t) in row-major order, b = 1/sqrt(fan_in)
(fan_in = in_channels*kh*kw for Conv, in_features for Linear). So Quantus's cascade randomizes the torch modules with
the very weights xai-eval writes into the ONNX initializers, and the test exercises xai-eval's whole path (decode,
layer discovery, keyed weights, re-encode, load each stage, explain, compare).

Explainer on both sides: xai-eval's built-in occlusion(patch = 2, stride = 1, baseline 0) on raw logits:
a[p] = mean over the 7x7 windows m covering p of (z_t(x) - z_t(x with window m set to 0)), differences in float64 of
float32 logits, returned as float32 [N, 1, H, W]. Python runs it with the (randomized) torch module Quantus hands to
explain_func; xai-eval runs it through onnxruntime. torch and onnxruntime logits differ by ~4e-9 here; the script
prints the closest two distinct values of any map (a Spearman rank could flip below that) and the closest value to a
100-bin edge (an eMPRT bin could flip); exact ties (windows behind a dead ReLU change no logit) are ties on both sides.

Per metric (Quantus called with return_aggregate=False, disable_warnings=True, channel_first=True):
* RandomLogit(num_classes=3, similarity_func=ssim | correlation_spearman): np.random.randint (Quantus re-seeds numpy
  per batch and draws randint(0, num_classes - 1, batch)) is patched to return, for sample n (global),
  Rng.keyed(seed, n, CLASS, 0).below(num_classes - 1): the index into the other classes, as xai-eval draws it. For
  SSIM the run hands Quantus a per-sample max-abs normalise_func (Quantus's own normalises `a` over the whole data
  set and each explanation over its batch: SSIM would depend on the batch); Spearman runs keep Quantus's default.
* MPRT: layer_order top_down / bottom_up / independent; Spearman (default) and Pearson; Quantus's dict per layer,
  plus "original" (sim of the given `a` to a fresh explanation of the trained model); one run with
  return_average_correlation=True (a list per sample: xai-eval's `average`).
* EfficientMPRT: defaults (bottom_up, skip_layers, discrete_entropy with 100 bins, no normalise/abs).
* SmoothMPRT: Quantus explains with `quantus.explain` (ignoring explain_func): patched to the same occlusion.
  np.random.randn (the noise of draw k < nr_samples - 1; the last draw is noise-free) is patched to return, for sample
  n and draw k, the standard normals of Rng.keyed(seed, n, PERTURBATION, k).normals() (xai-eval's smooth_rows) - the
  same for every model, as xai-eval. a_batch=None: the reference is the smoothed explanation of the trained model.
  Quantus adds the float64 noise in float64; xai-eval rounds it to float32 and adds in float32.
"""
import math
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402
from keyed_rng import CLASS, PERTURBATION, WEIGHTS, Rng  # noqa: E402

N, C, H, W, K = 6, 1, 8, 8, 3
PATCH, STRIDE = 2, 1
SEED = 5  # xai-eval's seed (weights, classes, noise)
ONNX = os.path.join(fc.OUT_DIR, "randomisation-cnn.onnx")
KEYED = {"on": False, "seed": SEED}


def keyed_tensor(seed, layer, tensor, shape, bound):
    r = Rng.keyed(seed, layer, WEIGHTS, tensor)
    n = int(np.prod(shape))
    return np.asarray([np.float32((2.0 * r.uniform() - 1.0) * bound) for _ in range(n)], dtype=np.float32).reshape(shape)


def build_model():
    import torch
    import torch.nn as nn

    class Keyed:
        """reset_parameters writes xai-eval's keyed weights while KEYED['on'] (torch's default init otherwise)."""

        def reset_parameters(self):
            if not KEYED["on"]:
                return super().reset_parameters()
            bound = 1.0 / math.sqrt(max(1, self.weight[0].numel()))
            with torch.no_grad():
                self.weight.copy_(torch.from_numpy(keyed_tensor(KEYED["seed"], self.layer, 0, tuple(self.weight.shape), bound)))
                self.bias.copy_(torch.from_numpy(keyed_tensor(KEYED["seed"], self.layer, 1, tuple(self.bias.shape), bound)))

    class KConv(Keyed, nn.Conv2d):
        pass

    class KLinear(Keyed, nn.Linear):
        pass

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = KConv(1, 3, 3, padding=1)
            self.conv2 = KConv(3, 4, 3, stride=2, padding=1)
            self.fc = KLinear(64, K)
            for i, m in enumerate([self.conv1, self.conv2, self.fc]):
                m.layer = i

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = torch.relu(self.conv2(x))
            return self.fc(torch.flatten(x, 1))

    torch.manual_seed(3)
    net = Net()
    with torch.no_grad():
        net.fc.weight.mul_(4.0)
    return net.eval()


def windows():
    def starts(n):
        v = list(range(0, n - PATCH + 1, STRIDE))
        if v[-1] != n - PATCH:
            v.append(n - PATCH)
        return v

    return [(r, c) for r in starts(H) for c in starts(W)]


def occlusion(model=None, inputs=None, targets=None, **kw):
    """xai-eval's occlusion(patch=2, stride=1, baseline 0) on the torch module's raw logits, [n, 1, H, W] float32."""
    import torch

    x = np.asarray(inputs, dtype=np.float32).reshape(-1, C, H, W)
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    n = x.shape[0]
    ws = windows()
    rows = []
    for s in range(n):
        for r, c in ws:
            xm = x[s].copy()
            xm[:, r:r + PATCH, c:c + PATCH] = 0.0
            rows.append(xm)
        rows.append(x[s])
    with torch.no_grad():
        z = model(torch.from_numpy(np.stack(rows))).numpy().astype(np.float64)
    m = len(ws)
    out = np.zeros((n, H * W), dtype=np.float64)
    cover = np.zeros(H * W, dtype=np.float64)
    for r, c in ws:
        mask = np.zeros((H, W))
        mask[r:r + PATCH, c:c + PATCH] = 1
        cover += mask.ravel()
    for s in range(n):
        f0 = z[s * (m + 1) + m, t[s]]
        for j, (r, c) in enumerate(ws):
            mask = np.zeros((H, W))
            mask[r:r + PATCH, c:c + PATCH] = 1
            out[s] += (f0 - z[s * (m + 1) + j, t[s]]) * mask.ravel()
    maps = (out / cover).astype(np.float32).reshape(n, 1, H, W)
    check_separation(maps, "occlusion")
    return maps


SEPARATION = {"gap": np.inf, "edge": np.inf}


def check_separation(maps, tag):
    """Tracks the closest two distinct values of any map (a rank could flip below ~1e-6) and the closest value to a
    100-bin histogram edge (a bin could flip), printed at the end."""
    for s, m in enumerate(np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)):
        v = np.sort(m)
        diffs = np.diff(v)
        diffs = diffs[diffs > 0]  # exact ties (windows that change no logit behind a dead ReLU) are ties on both sides
        gap = diffs.min() if diffs.size else np.inf
        lo, hi = v[0], v[-1]
        edges = lo + (hi - lo) * np.arange(1, 100) / 100
        edge = np.abs(m[:, None] - edges[None, :]).min()
        SEPARATION["gap"] = min(SEPARATION["gap"], gap)
        SEPARATION["edge"] = min(SEPARATION["edge"], edge)


class KeyedRandint:
    def __init__(self, seed, n, batch_size, k):
        self.keys = fc.batches(n, batch_size)
        self.used, self.seed, self.k = 0, seed, k

    def __call__(self, low, high=None, size=None):
        b = self.keys[self.used]
        assert low == 0 and high == self.k - 1 and size == len(b), (low, high, size)
        self.used += 1
        return np.asarray([Rng.keyed(self.seed, n, CLASS, 0).below(self.k - 1) for n in b], dtype=np.int64)


class KeyedRandn:
    """np.random.randn(*x_batch.shape) of SmoothMPRT: each pass over the data set draws (batch, draw k) in order."""

    def __init__(self, seed, n, batch_size, draws):
        self.cycle = [(b, k) for b in fc.batches(n, batch_size) for k in range(draws - 1)]
        self.used, self.seed = 0, seed

    def __call__(self, *shape):
        b, k = self.cycle[self.used % len(self.cycle)]
        self.used += 1
        assert shape == (len(b), C, H, W), shape
        return np.stack([keyed_normals(self.seed, n, k) for n in b])


def keyed_normals(seed, n, k):
    g = Rng.keyed(seed, n, PERTURBATION, k).normals()
    return np.asarray([next(g) for _ in range(C * H * W)], dtype=np.float64).reshape(C, H, W)


def per_sample_max(a, **kw):
    """Each map divided by its own max |a| (what xai-eval's `normalise` does), handed to Quantus for SSIM."""
    a = np.asarray(a)
    m = np.abs(a).reshape(a.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (a.ndim - 1))
    return np.where(m > 0, a / np.where(m > 0, m, 1), a)


def export(model):
    import onnx
    import torch

    torch.onnx.export(model, torch.zeros(1, C, H, W), ONNX, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    g = onnx.load(ONNX).graph
    inits = {t.name: t for t in g.initializer}
    layers = [(nd.op_type, [i for i in nd.input if i in inits]) for nd in g.node if any(i in inits and len(inits[i].dims) and np.prod(inits[i].dims) >= 2 for i in nd.input)]
    print("ONNX layers:", layers)
    assert [op for op, _ in layers] == ["Conv", "Conv", "Gemm"], layers
    gemm = [nd for nd in g.node if nd.op_type == "Gemm"][0]
    assert [a.i for a in gemm.attribute if a.name == "transB"] == [1]
    for (op, names), mod in zip(layers, [model.conv1, model.conv2, model.fc]):
        assert list(inits[names[0]].dims) == list(mod.weight.shape) and list(inits[names[1]].dims) == list(mod.bias.shape)


def main():
    import onnxruntime as ort
    import quantus
    import torch

    assert quantus.__version__ == "0.6.0", quantus.__version__
    warnings.filterwarnings("ignore")
    model = build_model()
    export(model)
    x = np.random.default_rng(11).uniform(0, 1, size=(N, C, H, W)).astype(np.float32)
    y = np.arange(N, dtype=np.int64) % K
    sess = ort.InferenceSession(ONNX, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        d = float(np.abs(sess.run(["logits"], {"input": x})[0] - model(torch.from_numpy(x)).numpy()).max())
    print(f"ONNX vs torch logits: {d:.2g}")
    assert d < 1e-5
    a = occlusion(model, x, y)
    check_separation(a, "a")
    a_noise = np.random.default_rng(12).normal(size=a.shape).astype(np.float32)
    KEYED["on"] = True
    runs = []

    def record(metric, params, bs, scores, **extra):
        runs.append({"metric": metric, "params": params, "batchSize": bs, **extra,
                     "scores": scores if isinstance(scores, dict) else [float(v) for v in scores]})
        print(metric, params, bs, {k: np.round(v, 4).tolist() for k, v in scores.items()} if isinstance(scores, dict) else np.round(scores, 4).tolist())

    # RandomLogit.
    for sim, bs in [("ssim", 4), ("spearman", 6)]:
        init = dict(num_classes=K, similarity_func=quantus.similarity_func.ssim if sim == "ssim" else quantus.similarity_func.correlation_spearman)
        if sim == "ssim":
            init["normalise_func"] = per_sample_max
        metric = quantus.RandomLogit(**init, return_aggregate=False, disable_warnings=True)
        keyed = KeyedRandint(SEED, N, bs, K)
        with fc.patched(np.random, "randint", keyed):
            q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(), explain_func=occlusion, channel_first=True, batch_size=bs)
        assert keyed.used == len(keyed.keys)
        other = [Rng.keyed(SEED, n, CLASS, 0).below(K - 1) for n in range(N)]
        other = [o + 1 if o >= y[n] else o for n, o in enumerate(other)]
        record("RandomLogit", {"numClasses": K, "similarity": sim, "seed": SEED, "compat": "quantus"}, bs, q, otherClass=other)

    # MPRT.
    for order, sim, bs, a_in in [("top_down", "spearman", 6, "a"), ("bottom_up", "spearman", 4, "noise"), ("independent", "pearson", 6, "a")]:
        sf = quantus.similarity_func.correlation_spearman if sim == "spearman" else quantus.similarity_func.correlation_pearson
        metric = quantus.MPRT(layer_order=order, similarity_func=sf, return_aggregate=False, disable_warnings=True)
        given = a if a_in == "a" else a_noise
        q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=given.copy(), explain_func=occlusion, channel_first=True, batch_size=bs)
        record("MPRT", {"layerOrder": order.replace("_", "-"), "similarity": sim, "seed": SEED, "compat": "quantus"}, bs,
               {k: [float(v) for v in vals] for k, vals in q.items()}, a=a_in)

    # MPRT's return_average_correlation (the mean over "original" and every layer, per sample).
    metric = quantus.MPRT(return_average_correlation=True, return_aggregate=False, disable_warnings=True)
    q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a_noise.copy(), explain_func=occlusion, channel_first=True, batch_size=6)
    record("MPRT", {"layerOrder": "top-down", "similarity": "spearman", "seed": SEED, "compat": "quantus"}, 6, q, a="noise",
           returns="average")

    # EfficientMPRT.
    metric = quantus.EfficientMPRT(return_aggregate=False, disable_warnings=True)
    q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(), explain_func=occlusion, channel_first=True, batch_size=6)
    record("EfficientMPRT", {"seed": SEED, "compat": "quantus"}, 6, q)

    # SmoothMPRT.
    for order, draws, bs in [("bottom_up", 3, 6), ("top_down", 4, 4)]:
        metric = quantus.SmoothMPRT(layer_order=order, nr_samples=draws, return_aggregate=False, disable_warnings=True)
        keyed = KeyedRandn(SEED, N, bs, draws)
        with fc.patched(np.random, "randn", keyed), fc.patched(quantus, "explain", occlusion):
            q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=None, explain_func=occlusion, channel_first=True, batch_size=bs)
        assert keyed.used == len(keyed.cycle) * 5, keyed.used  # a, original, 3 layers
        record("SmoothMPRT", {"layerOrder": order.replace("_", "-"), "nrSamples": draws, "noiseMagnitude": 0.1, "seed": SEED, "compat": "quantus"},
               bs, {k: [float(v) for v in vals] for k, vals in q.items()})
    KEYED["on"] = False
    print(f"closest distinct values in a map: {SEPARATION['gap']:.3g}; closest to a 100-bin edge: {SEPARATION['edge']:.3g}")

    # Self-check: the keyed normals as xai-eval draws them (sample 0, draw 0, first 5 values) for the test.
    doc = {
        "provenance": fc.provenance("scripts/make_quantus_randomisation_fixture.py"),
        "model": "randomisation-cnn.onnx",
        "shape": [N, C, H, W],
        "classes": K,
        "x": fc.f32list(x),
        "y": [int(v) for v in y],
        "a": fc.f32list(a),
        "aNoise": fc.f32list(a_noise),
        "explainer": {"kind": "occlusion", "patch": PATCH, "stride": STRIDE, "baseline": 0},
        "normalsSample0Draw0": fc.flist(keyed_normals(SEED, 0, 0).ravel()[:5]),
        "weightsLayer0Tensor0": fc.f32list(keyed_tensor(SEED, 0, 0, (3, 1, 3, 3), 1 / 3)[0].ravel()),
        "runs": runs,
    }
    fc.write_json(os.path.join(fc.OUT_DIR, "randomisation.json"), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for the Quantus fixture scripts (make_quantus_faithfulness_fixture.py, make_qge_fixture.py).

Loads the data and models of the existing PixelFlipping fixtures (pf-gray / pf-rgb), rebuilds the torch nets
exactly as scripts/make_quantus_fixture.py does (same builders, same seeds) and checks them against the committed
ONNX files; records every forward pass Quantus makes (a forward hook on the torch net) so that the independent numpy
re-implementations can be compared input-by-input; routes Quantus's legacy `np.random` draws through xai-eval's
keyed generator (scripts/keyed_rng.py).
"""
import contextlib
import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_quantus_fixture as mqf  # noqa: E402  (builders + SEED of the existing fixtures)
from keyed_rng import PERTURBATION, SUBSET, Rng  # noqa: E402,F401

OUT_DIR = os.path.join("__test__", "fixtures", "quantus")


def load_case(name):
    """x, a, y of `<name>.json` (float32 / int64) + the rebuilt torch model + an onnxruntime forward."""
    import onnxruntime as ort
    import torch

    with open(os.path.join(OUT_DIR, f"{name}.json")) as f:
        doc = json.load(f)
    x = np.asarray(doc["x"], dtype=np.float32).reshape(doc["shape"])
    a = np.asarray(doc["a"], dtype=np.float32).reshape(doc["aShape"])
    y = np.asarray(doc["y"], dtype=np.int64)
    if name == "pf-gray":
        model = mqf.make_model(mqf.GrayNet, 4, mqf.SEED, fc_scale=40.0)
    elif name == "pf-rgb":
        model = mqf.make_model(mqf.RgbNet, 3, mqf.SEED + 1, fc_scale=40.0)
    else:
        raise ValueError(name)
    onnx_path = os.path.join(OUT_DIR, f"{name}.onnx")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

    def onnx_logits(z):
        return sess.run(["logits"], {"input": np.ascontiguousarray(z, dtype=np.float32)})[0]

    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(onnx_logits(x) - ref).max())
    print(f"[{name}] committed ONNX vs rebuilt torch net: max |logit diff| = {err:.3g}")
    assert err < 1e-5, err
    return x, a, y, model, onnx_logits


def provenance(script):
    import onnxruntime
    import quantus
    import scipy
    import skimage
    import torch

    return {"tool": "quantus", "version": quantus.__version__, "script": script, "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "scikit-image": skimage.__version__,
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}


def softmax32(z):
    """Softmax of float32 logits, computed in float64, returned as float32 (Quantus: torch float32 softmax)."""
    z = np.asarray(z, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


class Forward:
    """Model output as Quantus sees it (softmax or logits), driven by onnxruntime; records every input.
    torch_model: use the torch net + torch float32 softmax instead (exactly Quantus's arithmetic)."""

    def __init__(self, onnx_logits, softmax, torch_model=None):
        self.onnx_logits, self.softmax, self.inputs, self.torch_model = onnx_logits, softmax, [], torch_model

    def __call__(self, x):
        self.inputs.append(np.array(x, dtype=np.float32, copy=True))
        if self.torch_model is not None:
            import torch

            with torch.no_grad():
                z = self.torch_model(torch.from_numpy(np.array(x, dtype=np.float32)))
                return (torch.softmax(z, dim=-1) if self.softmax else z).numpy()
        z = self.onnx_logits(x)
        return softmax32(z) if self.softmax else z


@contextlib.contextmanager
def record_forwards(model):
    """Collect the input of every forward pass of the torch net (Quantus wraps it, the hook still fires)."""
    seen = []
    h = model.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().numpy().copy()))
    try:
        yield seen
    finally:
        h.remove()


def same_forwards(quantus_inputs, mine_inputs, tag):
    """Quantus and the re-implementation must have fed the model identical inputs, in the same order."""
    assert len(quantus_inputs) == len(mine_inputs), (tag, len(quantus_inputs), len(mine_inputs))
    d = max((float(np.abs(q - m).max()) for q, m in zip(quantus_inputs, mine_inputs)), default=0.0)
    assert d == 0.0, (tag, d)
    return len(quantus_inputs)


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def batches(n, batch_size):
    return [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]


class KeyedChoice:
    """Replaces np.random.choice for FaithfulnessCorrelation.

    Quantus 0.6.0 draws, per batch, for run r in 0..nr_runs-1, for sample i of the batch:
    np.random.choice(F, subset_size, replace=False). Call number c of batch b is (r, i) = divmod(c, len(b)).
    The patched draw returns Rng.keyed(seed, n, SUBSET, r).subset(F, subset_size), n = global sample index.
    """

    def __init__(self, seed, n, batch_size, nr_runs, F, k):
        self.seed, self.F, self.k = seed, F, k
        self.keys = [(n_, r) for b in batches(n, batch_size) for r in range(nr_runs) for n_ in b]
        self.used = 0
        self.drawn = {}

    def __call__(self, a, size=None, replace=True, p=None):
        assert a == self.F and size == self.k and replace is False and p is None, (a, size, replace)
        n, r = self.keys[self.used]
        self.used += 1
        s = Rng.keyed(self.seed, n, SUBSET, r).subset(self.F, self.k)
        self.drawn[(n, r)] = s
        return np.asarray(s, dtype=np.int64)

    def done(self):
        assert self.used == len(self.keys), (self.used, len(self.keys))


class KeyedUniform:
    """Replaces np.random.uniform for the batched 'uniform' baseline (quantus.helpers.utils.get_baseline_dict).

    get_baseline_dict(batched=True) draws np.random.uniform(low, high, size=batch_len): one value per sample
    of the batch per perturbation call. `steps` lists, in call order for one batch, the keyed step index used
    by that call; value for sample n (global index) = low + (high - low) * Rng.keyed(seed, n, PERTURBATION, step).uniform().
    """

    def __init__(self, seed, n, batch_size, steps):
        self.seed = seed
        self.keys = [(b, t) for b in batches(n, batch_size) for t in steps]
        self.used = 0
        self.drawn = {}

    def __call__(self, low=0.0, high=1.0, size=None):
        b, t = self.keys[self.used]
        assert size == len(b), (size, len(b))
        self.used += 1
        out = []
        for n in b:
            u = Rng.keyed(self.seed, n, PERTURBATION, t).uniform()
            v = low + (high - low) * u
            self.drawn[(n, t)] = v
            out.append(v)
        return np.asarray(out, dtype=np.float64)

    def done(self):
        assert self.used == len(self.keys), (self.used, len(self.keys))


def keyed_uniform_value(seed, n, step, low=0.0, high=1.0):
    return low + (high - low) * Rng.keyed(seed, n, PERTURBATION, step).uniform()


def f32list(v):
    return [float(t) for t in np.asarray(v, dtype=np.float32).ravel()]


def flist(v):
    return [float(t) for t in np.asarray(v, dtype=np.float64).ravel()]


def rows(v, dtype=np.float64):
    return [[float(t) for t in r] for r in np.asarray(v, dtype=dtype)]


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")

#!/usr/bin/env python3
"""Quantus 0.6.0 reference fixture for MaxSensitivity, AvgSensitivity, LocalLipschitzEstimate and
RelativeInputStability.

Run from the repository root:  /work/venv-fixtures/bin/python scripts/make_quantus_robustness_fixture.py
(needs scripts/requirements.txt; a few seconds). Reads, never rewrites, __test__/fixtures/quantus/pf-gray.{json,onnx}
(8 x [1,28,28], 4 classes; the torch net rebuilt and checked as in fixture_common.load_case). Writes
__test__/fixtures/quantus/robustness-gray.json.

Explainer (both sides compute it identically): gradient x input of a fixed linear map,
  explain(x, t) = float32(W[t] * x),  W = float32 [K, F] stored in the fixture ("weights"),
so it needs no autograd and TS reproduces it exactly; for RelativeInputStability (where W * x gives exactly 1)
float32(W[t] * x * x) computed in float64 (run field "explainer"). a_batch = explain(x, y) (float32).
Scores: NaN is written as null.

Every metric is called as
  quantus.<Metric>(nr_samples=..., lower_bound=..., [upper_bound=...], return_aggregate=False, disable_warnings=True)
    (model=<torch net>, x_batch=x, y_batch=y, a_batch=a, explain_func=explain, channel_first=True, batch_size=<bs>)
defaults otherwise: perturb_func=batch_uniform_noise, similarity_func=difference, norms fro, normalise=False, abs=False,
return_nan_when_prediction_changes=False.
LocalLipschitzEstimate is called with normalise=False (Quantus normalises the reference maps by the max over the whole
data set and the noisy maps by the max over their batch: batch-dependent, not reproduced by xai-eval) and
perturb_func=batch_uniform_noise, perturb_func_kwargs={"lower_bound": lb} (uniform noise U(-lb, lb): xai-eval's
Gaussian draws have no Python mirror); its defaults otherwise (lipschitz_constant with Euclidean distances, eps 1e-10,
nanmax over steps).
RelativeInputStability runs with its defaults (batch_uniform_noise with upper_bound=0.2, so U(0.02, 0.2); eps_min 1e-6;
return_nan_when_prediction_changes=True, predictions of the torch net; np.max over steps). Quantus divides the float32
maps in float32: its objectives match the float64 numpy check and xai-eval to 1e-5 relative, not absolute.

Random draws: np.random.uniform(low, high, size=(batch_len, F)) in batch_uniform_noise is patched: in batch b at
step t (0-based) the row of sample n (global 0-based index) is low + (high - low) * u_j, u_j the j-th uniform() of
Rng.keyed(0, n, PERTURBATION, t) for j = 0..F-1 (row-major channel-first entry order) - exactly xai-eval's
noisy_rows. Quantus adds that float64 noise to the float32 input in float64; xai-eval rounds the noise to float32
and adds in float32 (differences ~1e-8, far below the 1e-5 tolerance).

return_nan_when_prediction_changes=True runs (xai-eval's nanWhenPredictionChanges, Max/Avg/LocalLipschitz; noise
U(-0.2, 0.2) so that some steps change the torch net's argmax): such steps are NaN and the aggregate is np.max /
np.mean, so the sample is NaN. The numpy check uses the committed ONNX model's argmax.

normalise=True runs (xai-eval's compat: 'quantus' with batchSize = the run's batch size): Quantus divides a_batch by
one max |a| over the whole data set (general_preprocess) and, in explain_batch, each batch's noisy explanations at
each step by one max over that batch (normalise_by_max over all axes; an all-zero array is left as it is). The
same metric is run at two batch sizes to show the batch dependence that compat reproduces.

The "relu(x-T)" explainer, W[t] * max(x - T, 0) with T the median of the samples' largest entries, and 0 for
class 0, gives all-zero reference maps (||a|| = 0) to the samples whose largest entry is at most T and to class 0:
Quantus's MaxSensitivity/AvgSensitivity then divide by zero - inf where a noisy map is non-zero (noise lifting an
entry above T), NaN for 0/0 (class 0 at every step), nan-aggregated over steps. Written as "Infinity" / null.

Self-check: an independent numpy computation of ||a/M - explain(x + noise)/m||_2 / ||a/M||_2 (M = 1 = m without
normalise), max / mean over steps (nan-aggregates), must agree with Quantus to 1e-6.
"""
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402
from keyed_rng import PERTURBATION, Rng  # noqa: E402

SEED = 0


class KeyedNoise:
    """Replaces np.random.uniform inside batch_uniform_noise (one call per batch and step, size (batch_len, F))."""

    def __init__(self, n, batch_size, steps, F):
        self.keys = [(b, t) for b in fc.batches(n, batch_size) for t in range(steps)]
        self.used, self.F = 0, F

    def __call__(self, low=0.0, high=1.0, size=None):
        b, t = self.keys[self.used]
        assert size == (len(b), self.F), (size, len(b))
        self.used += 1
        return np.asarray([keyed_row(n, t, low, high, self.F) for n in b], dtype=np.float64)

    def done(self):
        assert self.used == len(self.keys), (self.used, len(self.keys))


def keyed_row(n, t, low, high, F):
    r = Rng.keyed(SEED, n, PERTURBATION, t)
    return [low + (high - low) * r.uniform() for _ in range(F)]


def params_str(init):
    return {k: (v.__name__ if callable(v) else v) for k, v in init.items()}


def main():
    import quantus

    assert quantus.__version__ == "0.6.0", quantus.__version__
    warnings.filterwarnings("ignore")
    x, _a, y, model, onnx_logits = fc.load_case("pf-gray")
    n, C, H, W_ = x.shape
    F = C * H * W_
    K = 4
    weights = np.random.default_rng(7).uniform(-1, 1, size=(K, F)).astype(np.float32)

    def explain(model=None, inputs=None, targets=None, **kw):
        inputs = np.asarray(inputs)
        w = weights[np.asarray(targets, dtype=np.int64)].reshape(inputs.shape)
        return (w * inputs).astype(np.float32)

    def explain_sq(model=None, inputs=None, targets=None, **kw):
        """W * x * x (computed in float64, rounded to float32): RIS of W * x is exactly 1."""
        inputs = np.asarray(inputs, dtype=np.float64)
        w = weights[np.asarray(targets, dtype=np.int64)].reshape(inputs.shape).astype(np.float64)
        return (w * inputs * inputs).astype(np.float32)

    # Half the samples (those whose largest entry is at most T) get all-zero reference maps (Quantus refuses an all-zero a_batch).
    T = np.float32(np.sort(x.reshape(n, -1).max(axis=1))[n // 2])

    def explain_relu(model=None, inputs=None, targets=None, **kw):
        """W * max(x - T, 0), and 0 for target 0: zero on the clean inputs whose largest entry is at most T (non-zero
        where noise lifts an entry above T), always zero for class 0 (0/0 at every step)."""
        inputs = np.asarray(inputs, dtype=np.float64)
        t = np.asarray(targets, dtype=np.int64)
        w = weights[t].reshape(inputs.shape).astype(np.float64) * (t != 0).reshape(-1, *([1] * (inputs.ndim - 1)))
        return (w * np.maximum(inputs - np.float64(T), 0.0)).astype(np.float32)

    explainers = {"w*x": explain, "w*x*x": explain_sq, "relu(x-T)": explain_relu}
    uniform = quantus.functions.perturb_func.batch_uniform_noise
    runs = []
    plan = [
        ("MaxSensitivity", dict(nr_samples=6, lower_bound=0.2), 3),
        ("AvgSensitivity", dict(nr_samples=6, lower_bound=0.2), 8),
        ("MaxSensitivity", dict(nr_samples=5, lower_bound=0.05, upper_bound=0.3), 8),
        ("AvgSensitivity", dict(nr_samples=5, lower_bound=0.05, upper_bound=0.3), 5),
        ("LocalLipschitzEstimate", dict(nr_samples=6, normalise=False, perturb_func=quantus.functions.perturb_func.batch_uniform_noise,
                                        perturb_func_kwargs={"lower_bound": 0.1}), 3),
        ("RelativeInputStability", dict(nr_samples=6), 3),
        # Quantus's batch normalisation (xai-eval compat: 'quantus'), two batch sizes each.
        ("LocalLipschitzEstimate", dict(nr_samples=5, normalise=True, perturb_func=uniform, perturb_func_kwargs={"lower_bound": 0.1}), 3),
        ("LocalLipschitzEstimate", dict(nr_samples=5, normalise=True, perturb_func=uniform, perturb_func_kwargs={"lower_bound": 0.1}), 8),
        ("MaxSensitivity", dict(nr_samples=5, lower_bound=0.2, normalise=True), 3),
        ("AvgSensitivity", dict(nr_samples=5, lower_bound=0.2, normalise=True), 5),
        # All-zero references: Quantus divides by zero.
        ("MaxSensitivity", dict(nr_samples=4, lower_bound=0.2), 8, "relu(x-T)"),
        ("AvgSensitivity", dict(nr_samples=4, lower_bound=0.2), 3, "relu(x-T)"),
        # return_nan_when_prediction_changes=True (xai-eval's nanWhenPredictionChanges): noise strong enough to flip some.
        ("MaxSensitivity", dict(nr_samples=5, lower_bound=0.2, return_nan_when_prediction_changes=True), 3),
        ("AvgSensitivity", dict(nr_samples=5, lower_bound=0.2, return_nan_when_prediction_changes=True), 8),
        ("LocalLipschitzEstimate", dict(nr_samples=5, normalise=False, perturb_func=uniform, perturb_func_kwargs={"lower_bound": 0.2},
                                        return_nan_when_prediction_changes=True), 3),
    ]
    for name, init, bs, *which in plan:
        explainer = explainers[which[0]] if which else explain_sq if name == "RelativeInputStability" else explain
        a = explainer(inputs=x, targets=y)
        metric = getattr(quantus, name)(**init, return_aggregate=False, disable_warnings=True)
        keyed = KeyedNoise(n, bs, init["nr_samples"], F)
        with fc.patched(np.random, "uniform", keyed):
            q = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(), explain_func=explainer,
                       channel_first=True, batch_size=bs)
        keyed.done()
        q = np.asarray(q, dtype=np.float64)
        # Independent check.
        lipschitz = name == "LocalLipschitzEstimate"
        ris = name == "RelativeInputStability"
        if ris:
            lo, hi = 0.02, 0.2
        elif lipschitz:
            lo, hi = -init["perturb_func_kwargs"]["lower_bound"], init["perturb_func_kwargs"]["lower_bound"]
        elif "upper_bound" not in init:
            lo, hi = -init["lower_bound"], init["lower_bound"]
        else:
            lo, hi = init["lower_bound"], init["upper_bound"]
        normalise = init.get("normalise", lipschitz)
        steps = init["nr_samples"]
        # Independent normalisation: one max over the data set's references, one per (batch, step) of the noisy maps.
        explained = np.zeros((n, steps, F))
        for s in range(n):
            for t in range(steps):
                noisy = x[s].reshape(-1).astype(np.float64) + np.asarray(keyed_row(s, t, lo, hi, F))
                explained[s, t] = explainer(inputs=noisy.reshape(1, C, H, W_), targets=[y[s]]).reshape(-1)
        ref_max = np.abs(a).max() if normalise and np.abs(a).max() > 0 else 1.0
        noisy_max = np.ones((n, steps))
        if normalise:
            for b in fc.batches(n, bs):
                for t in range(steps):
                    m = np.abs(explained[b, t]).max()
                    noisy_max[b, t] = m if m > 0 else 1.0
        mine = []
        for s in range(n):
            ref = a[s].reshape(-1).astype(np.float64) / ref_max
            vals = []
            for t in range(steps):
                noise = np.asarray(keyed_row(s, t, lo, hi, F))
                noisy = x[s].reshape(-1).astype(np.float64) + noise
                e = explained[s, t] / noisy_max[s, t]
                flip = init.get("return_nan_when_prediction_changes", False) or ris
                changed = flip and (onnx_logits(x[s:s + 1]).argmax(-1)[0]
                                    != onnx_logits(noisy.reshape(1, C, H, W_).astype(np.float32)).argmax(-1)[0])
                if changed:
                    vals.append(np.nan)
                elif ris:
                    eps = 1e-6
                    xr = x[s].reshape(-1).astype(np.float64)
                    num = np.linalg.norm((ref - e) / (ref + (ref == 0) * eps))
                    den = np.linalg.norm((xr - noisy) / (xr + (xr == 0) * eps))
                    den += (den == 0) * eps
                    vals.append(num / den)
                elif lipschitz:
                    vals.append(np.linalg.norm(ref - e) / (np.linalg.norm(noise) + 1e-10))
                else:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        vals.append(np.linalg.norm(ref - e) / np.linalg.norm(ref))
            vals = np.asarray(vals)
            if ris or init.get("return_nan_when_prediction_changes", False):
                # np.max / np.mean: one changed prediction makes the sample NaN.
                mine.append(float(np.mean(vals)) if name == "AvgSensitivity" else float(np.max(vals)))
            elif np.isnan(vals).all():
                mine.append(np.nan)
            else:
                mine.append(float(np.nanmean(vals)) if name == "AvgSensitivity" else float(np.nanmax(vals)))
        mine = np.asarray(mine)
        assert (np.isnan(mine) == np.isnan(q)).all(), (name, mine, q)
        assert (np.isinf(mine) == np.isinf(q)).all(), (name, mine, q)
        finite = np.isfinite(q)
        d = float((np.abs(mine[finite] - q[finite]) / np.maximum(1.0, np.abs(q[finite]))).max(initial=0.0))
        print(f"{name} {params_str(init)} bs={bs} {which}: max |quantus - numpy| / max(1, |quantus|) = {d:.2g}, "
              f"NaN: {int(np.isnan(q).sum())}, inf: {int(np.isinf(q).sum())}")
        assert d < (1e-5 if ris else 1e-6), d
        if ris:
            params = {"nrSamples": init["nr_samples"], "seed": SEED}
        elif lipschitz:
            params = {"nrSamples": init["nr_samples"], "uniform": [lo, hi], "normalise": False, "seed": SEED}
        else:
            params = {"nrSamples": init["nr_samples"], "lowerBound": init["lower_bound"], "seed": SEED}
        if "upper_bound" in init:
            params["upperBound"] = init["upper_bound"]
        if not lipschitz and not ris and (init.get("normalise") or which):
            # Quantus's batch normalisation or its division by a zero norm: compat.
            params["normalise"] = bool(init.get("normalise", False))
            params.update(compat="quantus", batchSize=bs)
        if lipschitz and normalise:
            params.update(normalise=True, compat="quantus", batchSize=bs)
        if init.get("return_nan_when_prediction_changes"):
            params["nanWhenPredictionChanges"] = True
        name_of = {id(f): k for k, f in explainers.items()}
        runs.append({"metric": name, "explainer": name_of[id(explainer)], "params": params,
                     "batchSize": bs, "scores": [None if np.isnan(v) else "Infinity" if np.isinf(v) else float(v) for v in q]})
    doc = {
        "provenance": fc.provenance("scripts/make_quantus_robustness_fixture.py"),
        "data": "pf-gray.json",
        "shape": [int(v) for v in x.shape],
        "classes": K,
        "weights": fc.f32list(weights),
        "T": float(T),
        "rngSeed": SEED,
        "runs": runs,
    }
    fc.write_json(os.path.join(fc.OUT_DIR, "robustness-gray.json"), doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

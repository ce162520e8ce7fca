#!/usr/bin/env python3
"""Quantus 0.6.0 reference fixtures for the faithfulness metrics beyond PixelFlipping.

Run from the repository root:  python3 scripts/make_quantus_faithfulness_fixture.py
(needs scripts/requirements.txt; about a minute on 2 CPU cores). Reads, never rewrites, the existing
PixelFlipping fixtures __test__/fixtures/quantus/pf-gray.{json,onnx} and pf-rgb.{json,onnx}: the torch nets are
rebuilt with the builders of scripts/make_quantus_fixture.py (same seeds) and checked against the committed ONNX
files (max |logit diff| < 1e-5); x, a, y are read from pf-*.json and are NOT copied into the new files.
Writes __test__/fixtures/quantus/faithfulness-gray.json and faithfulness-rgb.json.

Data: gray = pf-gray (8 x [1,28,28], 4 classes, a [8,1,28,28], tie-free); rgb = pf-rgb (8 x [3,9,9], 3 classes,
a [8,1,9,9] per pixel, broadcast over the 3 channels by Quantus, so every pixel is 3 TIED features). The rgb runs
only use settings where this tie cannot matter (features_in_step a multiple of 3, patches span all channels,
subsets/sums ignore order). No noise was added to a (pf-gray's a is tie-free, and stays tie-free after
normalise_by_max and after abs: checked below).

Every metric is called as
  quantus.<Metric>(**init, return_aggregate=False, disable_warnings=True)(model=<torch net>, x_batch=x, y_batch=y,
                   a_batch=a, channel_first=True, batch_size=<bs, 64 unless stated>)   # softmax: metric default
with <init> exactly as recorded in each run's "params" (only non-default values are passed; "params" lists the
defaults that matter too). softmax defaults (0.6.0 __call__): RegionPerturbation, Selectivity, Monotonicity,
MonotonicityCorrelation, Sufficiency, IROF: True; FaithfulnessCorrelation, FaithfulnessEstimate, Infidelity: False.

Random draws (xai-eval keyed streams, scripts/keyed_rng.py, seed 0; patched only for the duration of the call):
  FaithfulnessCorrelation: np.random.choice(F, subset_size, replace=False) for sample n (global 0-based index) in
    run r (0-based) returns Rng.keyed(0, n, SUBSET, r).subset(F, subset_size); F = C*H*W, indices into the
    row-major channel-first flattening of x / of a broadcast to x's shape.
  MonotonicityCorrelation, perturb_baseline="uniform": the scalar baseline of sample n at feature-group step k
    (0-based) and repetition s (0-based) is low + (high-low) * Rng.keyed(0, n, PERTURBATION, k*nr_samples + s).uniform()
    (low=0, high=1), computed in float64 and then stored into the float32 input (cast to float32).
  Monotonicity (Arya), perturb_baseline="uniform": the initial all-baseline image of sample n uses
    Rng.keyed(0, n, PERTURBATION, 0).uniform(); perturbation step k (0-based) uses Rng.keyed(0, n, PERTURBATION, k+1).
  RegionPerturbation order="random" and IROF/segmentation randomness are not used (deterministic settings only).

JSON layout (one file per data set):
  { provenance: {...}, data: "pf-gray.json" (x, a, y, shape, aShape there), model: "pf-gray.onnx",
    shape: [N,C,H,W], aShape: [N,1,H,W], rngSeed: 0,
    runs: [ { metric, params: {...all parameters that matter, defaults included...}, batchSize, softmax,
              scores | curves : Quantus's per-sample output (return_aggregate=False), as returned,
              detail: {...intermediate per-sample arrays from the re-implementation, see README} } ] }
Floats are written as Python floats (float32 values are exact). Curves are lists per sample.

Self-check: every run is recomputed by an independent numpy re-implementation (functions ref_* below) driven by
the committed ONNX model through onnxruntime; (1) the sequence of model inputs must be bit-identical to the inputs
Quantus fed the torch net (forward hook), (2) outputs must agree to 1e-5 (absolute, or relative to max(1,|v|) for
Infidelity, whose values are unnormalised squares, and IROF, whose ratios f/y0 amplify the ~4e-6 torch-vs-ONNX
logit differences when y0 is small: 1e-4 relative for the ONNX-driven check, plus a torch-driven run of the same
re-implementation that must match to 1e-6 relative). Exact step-by-step semantics: __test__/fixtures/quantus/README.md.
"""
import math
import os
import sys
import warnings

import numpy as np
from scipy.stats import rankdata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402

SEED = 0
TOL = 1e-5


# ----------------------------------------------------------------------------------------------------------------
# preprocessing shared by all metrics (Metric.general_preprocess)

def preprocess_a(a, x, normalise, take_abs):
    a = np.asarray(a, dtype=np.float32)
    if normalise and not np.all(a == 0.0):
        a = a / np.max(np.abs(a))  # one scalar over the WHOLE array handed to __call__
    if take_abs:
        a = np.abs(a)
    return a


def flat_a(a, x):
    n = x.shape[0]
    return np.ascontiguousarray(np.broadcast_to(a, x.shape)).reshape(n, -1)


def pearson_rows(u, v):
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = u - u.mean(1, keepdims=True)
    v = v - v.mean(1, keepdims=True)
    return (u * v).sum(1) / np.sqrt((u * u).sum(1) * (v * v).sum(1))


def spearman_rows(u, v):
    ru = np.stack([rankdata(r) for r in u])
    rv = np.stack([rankdata(r) for r in v])
    return pearson_rows(ru, rv)


def padding(dim, ps):
    m = dim % ps
    if m == 0:
        return (0, 0)
    t = ps - m
    return (t // 2, t - t // 2)


def block_indices(C, Hp, Wp, ps):
    """Per-sample flat indices (into the padded C x Hp x Wp array) of each ps x ps block, row-major blocks,
    entries ordered channel, row, column."""
    out = []
    for bi in range(Hp // ps):
        for bj in range(Wp // ps):
            idx = [c * Hp * Wp + r * Wp + q for c in range(C) for r in range(bi * ps, (bi + 1) * ps)
                   for q in range(bj * ps, (bj + 1) * ps)]
            out.append(np.asarray(idx))
    return out


def baseline_of(arr_flat, baseline):
    """Per-sample scalar baseline over all entries of the CURRENT array (batched get_baseline_value)."""
    if baseline == "black":
        return arr_flat.min(axis=1)
    if baseline == "white":
        return arr_flat.max(axis=1)
    if baseline == "mean":
        return arr_flat.mean(axis=1)
    if isinstance(baseline, (int, float)):
        return np.full(arr_flat.shape[0], baseline)
    raise ValueError(baseline)


def pick(out, y):
    return out[np.arange(len(y)), y]


# ----------------------------------------------------------------------------------------------------------------
# independent re-implementations

def ref_region(fwd, x, y, a, ps, order, regions, baseline, selectivity=False):
    """RegionPerturbation (differences y0 - f_y, first min(regions, n_patches) patches) and Selectivity
    (raw f_y, all patches, MoRF)."""
    n, C, H, W = x.shape
    ph, pw = padding(H, ps), padding(W, ps)
    pad = ((0, 0), (0, 0), ph, pw)
    a_pad = np.pad(np.broadcast_to(a, x.shape), pad, mode="constant")
    Hp, Wp = H + sum(ph), W + sum(pw)
    blocks = block_indices(C, Hp, Wp, ps)
    a_pf = a_pad.reshape(n, -1)
    scores = np.stack([a_pf[:, b].sum(axis=-1) for b in blocks], -1)  # float32, (N, n_patches)
    if order == "morf":
        ordr = np.argsort(-scores, -1)
    else:
        ordr = np.argsort(scores, -1)
    y0 = pick(fwd(x), y)
    xp = np.pad(x, pad, mode="edge")
    K = len(blocks) if selectivity else min(regions, len(blocks))
    res = []
    for k in range(K):
        flat = xp.reshape(n, -1).copy()
        b = baseline_of(flat, baseline)
        for i in range(n):
            flat[i, blocks[ordr[i, k]]] = b[i]
        xp = flat.reshape(xp.shape)
        crop = xp[:, :, ph[0]:Hp - ph[1], pw[0]:Wp - pw[1]]
        f = pick(fwd(crop), y)
        res.append(f if selectivity else y0 - f)
    if selectivity:
        fwd.inputs.pop(0)  # Selectivity does not evaluate the unperturbed input
    return np.stack(res, 1), scores, ordr[:, :K]


def ref_faithfulness_correlation(fwd, x, y, a, nr_runs, subset_size, baseline, subsets):
    n = x.shape[0]
    af = flat_a(a, x)
    xf = x.reshape(n, -1)
    y0 = pick(fwd(x), y)
    deltas, sums = [], []
    for r in range(nr_runs):
        xp = xf.copy()
        b = baseline_of(xf, baseline)
        idx = np.stack([np.asarray(subsets[(i, r)]) for i in range(n)])
        for i in range(n):
            xp[i, idx[i]] = b[i]
        deltas.append(y0 - pick(fwd(xp.reshape(x.shape)), y))
        sums.append(af[np.arange(n)[:, None], idx].sum(axis=-1))
    deltas, sums = np.stack(deltas, 1), np.stack(sums, 1)
    return pearson_rows(sums, deltas), sums, deltas


def ref_faithfulness_estimate(fwd, x, y, a, fis, baseline):
    n = x.shape[0]
    af = flat_a(a, x)
    xf = x.reshape(n, -1)
    order = np.argsort(-af, axis=1)
    y0 = pick(fwd(x), y)
    deltas, sums = [], []
    for k in range(math.ceil(af.shape[1] / fis)):
        idx = order[:, k * fis:(k + 1) * fis]
        xp = xf.copy()
        b = baseline_of(xf, baseline)
        for i in range(n):
            xp[i, idx[i]] = b[i]
        deltas.append(y0 - pick(fwd(xp.reshape(x.shape)), y))
        sums.append(af[np.arange(n)[:, None], idx].sum(axis=-1))
    deltas, sums = np.stack(deltas, 1), np.stack(sums, 1)
    return pearson_rows(sums, deltas), sums, deltas


def ref_monotonicity(fwd, x, y, a, fis, baseline):
    """Arya et al. as implemented in 0.6.0: start from an all-baseline image and 'perturb' it with the baseline."""
    n = x.shape[0]
    af = flat_a(a, x)
    order = np.argsort(af, axis=1)  # ascending
    if baseline == "uniform":
        b0 = np.array([fc.keyed_uniform_value(SEED, i, 0) for i in range(n)])
    else:
        b0 = baseline_of(x.reshape(n, -1), baseline)
    xb = np.empty((n, af.shape[1]), dtype=np.float32)
    xb[:] = b0[:, None]
    preds = []
    for k in range(math.ceil(af.shape[1] / fis)):
        idx = order[:, k * fis:(k + 1) * fis]
        if baseline == "uniform":
            b = np.array([fc.keyed_uniform_value(SEED, i, k + 1) for i in range(n)])
        else:
            b = baseline_of(xb, baseline)
        for i in range(n):
            xb[i, idx[i]] = b[i]
        preds.append(pick(fwd(xb.reshape(x.shape)), y))
    preds = np.stack(preds, 1)
    return np.all(np.diff(preds) >= 0, axis=1), preds


def ref_monotonicity_correlation(fwd, x, y, a, fis, nr_samples, baseline, eps):
    n = x.shape[0]
    af = flat_a(a, x)
    xf = x.reshape(n, -1)
    y0 = pick(fwd(x), y)
    inv = np.ones(n)
    ok = np.abs(y0) >= eps
    assert ok.all() or not ok.any(), "Quantus raises ValueError when only some |y0| < eps"
    inv[ok] = 1.0 / np.abs(y0[ok])
    inv = inv ** 2
    order = np.argsort(af, axis=1)  # ascending
    atts, vars_ = [], []
    for k in range(math.ceil(af.shape[1] / fis)):
        idx = order[:, k * fis:(k + 1) * fis]
        ps = []
        for s in range(nr_samples):
            xp = xf.copy()
            if baseline == "uniform":
                b = np.array([fc.keyed_uniform_value(SEED, i, k * nr_samples + s) for i in range(n)])
            else:
                b = baseline_of(xf, baseline)
            for i in range(n):
                xp[i, idx[i]] = b[i]
            ps.append(pick(fwd(xp.reshape(x.shape)), y))
        ps = np.stack(ps, 1)
        vars_.append(np.mean((ps - y0[:, None]) ** 2, axis=1) * inv)
        atts.append(af[np.arange(n)[:, None], idx].sum(axis=1))
    atts, vars_ = np.stack(atts, 1), np.stack(vars_, 1)
    return spearman_rows(atts, vars_), atts, vars_


def ref_infidelity(fwd, x, y, a, patch_sizes, reps, baseline):
    n, C, H, W = x.shape
    af = flat_a(a, x)
    y0 = pick(fwd(x), y)
    results = []
    for _ in range(reps):
        sub = []
        for ps in patch_sizes:
            assert H % ps == 0 and W % ps == 0
            xp = x.copy()
            deltas, sums = [], []
            for blk in block_indices(C, H, W, ps):
                flat = xp.reshape(n, -1).copy()
                b = baseline_of(flat, baseline)
                for i in range(n):
                    flat[i, blk] = b[i]
                xp = flat.reshape(x.shape)
                deltas.append(y0 - pick(fwd(xp), y))
                sums.append(np.sum(af * (x - xp).reshape(n, -1), axis=-1))
            deltas, sums = np.stack(deltas, 1), np.stack(sums, 1)
            sub.append(np.average((deltas - sums) ** 2, axis=-1))
        results.append(np.mean(np.stack(sub, 1), -1))
    return np.mean(np.stack(results, 1), -1)


def ref_sufficiency(fwd, x, y, a_pre, threshold, batch_size):
    n = x.shape[0]
    out, dists = [], []
    for b in fc.batches(n, batch_size):
        A = a_pre[b].reshape(len(b), -1).astype(np.float64)
        V = np.var(np.vstack([A, A]), axis=0, ddof=1)
        D = np.sqrt((((A[:, None, :] - A[None, :, :]) ** 2) / V).sum(-1))
        D = D / np.max(np.abs(D))
        S = (D <= threshold).astype(np.float64) * (1 - np.eye(len(b)))
        cls = np.argmax(fwd(x[b]), axis=1)
        eq = cls[None] == cls[:, None]
        cnt = S.sum(-1)
        out.append((eq * S).sum(-1) / np.where(cnt == 0, np.inf, cnt))
        dists.append(D)
    return np.concatenate(out), dists


def ref_irof(fwd, x, y, a, segments, batch_size, baseline):
    n = x.shape[0]
    out, curves_all = [], []
    for b in fc.batches(n, batch_size):
        xb, ab = x[b], np.broadcast_to(a[b], x[b].shape)
        y0 = pick(fwd(xb), y[b])
        orders = []
        for j, i in enumerate(b):
            seg = segments[i]
            K = len(np.unique(seg))
            att = np.zeros(K)
            for s in range(K):
                att[s] = np.mean(ab[j][:, seg == s])
            orders.append(np.argsort(-att))
        Kmax = max(len(o) for o in orders)
        m = np.array([[1.0] * len(o) + [0.0] * (Kmax - len(o)) for o in orders])
        xp = xb.copy()
        curves = []
        segs = np.stack([segments[i] for i in b])
        for k in range(Kmax):
            mask = np.stack([(segs[j] == orders[j][k]) if k < len(orders[j]) else np.zeros_like(segs[j], bool)
                             for j in range(len(b))])[:, None]
            if baseline == "mean":
                base = xp.mean()  # ONE scalar: mean of the whole current batch array
            elif baseline == "black":
                base = xp.min()
            else:
                base = np.float32(baseline)
            xp = np.where(mask, base, xp)
            curves.append(pick(fwd(xp), y[b]) / y0)
        curves = np.stack(curves, 1) * m
        out.append(m.sum(-1) - np.trapezoid(curves, dx=1, axis=1))
        curves_all += [c[: int(mm.sum())] for c, mm in zip(curves, m)]
    return np.concatenate(out), curves_all


# ----------------------------------------------------------------------------------------------------------------

def main():
    import quantus
    import torch

    assert quantus.__version__ == "0.6.0", quantus.__version__
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    def run_case(name, plan):
        x, a, y, model, onnx_logits = fc.load_case(name)
        n, C, H, W = x.shape
        F = C * H * W
        runs = []

        def call(metric, softmax, bs=64, **kw):
            with fc.record_forwards(model) as seen:
                out = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(),
                             channel_first=True, batch_size=bs, **kw)
            return out, seen

        def check(tag, q, mine, tol=TOL, rel=False):
            q = np.asarray(q, dtype=np.float64)
            mine = np.asarray(mine, dtype=np.float64)
            assert q.shape == mine.shape, (tag, q.shape, mine.shape)
            same_nan = np.isnan(q) == np.isnan(mine)
            assert same_nan.all(), (tag, q, mine)
            d = np.abs(np.nan_to_num(q) - np.nan_to_num(mine))
            if rel:
                d = d / np.maximum(1.0, np.abs(np.nan_to_num(q)))
            d = float(d.max())
            print(f"[{name}] {tag}: max diff {d:.2g}")
            assert d < tol, (tag, d)
            return d

        # attributions are tie-free (a, normalised a, |normalised a|) per pixel
        for take_abs in (False, True):
            ap = preprocess_a(a, x, True, take_abs).reshape(n, -1)
            assert all(len(np.unique(r)) == r.size for r in ap), "ties in a"

        # ---------------- RegionPerturbation
        for ps, order, regions in plan["region"]:
            m = quantus.RegionPerturbation(patch_size=ps, order=order, regions_evaluation=regions,
                                           return_aggregate=False, disable_warnings=True)
            q, seen = call(m, softmax=True)
            fwd = fc.Forward(onnx_logits, True)
            mine, scores, ordr = ref_region(fwd, x, y, preprocess_a(a, x, True, False), ps, order, regions, "black")
            nf = fc.same_forwards(seen, fwd.inputs, "region")
            d = check(f"RegionPerturbation ps={ps} {order} regions={regions} ({nf} forwards)", q, mine)
            runs.append({"metric": "RegionPerturbation",
                         "params": {"patch_size": ps, "order": order, "regions_evaluation": regions,
                                    "perturb_baseline": "black", "normalise": True, "abs": False,
                                    "padding": [list(padding(H, ps)), list(padding(W, ps))]},
                         "softmax": True, "batchSize": 64, "curves": fc.rows(q),
                         "detail": {"patchScores": fc.rows(scores, np.float32), "patchOrder": ordr.tolist()},
                         "selfCheckMaxDiff": d})

        # ---------------- Selectivity
        for ps in plan["selectivity"]:
            m = quantus.Selectivity(patch_size=ps, return_aggregate=False, disable_warnings=True)
            q, seen = call(m, softmax=True)
            fwd = fc.Forward(onnx_logits, True)
            mine, scores, ordr = ref_region(fwd, x, y, preprocess_a(a, x, True, False), ps, "morf", 0, "black",
                                            selectivity=True)
            nf = fc.same_forwards(seen, fwd.inputs, "selectivity")
            d = check(f"Selectivity ps={ps} ({nf} forwards)", q, mine)
            runs.append({"metric": "Selectivity",
                         "params": {"patch_size": ps, "perturb_baseline": "black", "normalise": True, "abs": False,
                                    "padding": [list(padding(H, ps)), list(padding(W, ps))]},
                         "softmax": True, "batchSize": 64, "curves": fc.rows(q),
                         "detail": {"patchOrder": ordr.tolist()}, "selfCheckMaxDiff": d})

        # ---------------- FaithfulnessCorrelation
        for nr_runs, subset_size in plan["fcorr"]:
            m = quantus.FaithfulnessCorrelation(nr_runs=nr_runs, subset_size=subset_size, return_aggregate=False,
                                                disable_warnings=True)
            kc = fc.KeyedChoice(SEED, n, 64, nr_runs, F, subset_size)
            with fc.patched(np.random, "choice", kc):
                q, seen = call(m, softmax=False)
            kc.done()
            fwd = fc.Forward(onnx_logits, False)
            mine, sums, deltas = ref_faithfulness_correlation(fwd, x, y, preprocess_a(a, x, True, False), nr_runs,
                                                              subset_size, "black", kc.drawn)
            nf = fc.same_forwards(seen, fwd.inputs, "fcorr")
            d = check(f"FaithfulnessCorrelation runs={nr_runs} subset={subset_size} ({nf} forwards)", q, mine)
            runs.append({"metric": "FaithfulnessCorrelation",
                         "params": {"nr_runs": nr_runs, "subset_size": subset_size, "perturb_baseline": "black",
                                    "similarity_func": "correlation_pearson", "normalise": True, "abs": False,
                                    "rng": "subset(n, r) = Rng.keyed(seed, n, SUBSET, r).subset(F, subset_size)"},
                         "softmax": False, "batchSize": 64, "rngSeed": SEED, "scores": fc.flist(q),
                         "detail": {"attSums": fc.rows(sums, np.float32), "predDeltas": fc.rows(deltas, np.float32),
                                    "subsetSample0Run0": [int(v) for v in kc.drawn[(0, 0)]]},
                         "selfCheckMaxDiff": d})

        # ---------------- FaithfulnessEstimate
        for fis in plan["festimate"]:
            m = quantus.FaithfulnessEstimate(features_in_step=fis, return_aggregate=False, disable_warnings=True)
            q, seen = call(m, softmax=False)
            fwd = fc.Forward(onnx_logits, False)
            mine, sums, deltas = ref_faithfulness_estimate(fwd, x, y, preprocess_a(a, x, True, False), fis, "black")
            nf = fc.same_forwards(seen, fwd.inputs, "festimate")
            d = check(f"FaithfulnessEstimate fis={fis} ({nf} forwards)", q, mine)
            runs.append({"metric": "FaithfulnessEstimate",
                         "params": {"features_in_step": fis, "perturb_baseline": "black",
                                    "similarity_func": "correlation_pearson", "normalise": True, "abs": False},
                         "softmax": False, "batchSize": 64, "scores": fc.flist(q),
                         "detail": {"attSums": fc.rows(sums, np.float32),
                                    "predDeltas": fc.rows(deltas, np.float32)} if fis >= 9 else {},
                         "selfCheckMaxDiff": d})

        # ---------------- Monotonicity (Arya et al.)
        for fis, baseline in plan["monotonicity"]:
            m = quantus.Monotonicity(features_in_step=fis, perturb_baseline=baseline, return_aggregate=False,
                                     disable_warnings=True)
            steps = math.ceil(F / fis)
            if baseline == "uniform":
                ku = fc.KeyedUniform(SEED, n, 64, list(range(steps + 1)))
                with fc.patched(np.random, "uniform", ku):
                    q, seen = call(m, softmax=True)
                ku.done()
            else:
                q, seen = call(m, softmax=True)
            fwd = fc.Forward(onnx_logits, True)
            mine, preds = ref_monotonicity(fwd, x, y, preprocess_a(a, x, True, True), fis, baseline)
            nf = fc.same_forwards(seen, fwd.inputs, "monotonicity")
            assert list(map(bool, q)) == list(map(bool, mine)), (q, mine)
            print(f"[{name}] Monotonicity fis={fis} {baseline}: {list(map(bool, q))} ({nf} forwards, inputs identical)")
            params = {"features_in_step": fis, "perturb_baseline": baseline, "normalise": True, "abs": True}
            if baseline == "uniform":
                params["rng"] = ("initial fill: Rng.keyed(seed, n, PERTURBATION, 0).uniform(); step k: "
                                 "Rng.keyed(seed, n, PERTURBATION, k+1).uniform(); low=0, high=1")
            runs.append({"metric": "Monotonicity", "params": params, "softmax": True, "batchSize": 64,
                         "rngSeed": SEED if baseline == "uniform" else None,
                         "scores": [bool(v) for v in q],
                         "detail": {"preds": fc.rows(preds, np.float32),
                                    **({"uniformSample0FirstCalls": [ku.drawn[(0, t)] for t in range(4)]}
                                       if baseline == "uniform" else {})},
                         "selfCheckMaxDiff": 0.0})

        # ---------------- MonotonicityCorrelation
        for fis, nr_samples, baseline in plan["mcorr"]:
            m = quantus.MonotonicityCorrelation(features_in_step=fis, nr_samples=nr_samples,
                                                perturb_baseline=baseline, return_aggregate=False,
                                                disable_warnings=True)
            steps = math.ceil(F / fis)
            if baseline == "uniform":
                ku = fc.KeyedUniform(SEED, n, 64, list(range(steps * nr_samples)))
                with fc.patched(np.random, "uniform", ku):
                    q, seen = call(m, softmax=True)
                ku.done()
            else:
                q, seen = call(m, softmax=True)
            fwd = fc.Forward(onnx_logits, True)
            mine, atts, vars_ = ref_monotonicity_correlation(fwd, x, y, preprocess_a(a, x, True, True), fis,
                                                             nr_samples, baseline, 1e-5)
            nf = fc.same_forwards(seen, fwd.inputs, "mcorr")
            d = check(f"MonotonicityCorrelation fis={fis} samples={nr_samples} {baseline} ({nf} forwards)", q, mine)
            params = {"features_in_step": fis, "nr_samples": nr_samples, "perturb_baseline": baseline, "eps": 1e-5,
                      "similarity_func": "correlation_spearman", "normalise": True, "abs": True}
            if baseline == "uniform":
                params["rng"] = ("value(n, k, s) = low + (high-low) * Rng.keyed(seed, n, PERTURBATION, "
                                 "k*nr_samples + s).uniform(); low=0, high=1")
            runs.append({"metric": "MonotonicityCorrelation", "params": params, "softmax": True, "batchSize": 64,
                         "rngSeed": SEED if baseline == "uniform" else None, "scores": fc.flist(q),
                         "detail": {"atts": fc.rows(atts, np.float32), "vars": fc.rows(vars_),
                                    **({"uniformSample0FirstCalls": [ku.drawn[(0, t)] for t in range(4)]}
                                       if baseline == "uniform" else {})},
                         "selfCheckMaxDiff": d})

        # ---------------- Infidelity
        for patch_sizes, reps in plan["infidelity"]:
            m = quantus.Infidelity(perturb_patch_sizes=list(patch_sizes), n_perturb_samples=reps,
                                   return_aggregate=False, disable_warnings=True)
            q, seen = call(m, softmax=False)
            fwd = fc.Forward(onnx_logits, False)
            mine = ref_infidelity(fwd, x, y, preprocess_a(a, x, False, False), patch_sizes, reps, "black")
            nf = fc.same_forwards(seen, fwd.inputs, "infidelity")
            d = check(f"Infidelity ps={patch_sizes} reps={reps} ({nf} forwards)", q, mine, rel=True)
            runs.append({"metric": "Infidelity",
                         "params": {"perturb_patch_sizes": list(patch_sizes), "n_perturb_samples": reps,
                                    "loss_func": "mse", "perturb_baseline": "black", "normalise": False,
                                    "abs": False},
                         "softmax": False, "batchSize": 64, "scores": fc.flist(q), "selfCheckMaxDiff": d,
                         "selfCheckTolerance": "relative to max(1,|v|)"})

        # ---------------- Sufficiency
        a_suf = preprocess_a(a, x, True, True)
        fwd0 = fc.Forward(onnx_logits, True)
        _, d_all = ref_sufficiency(fwd0, x, y, a_suf, 0.6, 64)
        _, d_4 = ref_sufficiency(fwd0, x, y, a_suf, 0.6, 4)
        thresholds = [0.6]  # Quantus default; all-zero here (normalised distances of random maps are ~0.9-1)
        for dm in (d_all[0], d_4[0]):  # + a threshold near the median off-diagonal distance (batch 8, batch 4)
            off = np.sort(dm[~np.eye(len(dm), dtype=bool)])
            thresholds.append(float(np.round((off[len(off) // 2 - 2] + off[len(off) // 2]) / 2, 4)))
        for threshold in thresholds:
            for bs in plan["sufficiency_bs"]:
                m = quantus.Sufficiency(threshold=threshold, return_aggregate=False, disable_warnings=True)
                q, seen = call(m, softmax=True, bs=bs)
                fwd = fc.Forward(onnx_logits, True)
                mine, dists = ref_sufficiency(fwd, x, y, a_suf, threshold, bs)
                nf = fc.same_forwards(seen, fwd.inputs, "sufficiency")
                d = check(f"Sufficiency threshold={threshold} batch_size={bs} ({nf} forwards)", q, mine)
                runs.append({"metric": "Sufficiency",
                             "params": {"threshold": threshold, "distance_func": "seuclidean", "normalise": True,
                                        "abs": True},
                             "softmax": True, "batchSize": bs, "scores": fc.flist(q),
                             "detail": {"normalisedDistances": [fc.rows(dm) for dm in dists],
                                        "predictedClasses": [int(v) for v in np.argmax(fwd0(x), 1)]},
                             "selfCheckMaxDiff": d})

        # ---------------- IROF (C == 1 only: Quantus asserts for C > 1)
        if C == 1:
            from skimage.segmentation import slic

            segments = [slic(np.moveaxis(xi, 0, -1).astype("double"), start_label=0) for xi in x]
            for baseline, bs in plan["irof"]:
                m = quantus.IROF(perturb_baseline=baseline, return_aggregate=False, disable_warnings=True)
                q, seen = call(m, softmax=True, bs=bs)
                fwd = fc.Forward(onnx_logits, True)
                mine, curves = ref_irof(fwd, x, y, preprocess_a(a, x, True, False), segments, bs, baseline)
                nf = fc.same_forwards(seen, fwd.inputs, "irof")
                # f/y0 amplifies the ~4e-6 torch-vs-ONNX logit differences when y0 is small: the ONNX-driven
                # check uses 1e-4 relative to max(1,|v|); the same re-implementation driven by the torch net
                # (torch float32 softmax, as Quantus) must match to 1e-6 relative.
                d = check(f"IROF baseline={baseline} batch_size={bs} ({nf} forwards, ONNX)", q, mine, tol=1e-4,
                          rel=True)
                mine_t, _ = ref_irof(fc.Forward(onnx_logits, True, model), x, y, preprocess_a(a, x, True, False),
                                     segments, bs, baseline)
                check(f"IROF baseline={baseline} batch_size={bs} (torch-driven)", q, mine_t, tol=1e-6, rel=True)
                runs.append({"metric": "IROF",
                             "params": {"segmentation_method": "slic", "perturb_baseline": baseline,
                                        "normalise": True, "abs": False},
                             "softmax": True, "batchSize": bs, "scores": fc.flist(q),
                             "detail": {"curves": fc.rows(curves) if len({len(c) for c in curves}) == 1
                                        else [fc.flist(c) for c in curves]},
                             "selfCheckMaxDiff": d,
                             "selfCheckTolerance": "1e-4 relative to max(1,|v|) (ONNX); 1e-6 torch-driven"})
            seg_doc = {"call": "skimage.segmentation.slic(np.moveaxis(x[n],0,-1).astype('double'), start_label=0)",
                       "shape": [n, H, W], "nSegments": [int(len(np.unique(s))) for s in segments],
                       "labels": [int(v) for v in np.stack(segments).ravel()]}
        else:
            seg_doc = None

        doc = {"provenance": fc.provenance("scripts/make_quantus_faithfulness_fixture.py"),
               "data": f"{name}.json", "model": f"{name}.onnx", "input": "input", "output": "logits",
               "dataNote": "x, a, y, shape, aShape: read them from the data file (pf-*.json)",
               "shape": list(x.shape), "aShape": list(a.shape), "rngSeed": SEED, "runs": runs}
        if seg_doc is not None:
            doc["irofSegments"] = seg_doc
        fc.write_json(os.path.join(fc.OUT_DIR, f"faithfulness-{name[3:]}.json"), doc)

    run_case("pf-gray", {
        "region": [(4, "morf", 10), (4, "lerf", 10), (7, "morf", 10), (7, "lerf", 10), (8, "morf", 100),
                   (8, "lerf", 100)],
        "selectivity": [4, 7, 8],
        "fcorr": [(100, 224), (10, 28)],
        "festimate": [1, 28, 49],
        "monotonicity": [(28, "black"), (49, "uniform"), (28, "uniform")],
        "mcorr": [(28, 3, "black"), (28, 3, "uniform"), (49, 3, "black"), (49, 3, "uniform")],
        "infidelity": [((4,), 10), ((7,), 1), ((4, 7), 2)],
        "sufficiency_bs": [64, 4, 3],
        "irof": [("mean", 64), ("mean", 4), ("black", 64)],
    })
    run_case("pf-rgb", {
        "region": [(3, "morf", 10), (3, "lerf", 10), (4, "morf", 10), (4, "lerf", 10)],
        "selectivity": [3, 4],
        "fcorr": [(20, 60), (10, 9)],
        "festimate": [3, 9, 27],
        "monotonicity": [(9, "black"), (9, "uniform")],
        "mcorr": [(9, 3, "black"), (9, 3, "uniform"), (27, 3, "uniform")],
        "infidelity": [((3,), 1), ((9,), 1), ((3, 9), 2)],
        "sufficiency_bs": [64, 4],
        "irof": [],
    })


if __name__ == "__main__":
    sys.exit(main())

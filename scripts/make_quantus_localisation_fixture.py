#!/usr/bin/env python3
"""Quantus 0.6.0 reference fixture for the localisation metrics.

Run from the repository root:  python3 scripts/make_quantus_localisation_fixture.py
(needs scripts/requirements.txt; a few seconds). Writes __test__/fixtures/quantus/localisation.json.

Data (nothing copied into the fixture but the small synthetic case):
  demo: the embedded demo data set data/demo (64 x [1,28,28], object masks [64,28,28] uint8), attributions
        "gradient", "occlusion" and "random" ([64,1,28,28] float32, read from the .bin files).
  edge: 4 synthetic samples [1,4,4] written into the fixture: sample 0 an empty mask, sample 1 a mask covering the
        whole image, sample 2 two tied maxima (one inside, one outside the mask, the first in row-major order
        outside), sample 3 negative relevance outside the mask.
Every metric is called as
  quantus.<Metric>(**init, return_aggregate=False, disable_warnings=True)(model=None, x_batch=x, y_batch=y,
                   a_batch=a, s_batch=masks[:, None], channel_first=True)
with the default batch size 64 and the metric's default normalise (normalise_by_max over the whole batch) and abs.
Scores are Quantus's per-sample output, as returned (PointingGame: bools as 0/1).

Rank-based metrics (RelevanceRankAccuracy, TopKIntersection) depend on numpy's unstable argsort when the value at
the cut is tied: a run where some sample has a tie across its cut is left out (listed under "skipped"), so the
fixture does not depend on the tie order.
"""
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DEMO = os.path.join("data", "demo")
OUT = os.path.join("__test__", "fixtures", "quantus", "localisation.json")


def demo():
    with open(os.path.join(DEMO, "manifest.json")) as f:
        m = json.load(f)
    n, c, h, w = m["shape"]
    x = np.fromfile(os.path.join(DEMO, m["x"]), dtype="<f4").reshape(n, c, h, w)
    y = np.fromfile(os.path.join(DEMO, m["y"]), dtype="<i4").astype(np.int64)
    s = np.fromfile(os.path.join(DEMO, m["masks"]), dtype=np.uint8).reshape(n, h, w)
    a = {k: np.fromfile(os.path.join(DEMO, m["attributions"][k]), dtype="<f4").reshape(n, 1, h, w)
         for k in ("gradient", "occlusion", "random")}
    return x, y, s, a


def edge():
    x = np.zeros((4, 1, 4, 4), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    rng = np.random.default_rng(7)
    a = rng.uniform(0.1, 1.0, size=(4, 1, 4, 4)).astype(np.float32)
    s = np.zeros((4, 4, 4), dtype=np.uint8)
    s[1] = 1
    a[2, 0, 0, 1] = 2.0  # first maximum, outside
    a[2, 0, 3, 3] = 2.0  # tied maximum, inside
    s[2, 2:, 2:] = 1
    s[3, 1:3, 1:3] = 1
    a[3, 0, 0, :] = -3.0  # negative relevance outside: inside share > 1
    return x, y, s, a


def cut_tied(a, s, k_of):
    """Whether some sample's value at the k-th rank is tied with one across the cut (unstable-sort dependent)."""
    flat = a.reshape(len(a), -1)
    for n, row in enumerate(flat):
        k = k_of(n)
        if k == 0 or k >= row.size:
            continue
        v = np.sort(row)[::-1]
        if v[k - 1] == v[k]:
            return True
    return False


def main():
    import quantus

    warnings.filterwarnings("ignore")
    runs = []
    skipped = []

    def call(metric, init, x, y, a, s, data):
        q = getattr(quantus, metric)(**init, return_aggregate=False, disable_warnings=True)
        out = q(model=None, x_batch=x, y_batch=y, a_batch=a, s_batch=s[:, None], channel_first=True)
        scores = [None if np.isnan(v) else float(v) for v in np.asarray(out, dtype=np.float64)]  # NaN -> null
        runs.append({"metric": metric, "params": init, "data": data, "scores": scores})

    x, y, s, attrs = demo()
    ex, ey, es, ea = edge()
    sizes = s.reshape(len(s), -1).sum(1)
    for method, a in attrs.items():
        data = f"demo:{method}"
        call("PointingGame", {}, x, y, a, s, data)
        call("RelevanceMassAccuracy", {}, x, y, a, s, data)
        call("RelevanceMassAccuracy", {"abs": True}, x, y, a, s, data)
        # normalise_by_max then abs: |a| / max|a| ranks as |a| does.
        for abs_ in (False, True):
            r = np.abs(a) if abs_ else a
            if cut_tied(r, s, lambda n: int(sizes[n])):
                skipped.append({"metric": "RelevanceRankAccuracy", "data": data, "abs": abs_, "why": "tie across a cut"})
                continue
            call("RelevanceRankAccuracy", {"abs": abs_} if abs_ else {}, x, y, a, s, data)
        for k, ci in ((50, False), (50, True), (500, False)):
            if cut_tied(a, s, lambda n: k):
                skipped.append({"metric": "TopKIntersection", "data": data, "k": k, "why": "tie across the cut"})
                continue
            init = {"k": k}
            if ci:
                init["concept_influence"] = True
            call("TopKIntersection", init, x, y, a, s, data)
        call("AttributionLocalisation", {}, x, y, a, s, data)
        call("AttributionLocalisation", {"abs": False, "positive_attributions": True}, x, y, a, s, data)
        call("AUC", {}, x, y, a, s, data)
    call("PointingGame", {}, ex, ey, ea, es, "edge")
    call("RelevanceMassAccuracy", {}, ex, ey, ea, es, "edge")
    call("AttributionLocalisation", {"abs": False}, ex, ey, ea, es, "edge")
    call("AUC", {}, ex, ey, ea, es, "edge")

    import sklearn

    doc = {
        "provenance": {"tool": "quantus", "version": quantus.__version__, "script": "scripts/make_quantus_localisation_fixture.py",
                       "numpy": np.__version__, "scikit-learn": sklearn.__version__},
        "edge": {"shape": list(ex.shape), "a": [float(v) for v in ea.ravel()], "masks": [int(v) for v in es.ravel()],
                 "y": [int(v) for v in ey]},
        "runs": runs,
        "skipped": skipped,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    print(f"wrote {OUT}: {len(runs)} runs")


if __name__ == "__main__":
    main()

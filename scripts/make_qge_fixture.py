#!/usr/bin/env python3
"""Quantus InverseEstimation (QGE) reference fixture: __test__/fixtures/quantus/qge.json.

InverseEstimation exists only on the unmerged Quantus branch `xai-inverse-estimation` @ a5a98cde
(understandable-machine-intelligence-lab/Quantus, file quantus/metrics/inverse_estimation.py, git blob
c6b2fc9990ad859589affbbdb0a43251d6712899, LGPL-3.0). Its code is NOT part of this repository; obtain it with e.g.
    git clone https://github.com/understandable-machine-intelligence-lab/Quantus /tmp/Quantus
    git -C /tmp/Quantus show a5a98cdef41e5f922713878405f311a44fb27da0:quantus/metrics/inverse_estimation.py \
        > /tmp/inverse_estimation.py
and run from the repository root:
    QUANTUS_INVERSE_ESTIMATION=/tmp/inverse_estimation.py python3 scripts/make_qge_fixture.py
    (or: python3 scripts/make_qge_fixture.py /tmp/inverse_estimation.py)
The file's git blob hash is checked. It is loaded at run time as module `quantus.metrics.inverse_estimation`
next to the pip-installed quantus==0.6.0 (nothing is written into site-packages). Two shims make the branch file
run on 0.6.0, both replicating what the branch changed elsewhere:
  * the branch's Metric.general_preprocess stores channel_first (inferred if None), model_predict_kwargs (or {}),
    softmax and device on the metric; InverseEstimation.evaluate_batch reads them (self.channel_first,
    self.softmax, ...) to forward them to the wrapped metric. 0.6.0's base does not, so a subclass sets them
    exactly that way before calling 0.6.0's general_preprocess.
  * quantus.helpers.plotting.plot_inverse_curves (referenced only as a default plot function) gets a stub.
All the wrapped metrics are 0.6.0's (the branch also edits some of them; those edits are not used).

What is run (data/models of pf-gray / pf-rgb, see make_quantus_faithfulness_fixture.py; x, a, y are NOT copied):
  ie = InverseEstimation(metric_init=<M>, inverse_method=im, return_mean_per_sample=rm, return_auc_per_sample=ra,
                         return_aggregate=False, disable_warnings=True)        # abs=False, normalise=False
  ie(model, x, y, a, channel_first=True, softmax=<sm, default True>, batch_size=64)
  with M (constructed with disable_warnings=True, otherwise defaults) in
    PixelFlipping(features_in_step=28 | 3 (rgb), perturb_baseline="black")
    RegionPerturbation(patch_size=7, order="morf", regions_evaluation=10)   (gray)
    FaithfulnessEstimate(features_in_step=28)                                (gray; softmax True and False)
  im in {"sign-flip", "value-swap"}; (rm, ra) in {(True, False), (False, True)} for curve metrics.
  Recorded per run: qge = ie output (per sample), original = ie.scores_ori, inverse = ie.scores_inv
  (the wrapped metric's own outputs for a and for a_inv).
  area_between_curves=True (PixelFlipping, sign-flip) raises AttributeError on the branch (a list reaches
  aggregate_inverse_scores, which reads `.size`); recorded as {"raises": ...}.

JSON layout: { provenance, inverseEstimation: {branch, commit, blob, shims}, cases: [ { data: "pf-gray.json",
  model: "pf-gray.onnx", shape, aShape, runs: [ { wrapped: {metric, params}, inverse_method, return_mean_per_sample,
  return_auc_per_sample, area_between_curves, softmax, batchSize, qge: [N], original: [N] | [[T] x N],
  inverse: same, selfCheckMaxDiff } | { ..., raises: "<exception>" } ] } ] }

Self-check: an independent re-implementation (value-swap/sign-flip inverse written from the spec, the wrapped
metric from make_quantus_faithfulness_fixture.py / make_quantus_fixture.py, driven by the ONNX model) must
reproduce qge, original and inverse to 1e-5.
"""
import hashlib
import importlib.util
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_common as fc  # noqa: E402
import make_quantus_faithfulness_fixture as mf  # noqa: E402

BRANCH, COMMIT = "xai-inverse-estimation", "a5a98cdef41e5f922713878405f311a44fb27da0"
BLOB = "c6b2fc9990ad859589affbbdb0a43251d6712899"
TOL = 1e-5


def git_blob_sha(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_inverse_estimation(path):
    import quantus
    from quantus.helpers import plotting, utils

    with open(path, "rb") as f:
        data = f.read()
    got = git_blob_sha(data)
    assert got == BLOB, f"{path}: git blob {got}, expected {BLOB} (branch {BRANCH} @ {COMMIT[:8]})"
    if not hasattr(plotting, "plot_inverse_curves"):
        plotting.plot_inverse_curves = lambda *a, **k: None  # stub: only referenced as a default plot function
    spec = importlib.util.spec_from_file_location("quantus.metrics.inverse_estimation", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    quantus.metrics.inverse_estimation = mod

    class InverseEstimation(mod.InverseEstimation):
        """Branch class + the attributes the branch's Metric.general_preprocess stores (0.6.0's does not)."""

        def general_preprocess(self, model, x_batch, y_batch, a_batch, s_batch, channel_first, explain_func,
                               explain_func_kwargs, model_predict_kwargs, softmax, device, custom_batch):
            self.channel_first = channel_first
            self.model_predict_kwargs = model_predict_kwargs or {}
            self.softmax = softmax
            self.device = device
            if not isinstance(self.channel_first, bool):
                self.channel_first = utils.infer_channel_first(x_batch)
            return super().general_preprocess(model, x_batch, y_batch, a_batch, s_batch, channel_first,
                                              explain_func, explain_func_kwargs, model_predict_kwargs, softmax,
                                              device, custom_batch)

    return InverseEstimation


def inverse(a, method):
    """Spec qge-srg.md §1.3, per sample over the flattened attribution (here [1,H,W])."""
    flat = a.reshape(a.shape[0], -1)
    if method == "sign-flip":
        out = -flat
    else:
        out = np.empty_like(flat)
        for i, r in enumerate(flat):
            idx = np.argsort(r, kind="stable")  # a is tie-free, so the sort kind does not matter
            out[i, idx] = r[idx[::-1]]
    return out.reshape(a.shape)


def main():
    import quantus
    import torch

    assert quantus.__version__ == "0.6.0", quantus.__version__
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("QUANTUS_INVERSE_ESTIMATION")
    assert path, "give the branch's inverse_estimation.py as argument or in QUANTUS_INVERSE_ESTIMATION"
    IE = load_inverse_estimation(path)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    cases = []
    for name, pf_fis, extra in (("pf-gray", 28, True), ("pf-rgb", 3, False)):
        x, a, y, model, onnx_logits = fc.load_case(name)
        runs = []

        wrapped = [("PixelFlipping", {"features_in_step": pf_fis, "perturb_baseline": "black"}, True, True)]
        if extra:
            wrapped += [("RegionPerturbation", {"patch_size": 7, "order": "morf", "regions_evaluation": 10}, True,
                         True),
                        ("FaithfulnessEstimate", {"features_in_step": 28}, False, True),
                        ("FaithfulnessEstimate", {"features_in_step": 28}, False, False)]

        def reference(metric, params, attr, softmax):
            fwd = fc.Forward(onnx_logits, softmax)
            ap = mf.preprocess_a(attr, x, True, False)  # the wrapped metric's own normalise (True), abs False
            if metric == "PixelFlipping":
                assert softmax
                return fc.mqf.reference_pixel_flipping(onnx_logits, x, y, ap, params["features_in_step"],
                                                       params["perturb_baseline"]).astype(np.float64)
            if metric == "RegionPerturbation":
                return mf.ref_region(fwd, x, y, ap, params["patch_size"], params["order"],
                                     params["regions_evaluation"], "black")[0].astype(np.float64)
            if metric == "FaithfulnessEstimate":
                return mf.ref_faithfulness_estimate(fwd, x, y, ap, params["features_in_step"], "black")[0]
            raise ValueError(metric)

        for metric, params, curve, softmax in wrapped:
            modes = [(True, False), (False, True)] if curve else [(True, False)]
            for method in ("sign-flip", "value-swap"):
                for rm, ra in modes:
                    inner = getattr(quantus, metric)(**params, disable_warnings=True)
                    ie = IE(metric_init=inner, inverse_method=method, return_mean_per_sample=rm,
                            return_auc_per_sample=ra, return_aggregate=False, disable_warnings=True)
                    q = ie(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(), channel_first=True,
                           softmax=softmax, batch_size=64)
                    ori = np.asarray(ie.scores_ori, dtype=np.float64)
                    inv = np.asarray(ie.scores_inv, dtype=np.float64)
                    # re-implementation
                    r_ori = reference(metric, params, a, softmax)
                    r_inv = reference(metric, params, inverse(a, method), softmax)
                    diff = r_ori - r_inv
                    if diff.ndim == 1:
                        r_q = diff
                    elif rm:
                        r_q = diff.mean(axis=1)
                    else:
                        r_q = np.trapezoid(diff, dx=1, axis=1)
                    d = max(float(np.abs(np.asarray(q) - r_q).max()), float(np.abs(ori - r_ori).max()),
                            float(np.abs(inv - r_inv).max()))
                    tag = f"[{name}] QGE {metric} {params} {method} mean={rm} auc={ra} softmax={softmax}"
                    print(f"{tag}: max diff {d:.2g}; qge[:3]={np.round(q[:3], 5).tolist()}")
                    assert d < TOL, (tag, d)
                    runs.append({"wrapped": {"metric": metric,
                                             "params": {**params, "normalise": True, "abs": False}},
                                 "inverse_method": method, "return_mean_per_sample": rm, "return_auc_per_sample": ra,
                                 "area_between_curves": False, "abs": False, "normalise": False, "softmax": softmax,
                                 "batchSize": 64, "qge": fc.flist(q),
                                 "original": fc.rows(ori) if ori.ndim == 2 else fc.flist(ori),
                                 "inverse": fc.rows(inv) if inv.ndim == 2 else fc.flist(inv),
                                 "selfCheckMaxDiff": d})
        # area_between_curves=True: on the branch @a5a98cde this raises, because evaluate_batch hands the wrapped
        # metric's raw output (a Python list) to aggregate_inverse_scores, which reads `.size`. Recorded as such.
        inner = quantus.PixelFlipping(features_in_step=pf_fis, perturb_baseline="black", disable_warnings=True)
        ie = IE(metric_init=inner, inverse_method="sign-flip", area_between_curves=True, return_aggregate=False,
                disable_warnings=True)
        try:
            ie(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(), channel_first=True, batch_size=64)
            raise AssertionError("area_between_curves=True unexpectedly ran; record its output instead")
        except AttributeError as e:
            print(f"[{name}] area_between_curves=True raises AttributeError: {e}")
            runs.append({"wrapped": {"metric": "PixelFlipping",
                                     "params": {"features_in_step": pf_fis, "perturb_baseline": "black",
                                                "normalise": True, "abs": False}},
                         "inverse_method": "sign-flip", "return_mean_per_sample": True,
                         "return_auc_per_sample": False, "area_between_curves": True, "abs": False,
                         "normalise": False, "softmax": True, "batchSize": 64,
                         "raises": f"AttributeError: {e}"})
        cases.append({"data": f"{name}.json", "model": f"{name}.onnx", "shape": list(x.shape),
                      "aShape": list(a.shape), "runs": runs})

    doc = {"provenance": {**fc.provenance("scripts/make_qge_fixture.py"),
                          "inverseEstimation": {"repo": "understandable-machine-intelligence-lab/Quantus",
                                                "branch": BRANCH, "commit": COMMIT,
                                                "file": "quantus/metrics/inverse_estimation.py", "gitBlob": BLOB,
                                                "shims": ["Metric.general_preprocess stores channel_first (inferred "
                                                          "if None), model_predict_kwargs or {}, softmax, device "
                                                          "(as the branch's base.py)",
                                                          "plotting.plot_inverse_curves stub"]}},
           "dataNote": "x, a, y: read them from each case's data file (pf-*.json)",
           "cases": cases}
    fc.write_json(os.path.join(fc.OUT_DIR, "qge.json"), doc)


if __name__ == "__main__":
    sys.exit(main())

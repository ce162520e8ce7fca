#!/usr/bin/env python3
"""Quantus 0.6.0 parity fixture for ROAD (quantus-semantics.md section 1.4).

Run from the repository root:  python3 scripts/make_quantus_road_fixture.py
Uses the embedded demo (data/demo: the trained shapes CNN, its first N samples [1,28,28] and their
gradient attributions, checked tie-free per sample; |gradient| and the other methods
have ties, e.g. zeros on the background), the ONNX model
wrapped as a torch module that calls onnxruntime, so both sides run the very same model.
Writes __test__/fixtures/quantus/road-demo.json:
  { provenance, samples: N, runs: [ {method, params: {percentages, noise}, accuracy: {p: acc}} ] }

quantus.ROAD(percentages=..., noise=0.0) is deterministic; with noise > 0 Quantus draws from numpy's
global RNG, which xai-eval does not reproduce, so only noise = 0 is recorded. batch_size >= N, so
Quantus's "first batch only" result covers every sample.
"""
import json
import os
import platform
import sys

import numpy as np
import onnxruntime
import torch
import torch.nn as nn

DIR = os.path.join("__test__", "fixtures", "quantus")
N = 32


class OnnxModule(nn.Module):
    """A torch module whose forward runs the fixture's ONNX model (Quantus needs an nn.Module)."""

    def __init__(self, path):
        super().__init__()
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def forward(self, x):
        out = self.session.run(None, {"input": x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(out)


def main():
    import quantus

    assert quantus.__version__ == "0.6.0", quantus.__version__
    demo = os.path.join("data", "demo")
    with open(os.path.join(demo, "manifest.json")) as f:
        manifest = json.load(f)
    x = np.fromfile(os.path.join(demo, manifest["x"]), dtype="<f4").reshape(manifest["shape"])[:N]
    y = np.fromfile(os.path.join(demo, manifest["y"]), dtype="<i4").astype(np.int64)[:N]
    model = OnnxModule(os.path.join(demo, manifest["model"])).eval()

    runs = []
    gradient = np.fromfile(os.path.join(demo, manifest["attributions"]["gradient"]), dtype="<f4")
    for method, abs_ in (("gradient", False),):
        a = gradient.reshape(manifest["shape"])[:N]
        if abs_:
            a = np.abs(a)
        # numpy's argsort is unstable (quicksort): ties would make the order an accident.
        assert all(len(np.unique(r)) == r.size for r in a.reshape(N, -1)), f"{method} has ties"
        for percentages in (list(range(1, 100, 2)), [5, 10, 29, 50, 57, 90]):
            metric = quantus.ROAD(percentages=percentages, noise=0.0, abs=abs_, disable_warnings=True)
            out = metric(model=model, x_batch=x.copy(), y_batch=y.copy(), a_batch=a.copy(),
                         channel_first=True, batch_size=64)
            accuracy = {str(p): float(v) for p, v in out.items()}
            print(f"ROAD {method} abs={abs_} percentages={percentages[:4]}...: accuracy {list(accuracy.values())[::5]}")
            runs.append({"method": method,
                         "params": {"percentages": percentages, "noise": 0.0, "normalise": True, "abs": abs_},
                         "accuracy": accuracy})

    doc = {
        "provenance": {"tool": "quantus", "version": quantus.__version__,
                       "script": "scripts/make_quantus_road_fixture.py", "torch": torch.__version__,
                       "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
                       "python": platform.python_version()},
        "samples": N,
        "runs": runs,
    }
    with open(os.path.join(DIR, "road-demo.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())

"""Reference fixtures for ROAD's noisy linear imputation (`crates/core/src/impute`).

Builds the imputation system exactly as `road/imputations.py` (NoisyLinearImputer) does — one
sparse matrix over the masked pixels, weight 1/6 for direct and 1/12 for diagonal in-image
neighbours, diagonal = -(sum of in-image neighbour weights), one right-hand side per channel —
and solves it with `scipy.sparse.linalg.spsolve` (SuperLU) in float64, noise = 0. Our mask
convention is 1 = impute (the road code's bitmask is 1 = keep).

Writes to `crates/core/tests/fixtures/impute/`, per case NAME:
  NAME.x.f32         input image [C, H, W], float32 little-endian, row-major
  NAME.mask.u8       mask [H, W], uint8 (1 = impute)
  NAME.expected.f32  spsolve result cast to float32, [C, H, W]
and `manifest.txt` with one line `NAME C H W` per case.

Also times the reference (matrix build + spsolve) on the 3x224x224 50 % random case.

Run:  python scripts/impute_reference.py
Tested with Python 3.11, numpy 2.4.6, scipy 1.17.1 (from PyPI).
"""

import pathlib
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/core/tests/fixtures/impute"

NEIGHBOURS = [
    ((-1, 0), 1 / 6), ((1, 0), 1 / 6), ((0, -1), 1 / 6), ((0, 1), 1 / 6),
    ((-1, -1), 1 / 12), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((1, 1), 1 / 12),
]


SOLVE_SECONDS = []


def impute(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Noiseless noisy-linear imputation; img float32 [C,H,W], mask uint8 [H,W] (1 = impute)."""
    c, h, w = img.shape
    flat = img.reshape(c, h * w)
    unknown = np.flatnonzero(mask.reshape(-1))
    n = unknown.size
    out = flat.copy()
    if n == 0:
        return out.reshape(c, h, w)
    var = -np.ones(h * w, dtype=np.int64)
    var[unknown] = np.arange(n)
    rows_u, cols_u = unknown // w, unknown % w
    b = np.zeros((n, c), dtype=np.float64)
    diag = np.zeros(n, dtype=np.float64)
    rows, cols, vals = [], [], []
    for (dy, dx), wt in NEIGHBOURS:
        ny, nx = rows_u + dy, cols_u + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        k = np.flatnonzero(inside)
        q = ny[k] * w + nx[k]
        diag[k] += wt
        known = mask.reshape(-1)[q] == 0
        b[k[known], :] += wt * flat[:, q[known]].T.astype(np.float64)
        rows.append(k[~known])
        cols.append(var[q[~known]])
        vals.append(np.full((~known).sum(), -wt))
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(diag)
    a = scipy.sparse.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    t = time.perf_counter()
    x = scipy.sparse.linalg.spsolve(a, b)
    SOLVE_SECONDS.append(time.perf_counter() - t)
    x = x.reshape(n, c)
    out[:, unknown] = x.T.astype(np.float32)
    return out.reshape(c, h, w)


def write_case(manifest, name, img, mask):
    expected = impute(img, mask)
    img.astype("<f4").tofile(OUT / f"{name}.x.f32")
    mask.astype(np.uint8).tofile(OUT / f"{name}.mask.u8")
    expected.astype("<f4").tofile(OUT / f"{name}.expected.f32")
    c, h, w = img.shape
    manifest.append(f"{name} {c} {h} {w}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240501)
    manifest = []
    img = rng.standard_normal((3, 16, 20)).astype(np.float32)
    write_case(manifest, "random_3x16x20", img, (rng.random((16, 20)) < 0.5).astype(np.uint8))
    block = np.zeros((16, 20), dtype=np.uint8)
    block[3:13, 4:17] = 1
    write_case(manifest, "block_3x16x20", img, block)
    write_case(
        manifest,
        "random_1x7x5",
        rng.standard_normal((1, 7, 5)).astype(np.float32),
        (rng.random((7, 5)) < 0.6).astype(np.uint8),
    )
    edge = np.zeros((16, 20), dtype=np.uint8)
    edge[:, :19] = 1  # everything but the last column: one long region touching three borders
    write_case(manifest, "edge_3x16x20", img, edge)
    big = rng.random((3, 224, 224)).astype(np.float32)
    big_mask = (rng.random((224, 224)) < 0.5).astype(np.uint8)
    write_case(manifest, "random50_3x224x224", big, big_mask)
    (OUT / "manifest.txt").write_text("\n".join(manifest) + "\n")

    times = []
    SOLVE_SECONDS.clear()
    for _ in range(5):
        t = time.perf_counter()
        impute(big, big_mask)
        times.append(time.perf_counter() - t)
    print(
        f"spsolve reference, 3x224x224, 50% random mask: median {np.median(times) * 1e3:.1f} ms, "
        f"min {min(times) * 1e3:.1f} ms (vectorised build + spsolve); spsolve alone: median "
        f"{np.median(SOLVE_SECONDS) * 1e3:.1f} ms (scipy {scipy.__version__}, numpy {np.__version__})"
    )


if __name__ == "__main__":
    main()

"""Writes the .npy/.npz fixtures of __test__/npy.spec.ts with NumPy itself (the reference writer).

Every file holds the same [2, 3, 4, 5] array v = arange(120) / 7 (or labels 0..4), in another dtype,
byte order, memory order, format version or container. expected.json holds the values as NumPy reads
them back (float16 rounding included).

    python scripts/make_npy_fixtures.py
"""
import json
import os

import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "__test__", "fixtures", "npy")
os.makedirs(out, exist_ok=True)
v = (np.arange(120, dtype=np.float64) / 7).reshape(2, 3, 4, 5)
y = np.array([0, 4], dtype=np.int64)

np.save(os.path.join(out, "f4.npy"), v.astype("<f4"))
np.save(os.path.join(out, "f8.npy"), v.astype("<f8"))
np.save(os.path.join(out, "f2.npy"), v.astype("<f2"))
np.save(os.path.join(out, "f4-big-endian.npy"), v.astype(">f4"))
np.save(os.path.join(out, "f8-fortran.npy"), np.asfortranarray(v.astype("<f8")))
np.save(os.path.join(out, "y-i8.npy"), y)
np.save(os.path.join(out, "y-u1.npy"), y.astype(np.uint8))
np.save(os.path.join(out, "y-i4-big-endian.npy"), y.astype(">i4"))
with open(os.path.join(out, "f4-v2.npy"), "wb") as f:
    np.lib.format.write_array(f, v.astype("<f4"), version=(2, 0))
np.savez(os.path.join(out, "stored.npz"), x=v.astype("<f4"), y=y)
np.savez_compressed(os.path.join(out, "compressed.npz"), x=v.astype("<f4"), y=y)
np.savez(os.path.join(out, "single.npz"), v.astype("<f4"))

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(
        {
            "shape": list(v.shape),
            "f4": v.astype("<f4").ravel().astype(float).tolist(),
            "f2": v.astype("<f2").ravel().astype(float).tolist(),
            "y": y.tolist(),
        },
        f,
    )

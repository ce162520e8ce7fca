"""Writes the .npy/.npz fixtures of __test__/npy.spec.ts with NumPy itself (the reference writer).

Every file holds the same [2, 3, 4, 5] array v = arange(120) / 7 (or labels 0..4), in another dtype,
byte order, memory order, format version (1-3) or container; long.npz holds a [3000, 100]
array, compressed, to stream through many inflated blocks. expected.json holds the values as NumPy reads
them back (float16 rounding included).

    python scripts/make_npy_fixtures.py
"""
import json
import os
import struct
import zipfile

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
np.save(os.path.join(out, "y-bool.npy"), y > 0)
np.save(os.path.join(out, "y-i2-fortran.npy"), np.asfortranarray(y.astype("<i2")))
with open(os.path.join(out, "f4-v3.npy"), "wb") as f:
    np.lib.format.write_array(f, v.astype("<f4"), version=(3, 0))
np.savez_compressed(os.path.join(out, "fortran-compressed.npz"), x=np.asfortranarray(v.astype(">f8")))
# A compressed member much larger than one inflated block (~1.2 MB inflated, a few KB on disk):
# long[i, j] = (i % 7) * 100 + j, exact in float32.
i, j = np.meshgrid(np.arange(3000), np.arange(100), indexing="ij")
np.savez_compressed(os.path.join(out, "long.npz"), x=((i % 7) * 100 + j).astype("<f4"))

# Broken archives (written by zipfile, NumPy's own archive writer): a member whose .npy is cut short
# inside a valid deflate stream, and a member whose deflate stream ends before its declared size.
f4 = open(os.path.join(out, "f4.npy"), "rb").read()
member = zipfile.ZipInfo("x.npy", date_time=(1980, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
member.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(os.path.join(out, "short-member.npz"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(member, f4[:-4])
with zipfile.ZipFile(os.path.join(out, "cut-stream.npz"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(member, f4)
cut = bytearray(open(os.path.join(out, "cut-stream.npz"), "rb").read())
# Halve the member's compressed size in the central directory (signature PK\1\2, field at +20),
# which is what readers trust: the deflate stream then stops half-way.
cd = cut.index(b"PK\x01\x02")
size = struct.unpack_from("<I", cut, cd + 20)[0]
struct.pack_into("<I", cut, cd + 20, size // 2)
open(os.path.join(out, "cut-stream.npz"), "wb").write(bytes(cut))

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(
        {
            "shape": list(v.shape),
            "f4": v.astype("<f4").ravel().astype(float).tolist(),
            "f2": v.astype("<f2").ravel().astype(float).tolist(),
            "y": y.tolist(),
            "yBool": (y > 0).astype(int).tolist(),
        },
        f,
    )

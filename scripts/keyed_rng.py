"""Python mirror of xai-eval's keyed random streams (crates/core/src/rng.rs), for fixture scripts.

Fixture scripts use it to hand a reference implementation (e.g. Quantus) the same random draws
xai-eval makes, so that metrics with randomness can be compared exactly. Pure Python integers;
slow, which is fine for fixtures. Keep in lock-step with rng.rs: its tests pin the same values.
"""
M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15

# rng::Purpose
BASELINE, IMPUTATION, TIES, SUBSET, EXPLANATION, PERTURBATION, ORDER, RESAMPLE, MASK = 1, 2, 3, 4, 5, 6, 7, 8, 9
CLASS, WEIGHTS = 10, 11

# Ziggurat tables of rng.rs (Marsaglia & Tsang 2000, 256 layers), built with the same libm calls.
import math  # noqa: E402

_ZIG_LAYERS = 256
_ZIG_R = 3.654152885361009
_ZIG_V = 0.00492867323399


def _zig_tables():
    pdf = lambda v: math.exp(-0.5 * v * v)  # noqa: E731
    x = [0.0] * (_ZIG_LAYERS + 1)
    x[0] = _ZIG_V / pdf(_ZIG_R)
    x[1] = _ZIG_R
    for i in range(2, _ZIG_LAYERS):
        x[i] = math.sqrt(-2.0 * math.log(_ZIG_V / x[i - 1] + pdf(x[i - 1])))
    x[_ZIG_LAYERS] = 0.0
    return x, [pdf(v) for v in x]


_ZX, _ZF = _zig_tables()


def _splitmix(state):
    state = (state + GOLDEN) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def _mix(x):
    return _splitmix(x)[1]


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Rng:
    """xoshiro256++ seeded through SplitMix64, as `Rng::new(seed, stream)`."""

    def __init__(self, seed, stream):
        key = (stream * 0xD1B54A32D192ED03) & M64
        _, k = _splitmix(key)
        sm = seed ^ k
        s = []
        for _ in range(4):
            sm, v = _splitmix(sm)
            s.append(v)
        self.s = s

    @classmethod
    def keyed(cls, seed, sample, purpose, step):
        return cls(seed, _mix(_mix(_mix(sample) ^ purpose) ^ step))

    def next_u64(self):
        s = self.s
        result = (_rotl((s[0] + s[3]) & M64, 23) + s[0]) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def below(self, n):
        threshold = ((-n) & M64) % n
        while True:
            m = self.next_u64() * n
            if (m & M64) >= threshold:
                return m >> 64

    def normals(self):
        """Standard normals of `Rng::normals` (ziggurat, in stream order): a generator."""
        while True:
            yield self._normal()

    def _normal(self):
        while True:
            bits = self.next_u64()
            i = bits & 0xFF
            u = (bits >> 11) * (2.0 / (1 << 53)) - 1.0
            x = u * _ZX[i]
            if abs(x) < _ZX[i + 1]:
                return x
            if i == 0:
                while True:
                    a = math.log(1.0 - self.uniform()) / _ZIG_R
                    b = math.log(1.0 - self.uniform())
                    if -2.0 * b >= a * a:
                        return a - _ZIG_R if u < 0.0 else _ZIG_R - a
            y = _ZF[i] + (_ZF[i + 1] - _ZF[i]) * self.uniform()
            if y < math.exp(-0.5 * x * x):
                return x

    def subset(self, n, k):
        out = list(range(n))
        for i in range(k):
            j = i + self.below(n - i)
            out[i], out[j] = out[j], out[i]
        return out[:k]


if __name__ == "__main__":
    print(Rng.keyed(0, 0, BASELINE, 0).next_u64())
    print(Rng.keyed(7, 3, SUBSET, 2).subset(10, 4))

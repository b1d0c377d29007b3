"""A small numpy simulator for examples, notebooks and benchmarks (no CLI or file needed).

The engine's own simulator (``maliang simulate``, with blinking, patterns and EMCCD noise) is the reference; this one
draws independent emitters per frame: integrated Gaussian PSF (DESIGN.md's Ex/Ey, pixel c spanning [c, c+1)),
uniform background, Poisson noise, camera offset, uint16 output."""
from __future__ import annotations

import numpy as np

TRUTH_DTYPE = np.dtype([("frame", "<i4"), ("x", "<f4"), ("y", "<f4"), ("photons", "<f4")])


def _erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): good enough for a simulator, needs no scipy.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


def simulate_stack(frames: int = 20, height: int = 64, width: int = 64, *, emitters_per_frame: int = 10,
                   photons: float = 2000.0, background: float = 10.0, offset: float = 100.0, psf_sigma: float = 1.3,
                   margin: float = 4.0, seed: int = 0):
    """Returns ``(stack, truth)``: a uint16 stack (frames, height, width) in ADU (1 photon per ADU, + offset) and the
    true emitters (TRUTH_DTYPE: frame, x, y in px with the DESIGN.md convention, photons)."""
    rng = np.random.default_rng(seed)
    expected = np.full((frames, height, width), float(background))
    truth = []
    half = int(np.ceil(5 * psf_sigma))
    sq2s = np.sqrt(2.0) * psf_sigma
    for f in range(frames):
        for _ in range(emitters_per_frame):
            x = rng.uniform(margin, width - margin)
            y = rng.uniform(margin, height - margin)
            c0, c1 = max(0, int(x) - half), min(width, int(x) + half + 1)
            r0, r1 = max(0, int(y) - half), min(height, int(y) + half + 1)
            ex = np.diff(_erf((np.arange(c0, c1 + 1) - x) / sq2s)) / 2
            ey = np.diff(_erf((np.arange(r0, r1 + 1) - y) / sq2s)) / 2
            expected[f, r0:r1, c0:c1] += photons * np.outer(ey, ex)
            truth.append((f, x, y, photons))
    stack = rng.poisson(expected) + offset
    return np.clip(stack, 0, 65535).astype(np.uint16), np.array(truth, dtype=TRUTH_DTYPE)


def match(found, truth, radius: float = 1.0):
    """Greedy nearest matching per frame: returns (matched found indices, matched truth indices) within ``radius`` px."""
    fi, ti = [], []
    for f in np.unique(truth["frame"]):
        t_idx = np.flatnonzero(truth["frame"] == f)
        l_idx = np.flatnonzero(found["frame"] == f)
        if len(l_idx) == 0:
            continue
        d = np.hypot(found["x"][l_idx][None, :] - truth["x"][t_idx][:, None],
                     found["y"][l_idx][None, :] - truth["y"][t_idx][:, None])
        used = set()
        for i in np.argsort(d.min(axis=1)):
            order = np.argsort(d[i])
            for j in order:
                if d[i, j] > radius:
                    break
                if j not in used:
                    used.add(j)
                    ti.append(t_idx[i])
                    fi.append(l_idx[j])
                    break
    return np.array(fi, dtype=np.int64), np.array(ti, dtype=np.int64)

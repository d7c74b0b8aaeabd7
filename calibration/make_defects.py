"""Regenerate calibration/defects/: a small, deterministic calibration set for the demo models.

    python calibration/make_defects.py [--force]

48 PNGs (12 per class: ok, scratch, spot, crack), 96x96, from the synthetic generator with a
seed the demo's training set does not use, so calibration never sees training images.
"""

from __future__ import annotations

import sys
from pathlib import Path

from toolkit.data.synthetic import make_classification_set

if __name__ == "__main__":
    root = Path(__file__).resolve().parent / "defects"
    info = make_classification_set(
        root, n_per_class=12, size=96, seed=4242, splits={"": 1.0}, force="--force" in sys.argv
    )
    print(f"wrote {root}: {info['counts']}")

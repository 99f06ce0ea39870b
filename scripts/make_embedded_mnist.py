#!/usr/bin/env python3
"""Build ``src/softlif/data/mnist_subset.npz``, the MNIST subset shipped with softlif.

    python scripts/make_embedded_mnist.py [MNIST_DIR] [--out PATH]

Reads the four official MNIST IDX files (gzipped or not) with softlif's own IDX loader,
checks the MD5 of their decompressed bytes against the official values, and writes the
first 10,000 training and the first 2,000 test images and labels (unchanged, official
order) with ``np.savez_compressed``: keys ``x_train`` uint8 (10000, 28, 28), ``y_train``
uint8 (10000,), ``x_test`` uint8 (2000, 28, 28), ``y_test`` uint8 (2000,) and a
``provenance`` string. MNIST_DIR defaults to ``../shared/data/mnist`` beside the repo.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from softlif.data._io import read_bytes  # noqa: E402
from softlif.data.idx import MNIST_FILES, load_mnist  # noqa: E402

N_TRAIN, N_TEST = 10_000, 2_000
OFFICIAL_MD5 = {  # of the decompressed files, as published with MNIST
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mnist_dir", nargs="?", type=Path, default=REPO.parent / "shared/data/mnist")
    ap.add_argument("--out", type=Path, default=REPO / "src/softlif/data/mnist_subset.npz")
    args = ap.parse_args()

    md5s = {}
    for name in (f for pair in MNIST_FILES.values() for f in pair):
        path = next(p for p in (args.mnist_dir / name, args.mnist_dir / f"{name}.gz") if p.exists())
        md5s[name] = hashlib.md5(read_bytes(path), usedforsecurity=False).hexdigest()
        if md5s[name] != OFFICIAL_MD5[name]:
            sys.exit(f"{path}: decompressed MD5 {md5s[name]} != official {OFFICIAL_MD5[name]}")

    train = load_mnist(args.mnist_dir, "train")
    test = load_mnist(args.mnist_dir, "test")
    provenance = "\n".join(
        [
            "MNIST subset embedded in softlif (built by scripts/make_embedded_mnist.py).",
            f"x_train, y_train: the first {N_TRAIN} of the 60000 training images/labels;",
            f"x_test, y_test: the first {N_TEST} of the 10000 test images/labels;",
            "official order, pixels and labels unchanged (uint8).",
            "Source files (MD5 of the decompressed official IDX files):",
            *(f"  {name}  {md5}" for name, md5 in md5s.items()),
            "MNIST database: Y. LeCun, C. Cortes, C. J. C. Burges,",
            "  http://yann.lecun.com/exdb/mnist/ ; licence: CC BY-SA 3.0 (as usually stated).",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        x_train=train.images[:N_TRAIN, 0],
        y_train=train.labels[:N_TRAIN].astype(np.uint8),
        x_test=test.images[:N_TEST, 0],
        y_test=test.labels[:N_TEST].astype(np.uint8),
        provenance=np.array(provenance),
    )
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size} bytes = {size / 2**20:.2f} MiB)")
    if size > 3 * 10**6:
        sys.exit(f"{args.out} exceeds the 3 MB budget")


if __name__ == "__main__":
    main()

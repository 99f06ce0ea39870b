"""The small MNIST subset shipped inside the package, for offline demos and tests.

``mnist_subset.npz`` (built by ``scripts/make_embedded_mnist.py``) holds the first 10,000
training and the first 2,000 test images of the official MNIST IDX files, unchanged.
MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, http://yann.lecun.com/exdb/mnist/
(CC BY-SA 3.0 as usually stated).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .errors import DataError
from .idx import MNIST_CLASSES
from .split import ArraySplit

EMBEDDED_FILE = "mnist_subset.npz"


def embedded_mnist_provenance() -> str:
    """The provenance text stored in the embedded subset (sources, MD5s, licence)."""
    with resources.files(__package__).joinpath(EMBEDDED_FILE).open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return str(z["provenance"])


def load_embedded_mnist() -> tuple[ArraySplit, ArraySplit]:
    """Load the packaged MNIST subset (no files or network needed).

    Returns:
        (train, test): images uint8 (10000, 1, 28, 28) and (2000, 1, 28, 28), labels int64
        in 0..9; the first images of the official training and test files, in order.
    """
    ref = resources.files(__package__).joinpath(EMBEDDED_FILE)
    try:
        with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{ref}: packaged MNIST subset missing or damaged ({e})") from e
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim == 3:
            x = x[:, None]
        out.append(ArraySplit(x, y.astype(np.int64), list(MNIST_CLASSES), f"{ref}[{split}]"))
    return out[0], out[1]

"""How much of each hidden layer fires in the CIFAR-10 nets that scripts/reproduce_cifar10.sh
trained (every ``RUNS/*/checkpoint.pt`` or ``checkpoint.safetensors`` of a soft-LIF net): per
layer, the hard-rate ANN's mean rate, the share of neuron-image pairs that fire, the mean rate
of those, and the share of neurons silent on every test image. Writes
results/cifar10/unit_activity.{json,md}; nets measured earlier whose checkpoints are gone are
kept from the previous JSON.

    python scripts/cifar10_activity.py RUNS_DIR DATA_DIR [IMAGES]   # IMAGES: default 10000

DATA_DIR holds the official binary or python layout (``softlif train --data-dir``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from softlif.checkpoint import load_checkpoint
from softlif.data.registry import load_split
from softlif.data.split import ArraySplit
from softlif.evaluate import layer_activity, select_test, spiking_net
from softlif.io import write_json_atomic, write_text_atomic
from softlif.report import PAPER_LAYER_RATES_HZ as _PAPER_RATES
from softlif.synapses import Synapse

OUT = Path("results/cifar10")
PAPER_LAYER_RATES_HZ = _PAPER_RATES["cifar10"]


def shuffled_test_images(data: Path, n: int):  # type: ignore[no-untyped-def]
    """The first ``n`` CIFAR-10 test images of the fixed shuffled order (uint8 tensor)."""
    test = load_split("cifar10", data, "test")
    assert isinstance(test, ArraySplit)  # CIFAR-10 loads as arrays
    images, _ = select_test(test.images, test.labels, n, "shuffled")
    return images


def main() -> None:
    runs, data = Path(sys.argv[1]), Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    images = shuffled_test_images(data, n)
    path = OUT / "unit_activity.json"
    nets: dict = json.loads(path.read_text())["nets"] if path.exists() else {}
    for ck_path in sorted([*runs.glob("*/checkpoint.pt"), *runs.glob("*/checkpoint.safetensors")]):
        ck = load_checkpoint(ck_path)
        if ck.activation == "relu":
            continue
        _, snn = spiking_net(ck, Synapse("alpha", 0.005))
        cfg = ck.config or {}
        nets[ck_path.parent.name] = {
            "epochs": ck.epoch, "recipe": cfg.get("recipe"), "init": cfg.get("init"),
            "lr": cfg.get("lr"), "noise_std_hz": cfg.get("noise_std"), "seed": cfg.get("seed"),
            "test_error": (ck.metrics or {}).get("test_error"), "images": len(images),
            "layers": layer_activity(snn, ck.preprocess.test(images))}
        print(ck_path.parent.name, "done", flush=True)
    write_json_atomic(path, {"order": "shuffled", "paper_layer_rates_hz": PAPER_LAYER_RATES_HZ,
                             "nets": nets})
    lines = ["# Which units fire: the CIFAR-10 nets' hidden layers under the hard rate", "",
             "Made by `python scripts/cifar10_activity.py RUNS DATA` (numbers in "
             "`unit_activity.json`). Per layer (conv1, conv2, local3, local4): mean rate over "
             "neurons and test images / share of neurons silent on every test image / share of "
             "neuron-image pairs that fire. The paper's mean rates: "
             + " / ".join(f"{v:g}" for v in PAPER_LAYER_RATES_HZ) + " Hz.", "",
             "| run | recipe, init, lr | noise | epochs | test error | "
             + " | ".join(f"layer {k + 1}" for k in range(4)) + " |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, m in sorted(nets.items()):
        err = "-" if m["test_error"] is None else f"{100 * m['test_error']:.2f}%"
        cells = [f"{la['mean_rate_hz']:.1f} Hz / {100 * la['never_active_share']:.0f}% / "
                 f"{100 * la['active_share']:.0f}%" for la in m["layers"]]
        lines.append(f"| {name} | {m['recipe']}, {m['init']}, {m['lr']:g} | "
                     f"{m['noise_std_hz']:g} Hz | {m['epochs']} | {err} | {' | '.join(cells)} |")
    write_text_atomic(OUT / "unit_activity.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""The CIFAR-10 recipe comparison (issue 28, item 2): the authors' recipe against the modern one
at equal epochs and seed, trained by scripts/cifar10_recipes.sh. Per run: the test error after
each epoch, the final soft- and hard-rate errors on all 10,000 test images, and which units of
each hidden layer fire under the hard rate (softlif.evaluate.layer_activity on IMAGES test
images of the fixed shuffled order). Writes results/cifar10/recipes.{json,md}.

    python scripts/cifar10_recipes.py RUNS_DIR DATA_DIR [IMAGES]   # IMAGES: default 2000
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from cifar10_activity import shuffled_test_images  # scripts/, beside this one

from softlif.checkpoint import load_checkpoint
from softlif.evaluate import layer_activity, spiking_net
from softlif.hardware import machine
from softlif.io import write_json_atomic, write_text_atomic
from softlif.synapses import Synapse

OUT = Path("results/cifar10")


def main() -> None:
    runs, data = Path(sys.argv[1]), Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    images = shuffled_test_images(data, n)
    nets = {}
    for path in sorted(runs.glob("*/checkpoint.safetensors")):
        ck = load_checkpoint(path)
        cfg = ck.config
        _, snn = spiking_net(ck, Synapse("alpha", 0.005))
        hist = ck.metrics["history"]
        nets[path.parent.name] = {
            "recipe": cfg["recipe"], "lr": cfg["lr"], "init": cfg["init"],
            "weight_decay": cfg["weight_decay"], "label_smoothing": cfg.get("label_smoothing"),
            "ema_decay": cfg.get("ema_decay"), "mean_crop": cfg.get("mean_crop"),
            "noise_std_hz": cfg["noise_std"], "seed": cfg["seed"], "epochs": ck.epoch,
            "planned_epochs": cfg["epochs"], "precision": cfg["precision"],
            "train_seconds": ck.metrics["train_seconds"],
            # the median epoch: robust to an epoch the run was paused in (SIGSTOP)
            "median_epoch_seconds": statistics.median(
                b["seconds"] - a["seconds"]
                for a, b in zip([{"seconds": 0.0}, *hist[:-1]], hist, strict=True)),
            "test_error": ck.metrics["test_error"],
            "test_error_hard": ck.metrics.get("test_error_hard"),
            "final_test_images": hist[-1]["test_images"],
            "per_epoch": [{k: h[k] for k in ("epoch", "train_loss", "test_error",
                                             "test_error_hard", "test_images", "train_images")
                           if k in h} for h in hist],
            "activity_images": len(images),
            "layers": layer_activity(snn, ck.preprocess.test(images))}
        print(path.parent.name, "done", flush=True)
    write_json_atomic(OUT / "recipes.json", {"machine": machine().to_dict(), "nets": nets})
    lines = ["# CIFAR-10: the authors' recipe against the modern one, equal epochs and seed", "",
             "Made by `scripts/cifar10_recipes.sh` (numbers in `recipes.json`); lossy JPEG copy "
             "of CIFAR-10, soft LIF with 10 Hz Gaussian training noise. Errors on all 10,000 "
             "test images after the last epoch (soft rate / hard rate, the SNN's predictor). "
             f"Per layer (conv1, conv2, local3, local4) on {n:,} test images under the hard "
             "rate: mean rate / share of neurons silent on every image.", "",
             "| run | recipe | lr | epochs | error (soft / hard) | "
             + " | ".join(f"layer {k + 1}" for k in range(4)) + " | median epoch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in nets.items():
        err = f"{100 * m['test_error']:.2f}% / {100 * (m['test_error_hard'] or 0):.2f}%"
        cells = [f"{la['mean_rate_hz']:.1f} Hz / {100 * la['never_active_share']:.0f}%"
                 for la in m["layers"]]
        lines.append(f"| {name} | {m['recipe']} | {m['lr']:g} | {m['epochs']} | {err} | "
                     f"{' | '.join(cells)} | {m['median_epoch_seconds']:.0f} s |")
    lines += ["", "Test error after each epoch (the last on 10,000 images, the others on the "
              "first 2,000 of the shuffled order):", "",
              "| epoch | " + " | ".join(nets) + " |", "|---|" + "---|" * len(nets)]
    longest = max((len(m["per_epoch"]) for m in nets.values()), default=0)
    for e in range(longest):
        row = [f"{100 * m['per_epoch'][e]['test_error']:.2f}%" if e < len(m["per_epoch"])
               else "" for m in nets.values()]
        lines.append(f"| {e + 1} | " + " | ".join(row) + " |")
    write_text_atomic(OUT / "recipes.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

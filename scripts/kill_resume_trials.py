#!/usr/bin/env python
"""Crash safety, measured: SIGKILL `softlif train` and `softlif reproduce` at random moments,
resume them, and check what survived (issue 13).

For each training trial: start `softlif train` on the embedded MNIST subset, kill it with
SIGKILL at a random time within the uninterrupted run's duration, inspect the output folder
(the checkpoint must load and hold at least every epoch the log reported finished; nothing but
whole files at their names), resume with `--resume`, and compare the final checkpoint with an
uninterrupted reference run (weights bit for bit, per-epoch metrics equal but for wall time).
For each reproduce trial: kill `softlif reproduce` (a small config on real MNIST) at a random
moment, rerun it until it finishes, and compare its results.json with the reference's.

Writes a Markdown report (default results/reliability.md) and its JSON beside it. Run it alone
(one torch job at a time). Usage:
    python scripts/kill_resume_trials.py [--trials 10] [--reproduce-trials 3]
        [--mnist-dir ../shared/data/mnist] [--work DIR] [--out results/reliability.md]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

from softlif.checkpoint import load_checkpoint
from softlif.errors import SoftlifError
from softlif.io import write_json_atomic, write_text_atomic

TRAIN = ["train", "--dataset", "embedded-mnist", "--limit-train", "3000", "--limit-test", "500",
         "--epochs", "8", "--seed", "3", "--no-progress", "--no-fuse"]
REPRO_CONFIG = """
[train]
epochs = 2
relu_epochs = 1
noises = [0.0, 10.0]
finetune_epochs = 1
precision = "float32"
[simulate]
presentation_time = 0.1
c0 = 0.05
c1 = 0.1
batch_size = 25
[sweep]
taus = [0.0, 0.005]
times = [0.1]
windows = [[0.05, 0.1]]
"""


class Run:
    """A `python -m softlif` child whose stderr lines are recorded with their times."""

    def __init__(self, argv: list[str]) -> None:
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "softlif", *argv],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic() - self.t0, line.rstrip()))

    def wait(self) -> int:
        rc = self.proc.wait()
        self._reader.join()
        return rc

    def kill_at(self, seconds: float) -> float | None:
        """SIGKILL the child's process group ``seconds`` after start; the kill time, or None
        if it had already finished."""
        deadline = self.t0 + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.wait()
                return None
            time.sleep(0.01)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait()
        return time.monotonic() - self.t0

    def epochs_logged(self, before: float | None = None) -> int:
        return sum(1 for t, ln in self.lines if ln.startswith("epoch ")
                   and (before is None or t <= before))


def _partial_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.is_file())


def _same_training(a: Any, b: Any) -> bool:
    if a.epoch != b.epoch or a.state_dict.keys() != b.state_dict.keys():
        return False
    if not all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict):
        return False
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in ck.metrics["history"]]
             for ck in (a, b)]
    return strip[0] == strip[1]


def train_trials(work: Path, n: int, rng: random.Random) -> tuple[dict[str, Any], list[dict]]:
    ref = Run([*TRAIN, "--out", str(work / "ref")])
    if ref.wait() != 0:
        raise SystemExit("reference training failed:\n" + "\n".join(ln for _, ln in ref.lines))
    ref_ck = load_checkpoint(work / "ref" / "checkpoint.pt")
    duration = time.monotonic() - ref.t0
    reference = {"seconds": round(duration, 1), "epochs": ref_ck.epoch,
                 "first_epoch_logged_s": round(next(t for t, ln in ref.lines
                                                    if ln.startswith("epoch ")), 1)}
    trials = []
    for i in range(n):
        out = work / f"trial{i}"
        run = Run([*TRAIN, "--out", str(out), "--resume"])
        at = rng.uniform(0.05, 0.98) * duration
        killed = run.kill_at(at)
        logged = run.epochs_logged(killed)
        row: dict[str, Any] = {"trial": i, "kill_s": None if killed is None else round(killed, 2),
                               "epochs_logged": logged}
        ck_path = out / "checkpoint.pt"
        try:
            found = load_checkpoint(ck_path).epoch if ck_path.exists() else 0
            row["checkpoint"] = "loads" if ck_path.exists() else "none yet"
        except SoftlifError as e:
            found, row["checkpoint"] = -1, f"CORRUPT: {e}"
        row["checkpoint_epoch"] = found
        row["lost_logged_epochs"] = max(0, logged - found) if found >= 0 else logged
        row["partial_files_after_kill"] = _partial_files(out) if out.exists() else []
        resumed = Run([*TRAIN, "--out", str(out), "--resume"])
        rc = resumed.wait()
        row["resume_rc"] = rc
        msg = [ln for _, ln in resumed.lines if ln.startswith("resuming")]
        row["resumed_after_epoch"] = (int(msg[0].rsplit(" ", 1)[1]) if msg else 0)
        row["identical_to_uninterrupted"] = (rc == 0 and _same_training(
            load_checkpoint(ck_path), ref_ck))
        row["partial_files_after_resume"] = _partial_files(out)
        row["ok"] = (not row["checkpoint"].startswith("CORRUPT") and row["lost_logged_epochs"] == 0
                     and row["resumed_after_epoch"] == max(found, 0)
                     and row["identical_to_uninterrupted"]
                     and not row["partial_files_after_resume"])
        trials.append(row)
        print(json.dumps(row), file=sys.stderr)
    return reference, trials


def _results(folder: Path) -> dict[str, Any]:
    r = json.loads((folder / "results.json").read_text())
    return _drop_times(r)


def _drop_times(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_times(v) for k, v in obj.items()
                if not any(s in k for s in ("seconds", "wall", "throughput", "per_second",
                                            "date", "time_s"))}
    if isinstance(obj, list):
        return [_drop_times(v) for v in obj]
    return obj


def reproduce_trials(work: Path, n: int, mnist: Path, rng: random.Random
                     ) -> tuple[dict[str, Any], list[dict]]:
    cfg = work / "small.toml"
    cfg.write_text(REPRO_CONFIG)
    argv = ["reproduce", "--dataset", "mnist", "--data-dir", str(mnist), "--config", str(cfg),
            "--limit-train", "2000", "--limit-test", "300", "--images", "100", "--no-progress",
            "--no-fuse"]
    ref = Run([*argv, "--out", str(work / "repro-ref")])
    if ref.wait() != 0:
        raise SystemExit("reference reproduce failed:\n" + "\n".join(ln for _, ln in ref.lines))
    duration = time.monotonic() - ref.t0
    reference = {"seconds": round(duration, 1)}
    want = _results(work / "repro-ref")
    trials = []
    for i in range(n):
        out = work / f"repro{i}"
        kills = []
        # two kills at random moments, then a run to the end
        for _ in range(2):
            run = Run([*argv, "--out", str(out)])
            killed = run.kill_at(rng.uniform(0.05, 0.9) * duration)
            kills.append(None if killed is None else round(killed, 2))
        final = Run([*argv, "--out", str(out)])
        rc = final.wait()
        reused = [ln for _, ln in final.lines if ln.startswith(("reusing", "resuming"))]
        same = rc == 0 and _results(out) == want
        row = {"trial": i, "kills_s": kills, "final_rc": rc,
               "final_seconds": round(time.monotonic() - final.t0, 1),
               "stages_reused_or_resumed": len(reused),
               "results_equal_uninterrupted": same,
               "partial_files": _partial_files(out)}
        row["ok"] = same and not row["partial_files"]
        trials.append(row)
        print(json.dumps(row), file=sys.stderr)
    return reference, trials


def report(data: dict[str, Any]) -> str:
    tr, rp = data["train_trials"], data["reproduce_trials"]
    lines = [
        "# Crash safety: SIGKILL and resume", "",
        f"Measured {data['date']} on this machine ({os.cpu_count()} CPU cores) with",
        f"`{data['command']}`.", "",
        "## `softlif train` killed at random moments", "",
        f"Command: `softlif {' '.join(TRAIN)} --out DIR --resume`; the uninterrupted run took "
        f"{data['train_reference']['seconds']} s for {data['train_reference']['epochs']} epochs "
        "(start-up included). Each trial kills the process group with SIGKILL at a uniformly "
        "random moment of that span, checks the folder, then resumes with the same command.", "",
        "| trial | killed at (s) | epochs logged | checkpoint | its epoch | logged epochs lost "
        "| hidden temporaries after kill | resumed after epoch | final = uninterrupted | "
        "temporaries after resume |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tr:
        lines.append(
            f"| {r['trial']} | {r['kill_s']} | {r['epochs_logged']} | {r['checkpoint']} | "
            f"{r['checkpoint_epoch']} | {r['lost_logged_epochs']} | "
            f"{len(r['partial_files_after_kill'])} | {r['resumed_after_epoch']} | "
            f"{'yes' if r['identical_to_uninterrupted'] else 'NO'} | "
            f"{len(r['partial_files_after_resume'])} |")
    ok = sum(r["ok"] for r in tr)
    lines += ["", f"**{ok} of {len(tr)} trials** resumed from the last complete checkpoint (an "
              "epoch is logged only after its checkpoint is on disk, so at most the epoch in "
              "progress is lost), left no corrupt file, and finished with weights and per-epoch "
              "metrics bit-identical to the uninterrupted run. A kill during a checkpoint write "
              "leaves the previous checkpoint and a hidden temporary `.checkpoint.pt.HOST.PID.*`, "
              "which the next write deletes (its process is dead); "
              f"{sum(bool(r['partial_files_after_kill']) for r in tr)} of these {len(tr)} kills "
              "landed in a write (`tests/test_io.py` checks the sweep itself).", ""]
    if rp:
        lines += ["## `softlif reproduce` killed twice, then run to the end", "",
                  f"A small config (2 + 1 fine-tune epochs per noise net, 1 ReLU epoch, "
                  f"sigma 0 and 10, a 2-point sweep) on real MNIST (2,000 training, 100 test "
                  f"images); the uninterrupted run took {data['reproduce_reference']['seconds']} s.",
                  "",
                  "| trial | kills at (s) | final exit | stages reused or resumed | results.json = "
                  "uninterrupted (times aside) | temporaries left |",
                  "|---|---|---|---|---|---|"]
        for r in rp:
            kills = ", ".join("finished first" if k is None else f"{k}" for k in r["kills_s"])
            lines.append(f"| {r['trial']} | {kills} | {r['final_rc']} | "
                         f"{r['stages_reused_or_resumed']} | "
                         f"{'yes' if r['results_equal_uninterrupted'] else 'NO'} | "
                         f"{len(r['partial_files'])} |")
        ok = sum(r["ok"] for r in rp)
        lines += ["", f"**{ok} of {len(rp)} trials** finished with the uninterrupted run's "
                  "results, reusing the stages finished before the kills.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--reproduce-trials", type=int, default=3)
    ap.add_argument("--mnist-dir", default="../shared/data/mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="scratch folder (default: a temporary one)")
    ap.add_argument("--out", default="results/reliability.md")
    ap.add_argument("--from-json", help="only rewrite the report from this JSON of a run")
    args = ap.parse_args()
    if args.from_json:
        write_text_atomic(Path(args.out), report(json.loads(Path(args.from_json).read_text()))
                          + "\n")
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="softlif-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    ref, tr = train_trials(work, args.trials, rng)
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "command": "python " + " ".join(sys.argv),
        "train_reference": ref, "train_trials": tr, "reproduce_trials": []}
    if args.reproduce_trials:
        data["reproduce_reference"], data["reproduce_trials"] = reproduce_trials(
            work, args.reproduce_trials, Path(args.mnist_dir), rng)
    out = Path(args.out)
    write_json_atomic(out.with_suffix(".json"), data)
    write_text_atomic(out, report(data) + "\n")
    print(out)
    return 0 if all(r["ok"] for r in tr + data["reproduce_trials"]) else 1


if __name__ == "__main__":
    sys.exit(main())

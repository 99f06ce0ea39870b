"""Scale-out with torch.distributed on the CPU (gloo, 2 processes, tiny data): sharded
evaluation equals one process exactly; 2-process training matches one process within float
rounding, checkpoints once per epoch from rank 0 and resumes bit for bit."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from softlif.cli import main

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


def _torchrun(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "-m", "softlif", *argv],
                          capture_output=True, text=True, timeout=600, env=_env(), check=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    code = main(["train", "--limit-train", "1000", "--limit-test", "200", "--epochs", "1",
                 "--no-progress", "--no-fuse", "--json", "--out", str(out)])
    assert code == 0
    return out / "checkpoint.pt"


def test_torchrun_simulate_equals_one_process(checkpoint, capsys, tmp_path):
    """The issue's check: the same error, rates and energy from 2 processes as from one (200
    images shown back to back in 50 streams: 25 streams per rank)."""
    argv = ["simulate", str(checkpoint), "--dataset", "embedded-mnist", "--images", "200",
            "--presentation-time", "0.06", "--c0", "0.03", "--init", "uniform", "--no-fuse",
            "--no-progress", "--json"]
    assert main(argv) == 0
    one = json.loads(capsys.readouterr().out)
    run = _torchrun(*argv, "--out", str(tmp_path / "two"))
    assert run.returncode == 0, run.stderr[-3000:]
    two = json.loads(run.stdout)  # rank 0 alone prints
    for key in ("images", "snn_error", "ann_error", "ann_error_hard", "snn_rates_hz",
                "mean_rate_hz", "energy", "error_vs_c1"):  # from spike counts: bit for bit
        assert two[key] == one[key], key
    # the hard-rate ANN's float32 sums: torchrun runs each rank with 1 thread, so the
    # reduction order (not the sharding) differs in the last bits
    assert two["predicted_rates_hz"] == pytest.approx(one["predicted_rates_hz"], rel=1e-6)
    assert json.loads((tmp_path / "two" / "simulate.json").read_text())["snn_error"] == \
        one["snn_error"]


def test_torchrun_refuses_commands_that_do_not_shard():
    run = _torchrun("demo")  # each rank exits 2 with one line; torchrun itself then exits 1
    assert run.returncode != 0
    # torchrun stops the other rank as soon as one fails, so that one may not get to print
    assert 1 <= run.stderr.count("softlif demo: error: `softlif demo` runs in one process") <= 2
    assert re.search(r"exitcode\s*:\s*2\b", run.stderr)  # the first to fail: a usage error
    assert not run.stdout.strip()  # no rank ran the demo


def _no_dropout_spec():
    from softlif.networks import Dropout, get_spec

    spec = get_spec("mnist")
    return dataclasses.replace(spec, layers=tuple(layer for layer in spec.layers
                                                  if not isinstance(layer, Dropout)))


def _data():
    from softlif.data import load_embedded_mnist, paper_preprocess

    tr, te = load_embedded_mnist()
    tr, te = tr.subset(list(range(300))), te.subset(list(range(100)))
    return tr, te, paper_preprocess("mnist", tr)


CFG = dict(epochs=2, batch_size=64, precision="float32", noise_std=0.0)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        from softlif.train import TrainConfig, train

        tr, te, pre = _data()
        spec, cfg = _no_dropout_spec(), TrainConfig(**CFG)
        whole = Path(out) / "whole"
        train(spec, tr, te, pre, cfg, activation="relu", checkpoint_path=whole / "ck.pt",
              progress=False, log=lambda s: None)

        def stop(line: str) -> None:
            if line.startswith("epoch 1"):
                raise KeyboardInterrupt

        cut = Path(out) / "cut"
        try:
            train(spec, tr, te, pre, cfg, activation="relu", checkpoint_path=cut / "ck.pt",
                  progress=False, log=stop)
        except KeyboardInterrupt:
            pass
        if rank == 0:
            (Path(out) / "cut_epoch").write_text(str(torch.load(
                cut / "ck.pt", weights_only=True)["epoch"]))
        dist.barrier()
        train(spec, tr, te, pre, cfg, activation="relu", checkpoint_path=cut / "ck.pt",
              resume=True, progress=False, log=lambda s: None)
    finally:
        dist.destroy_process_group()


def test_two_process_training_matches_one_checkpoints_once_and_resumes(tmp_path):
    from softlif.checkpoint import load_checkpoint
    from softlif.train import TrainConfig, train

    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    whole = load_checkpoint(tmp_path / "whole" / "ck.pt")
    resumed = load_checkpoint(tmp_path / "cut" / "ck.pt")
    assert (tmp_path / "cut_epoch").read_text() == "1"  # rank 0 wrote epoch 1, then stopped
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == ["ck.pt"]
    # resumed from epoch 1 on both ranks: bit for bit the uninterrupted 2-process run
    for k, v in whole.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k
    assert whole.train_state["world_size"] == 2 and len(whole.train_state["ranks"]) == 2
    seeds = whole.metrics["rank_seeds"]["noise"]
    assert whole.metrics["world_size"] == 2 and len(set(seeds)) == 2 and seeds[0] == 2
    # one process, same global batches: equal up to the order of float additions
    tr, te, pre = _data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: the kernels' summation order follows threads
    try:
        one = train(_no_dropout_spec(), tr, te, pre, TrainConfig(**CFG), activation="relu",
                    progress=False, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    worst = max(float((one.state_dict[k] - v).abs().max()) for k, v in whole.state_dict.items())
    assert worst < 1e-4, worst
    h1, h2 = one.metrics["history"], whole.metrics["history"]
    for a, b in zip(h1, h2, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert abs(a["test_error"] - b["test_error"]) <= 0.011  # at most one image of 100
    # a 1-process resume of the 2-process checkpoint is refused with the reason
    from softlif.train import TrainingError

    with pytest.raises(TrainingError, match="written by 2 process"):
        train(_no_dropout_spec(), tr, te, pre, TrainConfig(**CFG), activation="relu",
              checkpoint_path=tmp_path / "whole" / "ck.pt", resume=True, progress=False,
              log=lambda s: None)


MNIST_DIR = Path(__file__).parents[1].parent / "shared" / "data" / "mnist"
SMALL = """
[train]
epochs = 1
relu_epochs = 1
noises = [10.0]
finetune_epochs = 1
precision = "float32"
[simulate]
presentation_time = 0.06
c0 = 0.03
c1 = 0.06
batch_size = 25
[sweep]
taus = [0.0, 0.005]
times = [0.06]
windows = [[0.03, 0.06]]
"""


@pytest.mark.skipif(not MNIST_DIR.is_dir() and os.environ.get("CI") != "true",
                    reason=f"official MNIST not at {MNIST_DIR}")  # CI has it: fails there
def test_torchrun_reproduce_writes_once_and_reuses_its_stages(tmp_path, capsys):
    """`reproduce` under torchrun: trains with DDP, evaluates sharded, rank 0 writes; a rerun
    reuses every stage; its SNN figures equal a one-process evaluation of the same nets."""
    (tmp_path / "small.toml").write_text(SMALL)
    argv = ["reproduce", "--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--config",
            str(tmp_path / "small.toml"), "--limit-train", "600", "--limit-test", "100",
            "--images", "100", "--no-progress", "--no-fuse", "--out", str(tmp_path / "r")]
    first = _torchrun(*argv)
    assert first.returncode == 0, first.stderr[-3000:]
    assert not [p for p in (tmp_path / "r").rglob(".*")]  # no stray temporaries
    again = _torchrun(*argv)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("reusing") == 1 and again.stderr.count("resuming") == 3
    r = json.loads((tmp_path / "r" / "softlif-sigma10" / "results.json").read_text())
    assert main(["simulate", str(tmp_path / "r" / "softlif-sigma10" / "finetuned.pt"),
                 "--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--images", "100",
                 "--presentation-time", "0.06", "--c0", "0.03", "--batch-size", "25",
                 "--no-fuse", "--no-progress", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert (r["snn_error"], r["snn_rates_hz"]) == (one["snn_error"], one["snn_rates_hz"])

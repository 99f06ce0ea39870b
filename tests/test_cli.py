"""The command line: exact paper figures, JSON output, clear errors, a tiny end-to-end run."""

import json

import pytest

from softlif.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("net, rates, t, expected", [
    ("cifar10", "173.3,99.0,9.7,7.2", "0.2", 0.76),
    ("mnist", "4.6,15.6,4.2", "0.06", 14.42),
    ("imagenet", "178.1,48.8,26.6,30.6,35.6,19.1,10.7", "0.06", 3.51),
])
def test_energy_reproduces_the_paper(capsys, net, rates, t, expected):
    code, out, _ = run(capsys, "energy", "--net", net, "--rates", rates,
                       "--presentation-time", t, "--json")
    assert code == 0
    report = json.loads(out)
    assert round(report["efficiency"], 2) == expected
    assert "loihi" in report["devices"] and report["assumptions"]


def test_info_json_counts(capsys):
    code, out, _ = run(capsys, "info", "--net", "cifar10", "--json")
    d = json.loads(out)
    assert code == 0 and d["neurons"] == 49_536 and d["synapses"] == 19_512_576
    assert d["flops"] == 39_074_688


def test_bad_arguments_name_the_argument(capsys):
    with pytest.raises(SystemExit) as e:
        main(["energy", "--net", "cifar10", "--rates", "fast"])
    assert e.value.code == 2
    assert "--rates" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["simulate", "x.pt", "--presentation-time", "-1"])
    assert e.value.code == 2
    code, _, err = run(capsys, "energy", "--net", "mnist", "--rates", "1,2")
    assert code == 1 and "one rate per neuron layer" in err


def test_bad_device_is_named(capsys):
    import torch

    with pytest.raises(SystemExit) as e:
        main(["train", "--device", "banana"])
    assert e.value.code == 2 and "--device" in capsys.readouterr().err
    bad = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(SystemExit) as e:
        main(["simulate", "x.pt", "--device", bad])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--device" in err and "CUDA" in err


def test_missing_and_corrupt_checkpoints(capsys, tmp_path):
    code, _, err = run(capsys, "simulate", str(tmp_path / "none.pt"))
    assert code == 1 and "does not exist" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "simulate", str(bad))
    assert code == 1 and "not a readable softlif checkpoint" in err


def test_calibrate_json(capsys):
    code, out, _ = run(capsys, "calibrate", "--net", "cifar10", "--json")
    assert code == 0 and 8 < json.loads(out)["sigma_hz"] < 12.5


def test_train_simulate_sweep_end_to_end(capsys, tmp_path):
    out = tmp_path / "run"
    code, o, err = run(capsys, "train", "--epochs", "1", "--limit-train", "600",
                       "--limit-test", "100", "--out", str(out), "--no-progress", "--no-fuse",
                       "--json")
    assert code == 0, err
    assert json.loads(o)["epochs"] == 1
    assert (out / "checkpoint.pt").exists() and (out / "config.json").exists()
    code, o, err = run(capsys, "simulate", str(out / "checkpoint.pt"), "--images", "20",
                       "--presentation-time", "0.05", "--c0", "0.02", "--no-fuse",
                       "--no-progress", "--out", str(tmp_path / "sim"), "--json")
    assert code == 0, err
    d = json.loads(o)
    assert 0 <= d["snn_error"] <= 1 and len(d["snn_rates_hz"]) == 3
    assert (tmp_path / "sim" / "simulate.json").exists()
    code, o, err = run(capsys, "sweep", str(out / "checkpoint.pt"), "--images", "10",
                       "--presentation-time", "0.04", "--taus", "0,0.005",
                       "--windows", "0.01:0.04,0.02:0.03", "--no-fuse", "--no-progress",
                       "--json")
    assert code == 0, err
    rows = json.loads(o)["rows"]
    assert len(rows) == 4 and all(r["efficiency"] > 0 for r in rows)
    # resume of a finished run trains nothing more and keeps the checkpoint
    code, o, err = run(capsys, "train", "--epochs", "1", "--limit-train", "600",
                       "--limit-test", "100", "--out", str(out), "--no-progress", "--no-fuse",
                       "--resume", "--json")
    assert code == 0, err

"""The command line: exact paper figures, JSON output, clear errors, a tiny end-to-end run."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch

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


def test_energy_takes_user_hardware(capsys):
    args = ["energy", "--net", "mnist", "--rates", "4.6,15.6,4.2", "--json"]
    code, out, _ = run(capsys, *args, "--hardware", "mychip:2e-11:0")
    r = json.loads(out)
    dev = r["devices"]["mychip"]
    assert code == 0 and dev["spiking"] and dev["source"] == "user supplied"
    assert dev["joules_per_image"] == pytest.approx(2e-11 * r["synops_per_s"] * 0.2)
    code, _, err = run(capsys, *args, "--hardware", "mychip:lots:1e-11")
    assert code == 2 and "--hardware" in err and "joules" in err
    code, out, err = run(capsys, *args, "--device", "old:1e-11:1e-11")  # the old name still works
    assert code == 0 and "old" in json.loads(out)["devices"] and "--hardware" in err


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
    assert code == 2 and "one rate per neuron layer" in err


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
    assert len(d["snn_rates_hz"]) == 3
    assert d["snn_error"] * 20 == round(d["snn_error"] * 20)  # a count of 20 images, exact
    # the window error equals the error-vs-c1 curve (a cumulative sum) at c1 = 0.05
    curve = d["error_vs_c1"]["0.0"]
    again = json.loads(run(capsys, "simulate", str(out / "checkpoint.pt"), "--images", "20",
                           "--presentation-time", "0.05", "--c0", "0.0", "--no-fuse",
                           "--float-maps", "--no-progress", "--json")[1])
    assert curve["c1_s"][-1] == 0.05 and curve["error"][-1] == pytest.approx(again["snn_error"])
    assert again["settings"]["float_maps"] is True and d["settings"]["float_maps"] is False
    assert (tmp_path / "sim" / "simulate.json").exists()
    code, o, err = run(capsys, "diagnose", str(out / "checkpoint.pt"), "--images", "10",
                       "--presentation-time", "0.05", "--c0", "0.02", "--out",
                       str(tmp_path / "diag"), "--json")
    assert code == 0, err
    d = json.loads(o)
    assert [row["hybrid"] is None for row in d["layers"]] == [True, False, False]
    assert sum(b["neurons"] for b in d["layers"][2]["bins"]) == 10 * 2000  # every neuron-image
    assert (tmp_path / "diag" / "diagnose.json").exists()
    code, o, err = run(capsys, "diagnose", str(out / "checkpoint.pt"), "--tau-s", "0")
    assert code == 2 and "--tau-s" in err
    code, o, err = run(capsys, "sweep", str(out / "checkpoint.pt"), "--images", "10",
                       "--presentation-time", "0.04", "--taus", "0,0.005",
                       "--windows", "0.01:0.04,0.02:0.03", "--no-fuse", "--no-progress",
                       "--json")
    assert code == 0, err
    rows = json.loads(o)["rows"]
    assert len(rows) == 4
    for r in rows:  # each efficiency is the energy model's (tested against the paper) for
        # the rates that simulation measured, at presentation time c1
        rates = ",".join(repr(v) for v in r["rates_hz"])
        code, e, err = run(capsys, "energy", "--net", "mnist", "--rates", rates,
                           "--presentation-time", repr(r["c1"]), "--json")
        assert code == 0, err
        assert r["efficiency"] == pytest.approx(json.loads(e)["efficiency"], rel=1e-12)
    # resume of a finished run trains nothing more and keeps the checkpoint
    from softlif.train import load_checkpoint
    before = load_checkpoint(out / "checkpoint.pt")
    code, o, err = run(capsys, "train", "--epochs", "1", "--limit-train", "600",
                       "--limit-test", "100", "--out", str(out), "--no-progress", "--no-fuse",
                       "--resume", "--json")
    assert code == 0, err
    after = load_checkpoint(out / "checkpoint.pt")
    assert after.epoch == 1 and json.loads(o)["epochs"] == 1
    assert after.metrics == before.metrics
    assert all(torch.equal(after.state_dict[k], v) for k, v in before.state_dict.items())
    # fine-tune it with the alpha-filtered spike-train noise
    code, o, err = run(capsys, "train", "--epochs", "1", "--limit-train", "300",
                       "--limit-test", "100", "--init-from", str(out / "checkpoint.pt"),
                       "--noise-model", "alpha", "--lr", "1e-4", "--out", str(tmp_path / "ft"),
                       "--no-progress", "--no-fuse", "--json")
    assert code == 0, err
    assert json.loads(o)["init_from"]["epochs"] == 1
    tuned = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    assert tuned.neuron.noise_model == "alpha" and tuned.neuron.noise_tau == 0.005
    code, _, err = run(capsys, "train", "--epochs", "1", "--activation", "relu", "--init-from",
                       str(out / "checkpoint.pt"), "--out", str(tmp_path / "bad"), "--no-progress")
    assert code == 1 and "same net and activation" in err


MNIST_DIR = Path(__file__).parents[1].parent / "shared" / "data" / "mnist"


@pytest.mark.skipif(not MNIST_DIR.is_dir() and os.environ.get("CI") != "true",
                    reason=f"official MNIST not at {MNIST_DIR}")  # CI has it: fails there
def test_reproduce_writes_the_ablation_report_and_reuses_finished_work(capsys, tmp_path):
    conf = tmp_path / "tiny.toml"
    conf.write_text(
        '[train]\nnet = "mnist"\nepochs = 1\nrelu_epochs = 1\nbatch_size = 64\n'
        'noises = [0.0, 10.0]\nfinetune_epochs = 1\nfinetune_lr = 2e-4\n'
        '[simulate]\npresentation_time = 0.04\nc0 = 0.02\nc1 = 0.04\nbatch_size = 10\n'
        'fused = false\n'
        '[sweep]\ntaus = [0.0]\ntimes = [0.04]\nwindows = [[0.02, 0.04], [0.0, 0.02]]\n')
    argv = ["reproduce", "--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--config",
            str(conf), "--limit-train", "300", "--limit-test", "50", "--images", "20", "--note",
            "tiny run", "--out", str(tmp_path / "out"), "--no-progress", "--no-fuse", "--json"]
    code, o, err = run(capsys, *argv)
    assert code == 0, err
    r = json.loads(o)
    assert set(r["models"]) == {"sigma0", "sigma10"} and r["relu_epochs"] == 1
    assert len(r["models"]["sigma10"]["sweep"]) == 2 and r["models"]["sigma0"]["sweep"] is None
    report = (tmp_path / "out" / "report.md").read_text()
    assert "soft LIF, sigma 0 Hz" in report and "soft LIF, sigma 10 Hz" in report
    assert "ANN-to-SNN gap" in report and "20 of 50 test images" in report
    assert "- tiny run" in report
    assert "2 epochs (the last 1 a fine-tune at the final g)" in report
    for name, m in r["models"].items():
        assert (tmp_path / "out" / m["report"]).exists()
        assert m["epochs"] == 2 and m["finetune_epochs"] == 1  # 1 epoch, then a 1-epoch fine-tune
        assert (tmp_path / "out" / f"softlif-{name}" / "finetuned.pt").exists()
    # a second run reuses the trained models and their evaluations
    code, o, err = run(capsys, *argv[:-1])
    assert code == 0, err
    assert err.count("reusing") == 2 and "resuming" in err
    assert json.loads((tmp_path / "out" / "results.json").read_text())["models"] == r["models"]


def test_demo_writes_results_report_and_figures(capsys, tmp_path):
    out = tmp_path / "demo"
    code, o, err = run(capsys, "demo", "--epochs", "1", "--images", "20", "--out", str(out),
                       "--no-fuse", "--no-progress", "--json")
    assert code == 0, err
    d = json.loads(o)
    assert d["images"] == 20 and d["snn_error"] * 20 == round(d["snn_error"] * 20)
    rates = ",".join(repr(v) for v in d["snn_rates_hz"])
    e = json.loads(run(capsys, "energy", "--net", "mnist", "--rates", rates, "--json")[1])
    assert d["efficiency"] == pytest.approx(e["efficiency"], rel=1e-12)
    assert len(d["snn_rates_hz"]) == 3
    r = json.loads((out / "results.json").read_text())
    assert r["epochs"] == 1 and r["train_images"] == 10000
    report = (out / "report.md").read_text()
    assert "LIF SNN" in report
    for name in r["figures"]:
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.with_suffix(".pdf").exists()
    assert json.loads((out / "config.json").read_text())["sim_settings"]["device"] == "cpu"


def test_bad_config_fails_before_any_training(capsys, tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text('[train]\nepochs = 1\nnoises = []\n')
    out = tmp_path / "out"
    code, _, err = run(capsys, "reproduce", "--dataset", "mnist", "--config", str(conf),
                       "--data-dir", str(tmp_path / "nothing"), "--out", str(out))
    assert code == 2 and "[train] noises must not be empty" in err
    assert not out.exists()  # nothing was trained or written
    conf.write_text('[train]\nepochs = 1\n[simulate]\nc0 = 0.3\n')
    code, _, err = run(capsys, "reproduce", "--dataset", "mnist", "--config", str(conf),
                       "--out", str(out))
    assert code == 2 and "c0 < c1" in err and not out.exists()


def test_exit_codes_and_no_silent_clamping(capsys, tmp_path):
    # a window outside the presentation is an argument error (it used to be clamped)
    code, _, err = run(capsys, "simulate", str(tmp_path / "none.pt"), "--c0", "0.5")
    assert code == 2 and "--c0" in err
    # a missing checkpoint is a file error, one line, no traceback
    code, _, err = run(capsys, "simulate", str(tmp_path / "none.pt"))
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # --debug shows the traceback instead
    from softlif.errors import CheckpointError
    with pytest.raises(CheckpointError):
        main(["--debug", "simulate", str(tmp_path / "none.pt")])


def test_energy_refuses_non_finite_inputs(capsys, tmp_path):
    base = ["energy", "--net", "mnist", "--rates", "4.6,15.6,4.2"]
    code, _, err = run(capsys, *base, "--hardware", "x:nan:1e-11")
    assert code == 2 and "finite" in err
    with pytest.raises(SystemExit) as e:  # argparse refuses it
        main(["energy", "--net", "mnist", "--rates", "4.6,inf,4.2"])
    assert e.value.code == 2 and "--rates" in capsys.readouterr().err
    code, _, err = run(capsys, *base, "--dt", "0.5", "--presentation-time", "0.2")
    assert code == 2 and "longer than the presentation time" in err
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2, 3]")
    code, _, err = run(capsys, "energy", "--net", "mnist", "--from-results", str(lst))
    assert code == 1 and "snn_rates_hz" in err and "Traceback" not in err


def test_own_npz_data_trains_and_simulates_from_the_command_line(capsys, tmp_path):
    """A user's .npz (5 classes, 32x32 grey images) on the MNIST net: --crop 28 makes the
    shapes fit; the default preprocessing is the [0, 1] scale less the training mean."""
    import numpy as np

    from softlif.data import load_embedded_mnist
    tr, te = load_embedded_mnist()
    pad = ((0, 0), (0, 0), (2, 2), (2, 2))
    keep_tr, keep_te = tr.labels[:600] < 5, te.labels[:100] < 5
    npz = tmp_path / "own.npz"
    np.savez(npz, x_train=np.pad(tr.images[:600][keep_tr], pad), y_train=tr.labels[:600][keep_tr],
             x_test=np.pad(te.images[:100][keep_te], pad), y_test=te.labels[:100][keep_te])
    base = ["train", "--dataset", "npz", "--data-dir", str(npz), "--epochs", "1",
            "--no-progress", "--no-fuse", "--json"]
    code, _, err = run(capsys, *base, "--out", str(tmp_path / "x"))
    assert code == 2 and "--net is required" in err
    code, _, err = run(capsys, *base, "--net", "mnist", "--out", str(tmp_path / "x"))
    assert code == 2 and "(1, 28, 28)" in err and "(1, 32, 32)" in err and "--crop" in err
    code, o, err = run(capsys, *base, "--net", "mnist", "--crop", "28", "--out",
                       str(tmp_path / "own"))
    assert code == 0, err
    from softlif.checkpoint import load_checkpoint
    ck = load_checkpoint(tmp_path / "own" / "checkpoint.pt")
    assert ck.preprocess.crop == 28 and ck.preprocess.pixel_divisor == 255.0
    x = np.pad(tr.images[:600][keep_tr], pad).astype(np.float64)
    np.testing.assert_allclose(ck.preprocess.mean_image.numpy(), x.mean(0) / 255, atol=1e-6)
    code, o, err = run(capsys, "simulate", str(tmp_path / "own" / "checkpoint.pt"), "--dataset",
                       "npz", "--data-dir", str(npz), "--presentation-time", "0.04", "--c0",
                       "0.02", "--no-fuse", "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(o)["images"] == int(keep_te.sum())


def test_python_dash_m_softlif_runs_the_command_line():
    """`python -m softlif` (what torchrun -m softlif needs) is the same command line."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "softlif", "info", "--net", "mnist", "--json"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["neurons"] == 27_088
    bad = subprocess.run([sys.executable, "-m", "softlif", "energy", "--net", "mnist"],
                         capture_output=True, text=True, check=False, timeout=120)
    assert bad.returncode == 2 and "--rates" in bad.stderr and "Traceback" not in bad.stderr


def _mnist_folder(root, n_train=240, n_test=60, classes=4):
    """The embedded MNIST subset's first images of ``classes`` digits as grey PNG files in
    root/{train,test}/<digit>/, and the same images in the folder's (class, name) order."""
    import numpy as np
    from PIL import Image

    from softlif.data import load_embedded_mnist

    out = {}
    for split, data, n in zip(("train", "test"), load_embedded_mnist(), (n_train, n_test),
                              strict=True):
        keep = np.flatnonzero(data.labels < classes)[:n]
        order = sorted(keep, key=lambda i: (int(data.labels[i]), f"{i:05d}.png"))
        for i in keep:
            d = root / split / str(int(data.labels[i]))
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[i, 0]).save(d / f"{i:05d}.png")
        out[split] = (data.images[order], data.labels[order])
    return out


def test_image_folder_trains_lazily_like_the_same_images_in_memory(capsys, tmp_path):
    """`train --dataset folder` decodes a batch at a time (here in a worker process) and gives
    the same checkpoint, bit for bit, as the same images in the same order from an .npz; grey
    PNGs are read as one channel. `simulate` on the folder decodes only the --images it needs
    and gives the npz's figures."""
    import numpy as np

    from softlif.checkpoint import load_checkpoint

    arrays = _mnist_folder(tmp_path / "digits")
    npz = tmp_path / "digits.npz"
    np.savez(npz, x_train=arrays["train"][0], y_train=arrays["train"][1],
             x_test=arrays["test"][0], y_test=arrays["test"][1])
    common = ["--net", "mnist", "--epochs", "2", "--batch-size", "64", "--no-progress",
              "--no-fuse", "--json", "--precision", "float32"]
    code, _, err = run(capsys, "train", "--dataset", "folder", "--data-dir",
                       str(tmp_path / "digits"), "--workers", "1", *common, "--out",
                       str(tmp_path / "lazy"))
    assert code == 0, err
    code, _, err = run(capsys, "train", "--dataset", "npz", "--data-dir", str(npz), *common,
                       "--out", str(tmp_path / "mem"))
    assert code == 0, err
    lazy = load_checkpoint(tmp_path / "lazy" / "checkpoint.pt")
    mem = load_checkpoint(tmp_path / "mem" / "checkpoint.pt")
    assert lazy.preprocess.input_shape == (1, 28, 28)
    assert torch.equal(lazy.preprocess.mean_image, mem.preprocess.mean_image)
    for k, v in mem.state_dict.items():
        assert torch.equal(lazy.state_dict[k], v), k
    assert lazy.metrics["history"] == [
        {**r, "seconds": lr["seconds"]} for r, lr in zip(mem.metrics["history"],
                                                          lazy.metrics["history"], strict=True)]
    figures = []
    for data in (["folder", "--data-dir", str(tmp_path / "digits")],
                 ["npz", "--data-dir", str(npz)]):
        code, o, err = run(capsys, "simulate", str(tmp_path / "lazy" / "checkpoint.pt"),
                           "--dataset", *data, "--images", "40", "--order", "shuffled",
                           "--presentation-time", "0.04", "--c0", "0.02", "--no-fuse",
                           "--no-progress", "--json")
        assert code == 0, err
        r = json.loads(o)
        figures.append((r["images"], r["snn_error"], r["snn_rates_hz"]))
    assert figures[0] == figures[1] and figures[0][0] == 40


def test_image_folder_of_mixed_sizes_names_the_file_and_the_fix(capsys, tmp_path):
    from PIL import Image

    _mnist_folder(tmp_path / "digits", n_train=40, n_test=10, classes=2)
    odd = tmp_path / "digits" / "train" / "1" / "zz-odd.png"
    Image.new("L", (30, 28)).save(odd)
    code, _, err = run(capsys, "train", "--dataset", "folder", "--data-dir",
                       str(tmp_path / "digits"), "--net", "mnist", "--epochs", "1",
                       "--no-progress", "--no-fuse", "--out", str(tmp_path / "x"))
    assert code == 1 and "zz-odd.png" in err and "--image-size" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "train", "--dataset", "folder", "--data-dir",
                       str(tmp_path / "digits"), "--net", "mnist", "--epochs", "1",
                       "--image-size", "28", "--no-progress", "--no-fuse", "--json",
                       "--out", str(tmp_path / "y"))
    assert code == 0, err


def test_lazy_test_set_refuses_to_decode_more_than_the_cap(capsys, tmp_path, monkeypatch):
    from softlif.data.images import load_image_folder
    from softlif.data.limits import LIMITS

    _mnist_folder(tmp_path / "digits", n_train=20, n_test=20, classes=2)
    monkeypatch.setattr(LIMITS, "max_bytes", 10 * 28 * 28)
    test = load_image_folder(tmp_path / "digits", "test")
    with pytest.raises(Exception, match=r"20 decoded images.*above the cap"):
        test.load()
    x, y = test.load(list(range(10)))
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.uint8 and len(y) == 10


def test_train_takes_any_registered_neuron_type(capsys, tmp_path):
    for argv, what in ((["--neuron", "Banana"], "registered types: LIF, IF"),
                       (["--neuron", "QuantizedLIF", "--neuron-param", "vth=3"], "vth_mant"),
                       (["--neuron", "QuantizedLIF", "--neuron-param", "vth_mant=x"],
                        "not a number"),
                       (["--neuron", "QuantizedLIF", "--neuron-param", "tau_ref=0.0015"],
                        "whole number of steps"),
                       (["--neuron-param", "tau_rc=0.05"], "needs --neuron"),
                       (["--neuron", "LIF", "--activation", "relu"], "--activation"),
                       (["--rate-penalty", "0.1", "--activation", "relu"], "--rate-penalty")):
        code, _, err = run(capsys, "train", "--dataset", "mnist", "--data-dir",
                           str(tmp_path / "absent"), *argv)  # refused before any data is read
        assert code == 2 and what in err, (argv, err)
    out = tmp_path / "q"
    code, _, _ = run(capsys, "train", "--neuron", "QuantizedLIF", "--neuron-param",
                     "vth_mant=512", "--epochs", "1", "--limit-train", "256", "--limit-test",
                     "64", "--no-fuse", "--no-progress", "--out", str(out), "--json")
    from softlif.checkpoint import load_checkpoint
    from softlif.quantized import QuantizedLIF

    ck = load_checkpoint(out / "checkpoint.pt")
    assert code == 0 and isinstance(ck.neuron, QuantizedLIF) and ck.neuron.vth_mant == 512
    weights = [m.weight for m in ck.build_model().modules() if hasattr(m, "weight_bits")]
    assert len(weights) == 4  # conv, conv, dense, readout: 8-bit in the forward pass


def test_penalty_sweep_trades_synaptic_events_for_error(capsys, tmp_path):
    base = tmp_path / "base"
    code, _, err = run(capsys, "train", "--epochs", "1", "--limit-train", "300",
                       "--limit-test", "50", "--out", str(base), "--no-progress", "--no-fuse")
    assert code == 0, err
    ck = str(base / "checkpoint.pt")
    args = ["sweep", ck, "--rate-penalties", "0,1", "--finetune-epochs", "2", "--lr", "1e-2",
            "--limit-train", "600", "--images", "20", "--presentation-time", "0.05",
            "--c0", "0.02", "--no-fuse", "--no-progress", "--out", str(tmp_path / "sw"),
            "--json"]
    code, o, err = run(capsys, *args)
    assert code == 0, err
    r = json.loads(o)
    free, taxed = r["points"]
    assert (free["rate_penalty"], taxed["rate_penalty"]) == (0.0, 1.0)
    # a penalty of 1 per million synaptic events/s dwarfs the loss: the events fall
    assert taxed["msynops_per_s"] < 0.8 * free["msynops_per_s"], (taxed, free)
    assert taxed["rate_penalty"] in r["pareto_front"] and r["test_images"] == 20
    for sub in ("pareto.json", "pareto.png", "penalty-0/checkpoint.pt",
                "penalty-1/simulate.json"):
        assert (tmp_path / "sw" / sub).exists(), sub
    # the same command again reuses every fine-tune and simulation
    stamp = (tmp_path / "sw" / "penalty-1" / "simulate.json").stat().st_mtime_ns
    code, o2, err = run(capsys, *args)
    assert code == 0, err
    assert json.loads(o2)["points"] == r["points"]
    assert (tmp_path / "sw" / "penalty-1" / "simulate.json").stat().st_mtime_ns == stamp
    code, _, err = run(capsys, "sweep", ck, "--rate-penalties", "0,1")
    assert code == 2 and "--out" in err
    code, _, err = run(capsys, "sweep", ck, "--rate-penalties", "0,0.1,0", "--out", "x")
    assert code == 2 and "each weight once" in err
    # each kind of sweep refuses the other kind's options instead of ignoring them
    code, _, err = run(capsys, "sweep", ck, "--rate-penalties", "0,1", "--windows", "0.1:0.2",
                       "--out", "x")
    assert code == 2 and "--windows" in err and "--c0" in err
    code, _, err = run(capsys, "sweep", ck, "--finetune-epochs", "2", "--seed", "3")
    assert code == 2 and "--finetune-epochs, --seed" in err and "--rate-penalties" in err
    with pytest.raises(SystemExit) as e:
        main(["sweep", ck, "--rate-penalties", "0,-1", "--out", "x"])
    assert e.value.code == 2 and "--rate-penalties" in capsys.readouterr().err


def test_without_matplotlib_figures_are_skipped_with_one_line(capsys, tmp_path, monkeypatch):
    # `pip install .` has no matplotlib: the commands finish, saying so once, before the work
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--epochs", "1", "--limit-train", "300",
                       "--limit-test", "50", "--out", str(out), "--no-progress", "--no-fuse")
    assert code == 0, err
    code, o, err = run(capsys, "simulate", str(out / "checkpoint.pt"), "--images", "5",
                       "--presentation-time", "0.03", "--c0", "0.01", "--no-fuse",
                       "--no-progress", "--figures", "--out", str(tmp_path / "sim"), "--json")
    assert code == 0, err
    assert err.count("matplotlib is not installed: figures skipped") == 1
    assert json.loads(o)["figures"] == [] and not list((tmp_path / "sim").glob("*.png"))


def test_version_is_defined_once(capsys):
    import softlif

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"softlif {softlif.__version__}"
    root = Path(__file__).resolve().parent.parent
    cff = (root / "CITATION.cff").read_text()
    assert f"\nversion: {softlif.__version__}\n" in cff
    assert 'dynamic = ["version"]' in (root / "pyproject.toml").read_text()
    assert (root / "LICENSE").read_text().startswith("MIT License")


def test_train_resumes_the_safetensors_checkpoint_its_folder_holds(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--limit-train", "200", "--limit-test", "40", "--out",
            str(out), "--no-progress", "--no-fuse", "--json", "--resume"]
    code, o, err = run(capsys, *args[:2], "1", *args[3:], "--format", "safetensors")
    assert code == 0, err
    assert (out / "checkpoint.safetensors").exists() and not (out / "checkpoint.pt").exists()
    # the same folder, no --format: the run resumes from the safetensors file (config.json's
    # epochs differ, so only the resumed checkpoint's epoch count tells)
    code, o, err = run(capsys, *args)
    assert code == 1 and "another configuration" in err  # 1 vs 2 epochs: not the same run
    code, o, err = run(capsys, *args[:2], "1", *args[3:])
    assert code == 0, err
    assert json.loads(o)["checkpoint"].endswith("checkpoint.safetensors")
    assert json.loads(o)["epochs"] == 1 and not (out / "checkpoint.pt").exists()

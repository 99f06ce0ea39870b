"""Training: schedules, optimizer groups, checkpoints, resume and fine-tuning (--init-from)."""

from __future__ import annotations

import math

import pytest
import torch

from softlif.data import load_embedded_mnist, paper_preprocess
from softlif.errors import CheckpointError, SoftlifError
from softlif.hardware import resolve_precision
from softlif.networks import get_spec
from softlif.train import (
    TrainConfig,
    TrainingError,
    load_checkpoint,
    lr_factor,
    make_optimizer,
    smoothing_at,
    train,
    training_totals,
)


def test_smoothing_is_constant_then_geometric_to_anneal_to():
    cfg = TrainConfig(epochs=10, anneal_to=0.002, anneal_fraction=0.3)
    assert smoothing_at(cfg, 0.02, 0.0) == 0.02 and smoothing_at(cfg, 0.02, 0.7) == 0.02
    assert smoothing_at(cfg, 0.02, 1.0) == pytest.approx(0.002)
    # half way through the annealing: the geometric mean of the end points
    assert smoothing_at(cfg, 0.02, 0.85) == pytest.approx(math.sqrt(0.02 * 0.002))
    assert smoothing_at(TrainConfig(anneal_to=None), 0.02, 1.0) == 0.02
    assert smoothing_at(TrainConfig(anneal_to=0.0), 0.02, 1.0) == 0.0


def test_learning_rate_schedules():
    adam = TrainConfig(recipe="adam")
    assert lr_factor(adam, 0.0) == pytest.approx(0.1)  # warm-up starts at a tenth
    assert lr_factor(adam, 0.1) == pytest.approx(1.0)  # peak after 10%
    assert lr_factor(adam, 1.0) == pytest.approx(0.01)
    paper_exp = TrainConfig(recipe="paper-exp", lr_final_ratio=0.01)
    assert lr_factor(paper_exp, 0.0) == 1.0 and lr_factor(paper_exp, 0.5) == pytest.approx(0.1)
    paper = TrainConfig(recipe="paper")  # constant within an epoch: the plan's multiplier
    assert lr_factor(paper, 0.3) == 1.0 and lr_factor(paper, 0.99, epoch_mult=0.01) == 0.01
    assert paper.lr == 1e-3 and TrainConfig(recipe="adam").lr == 2e-3  # the recipes' own
    modern = TrainConfig(recipe="modern")
    assert (modern.label_smoothing, modern.ema_decay, modern.mean_crop) == (0.1, 0.999,
                                                                             "aligned")
    assert (paper.label_smoothing, paper.ema_decay, paper.mean_crop) == (0.0, 0.0, "centre")


def test_weight_decay_on_weights_only_and_bias_learning_rate():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    cfg = TrainConfig(recipe="paper", lr=0.1, weight_decay=(0.01, 0.0), bias_lr_mult=2.0)
    groups = make_optimizer(model, cfg).param_groups
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0, 0.0, 0.0]
    assert [g["lr"] for g in groups] == pytest.approx([0.1, 0.2, 0.1, 0.2])
    assert groups[0]["params"][0] is model[0].weight and groups[1]["params"][0] is model[0].bias


@pytest.fixture(scope="module")
def tiny_mnist():
    train_split, test_split = load_embedded_mnist()
    train_split = train_split.subset(list(range(256)))
    test_split = test_split.subset(list(range(100)))
    return train_split, test_split, paper_preprocess("mnist", train_split)


def _train(data, cfg, path=None, **kw):
    kw.setdefault("log", lambda s: None)
    return train(get_spec("mnist"), *data, cfg, checkpoint_path=path, progress=False, **kw)


def test_resume_after_an_interruption_repeats_the_uninterrupted_run(tiny_mnist, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=64)
    whole = _train(tiny_mnist, cfg)

    def stop_in_epoch_two(line: str) -> None:
        if line.startswith("epoch 1"):  # logged once epoch 1's checkpoint is on disk
            raise KeyboardInterrupt  # as if ^C came before the second checkpoint was written

    path = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train(get_spec("mnist"), *tiny_mnist, cfg, checkpoint_path=path, progress=False,
              log=stop_in_epoch_two)
    assert load_checkpoint(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary file left
    resumed = _train(tiny_mnist, cfg, path, resume=True)
    assert resumed.epoch == 2
    for k, v in whole.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k
    assert resumed.metrics["test_error"] == whole.metrics["test_error"]
    # resuming with other settings is refused rather than mixing two runs
    with pytest.raises(TrainingError, match="another configuration"):
        _train(tiny_mnist, TrainConfig(epochs=3, batch_size=64), path, resume=True)


def test_paper_recipe_trains_on_80_percent_first_and_resumes_exactly(tiny_mnist, tmp_path):
    cfg = TrainConfig(recipe="paper", epochs=4, batch_size=64, lr=1e-3)
    whole = _train(tiny_mnist, cfg)
    # 4 epochs of the authors' 520: one per phase, the first on 80% of the 256 images
    assert [h["train_images"] for h in whole.metrics["history"]] == [205, 256, 256, 256]
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_mnist, cfg, path, log=_stop_after(2))
    resumed = _train(tiny_mnist, cfg, path, resume=True)
    for k, v in whole.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k


def test_modern_recipe_saves_the_average_and_resumes_exactly(tiny_mnist, tmp_path):
    cfg = TrainConfig(recipe="modern", epochs=3, batch_size=64, lr=0.01)
    whole = _train(tiny_mnist, cfg)
    raw = whole.train_state["model"]
    assert whole.train_state["ema_steps"] == 3 * 4
    assert any(not torch.equal(raw[k], v) for k, v in whole.state_dict.items())
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_mnist, cfg, path, log=_stop_after(1))
    resumed = _train(tiny_mnist, cfg, path, resume=True)
    for k, v in whole.state_dict.items():  # the average and the raw weights both continue
        assert torch.equal(v, resumed.state_dict[k]), k
        assert torch.equal(raw[k], resumed.train_state["model"][k]), k
    assert resumed.metrics["test_error"] == whole.metrics["test_error"]


def test_safetensors_checkpoint_round_trips_and_resumes_exactly(tiny_mnist, tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(recipe="modern", epochs=2, batch_size=64, lr=0.01)
    whole = _train(tiny_mnist, cfg)
    path = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):
        _train(tiny_mnist, cfg, path, log=_stop_after(1))
    with safe_open(str(path), framework="pt") as f:  # any safetensors reader sees the weights
        names = set(f.keys())
        assert f.metadata()["format"] == "softlif-checkpoint-1"
    assert "ck.state_dict.0.weight" in names and "ck.train_state.data_rng" in names
    assert any(n.startswith("ck.train_state.optimizer.state.") for n in names)
    back = load_checkpoint(path)
    assert back.epoch == 1 and isinstance(back.train_state["optimizer"]["state"], dict)
    assert all(isinstance(k, int) for k in back.train_state["optimizer"]["state"])
    resumed = _train(tiny_mnist, cfg, path, resume=True)
    for k, v in whole.state_dict.items():
        assert torch.equal(v, resumed.state_dict[k]), k
    assert resumed.metrics == {**whole.metrics, "train_seconds": resumed.metrics["train_seconds"],
                               "history": resumed.metrics["history"]}


def test_a_safetensors_file_without_a_softlif_document_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"0.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(CheckpointError, match="no softlif document"):
        load_checkpoint(path)
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(CheckpointError, match="not a readable softlif checkpoint"):
        load_checkpoint(path)


def _stop_after(epoch: int):
    def log(line: str) -> None:
        if line.startswith(f"epoch {epoch} "):
            raise KeyboardInterrupt
    return log


def test_checkpoint_rebuilds_the_trained_net(tiny_mnist, tmp_path):
    ck = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64), tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    assert back.config == ck.config and back.epoch == 1
    x = back.preprocess.test(torch.from_numpy(tiny_mnist[1].images[:8]))
    with torch.no_grad():
        assert torch.allclose(back.build_model()(x), ck.build_model()(x))


def test_init_from_starts_at_the_checkpoint_and_records_it(tiny_mnist, tmp_path):
    base = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64), tmp_path / "base.pt")
    assert base.metrics["final_smoothing"] == pytest.approx(0.002)
    cfg = TrainConfig(epochs=1, batch_size=64, lr=1e-9, init_from=str(tmp_path / "base.pt"))
    tuned = _train(tiny_mnist, cfg)
    # a vanishing learning rate leaves the weights where the base run ended
    for k, v in base.state_dict.items():
        assert torch.allclose(v, tuned.state_dict[k], atol=1e-6), k
    # g goes on from where the base run ended (0.002), not from the neuron's 0.02
    assert tuned.neuron is not None and tuned.neuron.smoothing == pytest.approx(0.002)
    assert tuned.metrics["history"][0]["smoothing"] == pytest.approx(0.002)
    prov = tuned.metrics["init_from"]
    assert prov["epochs"] == 1 and prov["config"] == base.config
    assert prov["test_error"] == base.metrics["test_error"]
    epochs, seconds = training_totals(tuned)  # the training behind the net, base run included
    assert epochs == 2
    assert seconds == pytest.approx(base.metrics["train_seconds"] + tuned.metrics["train_seconds"])
    # the preprocessing (mean image) the weights were learnt with goes along, whatever is passed
    other_pre = paper_preprocess("mnist", tiny_mnist[0].subset(list(range(10))))
    tuned2 = _train((tiny_mnist[0], tiny_mnist[1], other_pre), cfg)
    assert torch.equal(tuned2.preprocess.mean_image, base.preprocess.mean_image)
    assert not torch.equal(other_pre.mean_image, base.preprocess.mean_image)
    # from scratch, the same settings give other weights
    fresh = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64, lr=1e-9))
    assert not torch.allclose(fresh.state_dict["0.weight"], tuned.state_dict["0.weight"])


def test_init_from_a_different_net_or_activation_is_refused(tiny_mnist, tmp_path):
    _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64), tmp_path / "soft.pt")
    cfg = TrainConfig(epochs=1, batch_size=64, init_from=str(tmp_path / "soft.pt"))
    with pytest.raises(TrainingError, match="same net and activation"):
        _train(tiny_mnist, cfg, activation="relu")
    with pytest.raises(CheckpointError, match="does not exist"):
        _train(tiny_mnist, TrainConfig(epochs=1, init_from=str(tmp_path / "none.pt")))


def test_old_checkpoint_loads_with_its_scale_and_resumes(tiny_mnist, tmp_path):
    """A checkpoint written before the input scale, init and precision were recorded (v1
    preprocessing dict, no `init`/`precision` in its config) loads unchanged: [0, 1] inputs,
    same logits; and its run resumes as the float32 run it was."""
    cfg = TrainConfig(epochs=2, batch_size=64, precision="float32", init="default")
    path = tmp_path / "checkpoint.pt"
    ck = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64, precision="float32",
                                        init="default"), path)
    d = torch.load(path, weights_only=True)
    d["preprocess"] = {k: v for k, v in d["preprocess"].items() if k != "pixel_divisor"}
    d["preprocess"]["version"] = 1
    for key in ("init", "precision"):
        d["config"].pop(key)
    d["config"]["epochs"] = 2
    torch.save(d, path)
    old = load_checkpoint(path)
    assert old.preprocess.pixel_divisor == 255.0
    x = torch.from_numpy(tiny_mnist[1].images[:8])
    with torch.no_grad():
        torch.testing.assert_close(old.build_model()(old.preprocess.test(x)),
                                   ck.build_model()(ck.preprocess.test(x)), rtol=0, atol=0)
    resumed = _train(tiny_mnist, cfg, path, resume=True)
    assert resumed.epoch == 2


def test_paper_init_and_precision_are_chosen_and_recorded(tiny_mnist):
    assert TrainConfig(recipe="paper").init == "paper"
    assert TrainConfig(recipe="adam").init == "default"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init"):
        TrainConfig(init="xavier")  # type: ignore[arg-type]
    ck = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64, init="paper", lr=1e-3))
    # the default precision is "auto": recorded as asked, beside what this machine ran
    # (tests/test_hardware.py checks the choice on both kinds of CPU)
    assert ck.config["init"] == "paper" and ck.config["precision_requested"] == "auto"
    assert ck.config["precision"] == resolve_precision("auto", "cpu")


def test_bfloat16_training_tracks_float32(tiny_mnist):
    """The same short training in both precisions (same seed, data, noise): the losses agree
    to bf16 accuracy, the weights stay float32, and both learn."""
    runs = {p: _train(tiny_mnist, TrainConfig(epochs=3, batch_size=64, precision=p))
            for p in ("float32", "bfloat16")}
    f32, b16 = (runs[p].metrics["history"] for p in ("float32", "bfloat16"))
    assert all(v.dtype == torch.float32 for v in runs["bfloat16"].state_dict.values())
    assert f32[-1]["train_loss"] < 0.7 * f32[0]["train_loss"]
    for a, b in zip(f32, b16, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.05)
    assert abs(f32[-1]["test_error"] - b16[-1]["test_error"]) <= 0.05


def test_smoothing_zero_stays_zero_and_init_from_keeps_a_hard_curve(tiny_mnist, tmp_path):
    """g0 = 0 has nothing to anneal from (used to divide by zero); a net annealed to g = 0
    is fine-tuned at g = 0, not restarted at the neuron's 0.02."""
    cfg = TrainConfig(epochs=2, anneal_to=0.002)
    assert smoothing_at(cfg, 0.0, 0.9) == 0.0
    _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64, anneal_to=0.0, anneal_fraction=1.0),
           tmp_path / "hard.pt")
    assert load_checkpoint(tmp_path / "hard.pt").metrics["final_smoothing"] == 0.0
    tuned = _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64, anneal_to=None,
                                           init_from=str(tmp_path / "hard.pt")))
    assert tuned.neuron is not None and tuned.neuron.smoothing == 0.0


@pytest.fixture(scope="module")
def saved(tiny_mnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "checkpoint.pt"
    _train(tiny_mnist, TrainConfig(epochs=1, batch_size=64), path)
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d.pop("spec"), "lacks 'spec'"),
    (lambda d: d.pop("state_dict"), "lacks 'state_dict'"),
    (lambda d: d.update(epoch="3"), "field 'epoch'"),
    (lambda d: d.update(epoch=True), "field 'epoch'"),
    (lambda d: d.update(activation=7), "field 'activation'"),
    (lambda d: d.update(activation="tanh"), "field 'activation'"),
    (lambda d: d.update(config=[1, 2]), "field 'config'"),
    (lambda d: d.update(spec={"name": "x"}), "field 'spec'"),
    (lambda d: d.update(neuron={"kind": "HH"}), "field 'neuron'"),
    (lambda d: d["preprocess"].update(mean_image=torch.full((1, 28, 28), float("nan"))),
     "field 'preprocess'.*NaN"),
    (lambda d: d["state_dict"]["0.weight"].view(-1).__setitem__(0, float("nan")),
     "weight '0.weight' holds NaN"),
    (lambda d: d["state_dict"].update({"0.weight": "abc"}), "not a tensor"),
])
def test_malformed_checkpoints_are_refused_with_the_field(saved, tmp_path, change, match):
    import copy

    d = copy.deepcopy(saved)
    change(d)
    torch.save(d, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(tmp_path / "bad.pt")
    assert str(tmp_path / "bad.pt") in str(info.value) and isinstance(info.value, SoftlifError)


def test_weights_that_do_not_fit_the_net_are_a_checkpoint_error(saved, tmp_path):
    import copy

    d = copy.deepcopy(saved)
    d["state_dict"]["0.weight"] = torch.zeros(3, 3)
    torch.save(d, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "bad.pt").build_model()


def test_checkpoint_pickle_is_dry_run_before_torch_allocates(tmp_path):
    """torch's weights_only loader admits bytearray (bytearray(2**33) allocates 8 GiB) and
    allocates storages at their declared size; the dry run refuses both first."""
    import io
    import pickle
    import zipfile

    bomb = tmp_path / "bytearray.pt"
    torch.save({"format": "softlif-checkpoint-1", "x": bytearray(16)}, bomb)
    with pytest.raises(CheckpointError, match="refusing global (__builtin__|builtins).bytearray"):
        load_checkpoint(bomb)

    class Declares(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, str) and obj == "S":
                return ("storage", torch.FloatStorage, "0", "cpu", 2**40)
            return None

    buf = io.BytesIO()
    Declares(buf, protocol=2).dump({"format": "softlif-checkpoint-1", "w": "S"})
    huge = tmp_path / "huge.pt"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/data/0", bytes(8))
    with pytest.raises(CheckpointError, match="declares 4,398,046,511,104 bytes, the file holds 8"):
        load_checkpoint(huge)


@pytest.mark.parametrize(("change", "match"), [
    # 8 stored bytes viewed as 3 x 30000 x 30000 floats: 10.8 GB if anything touched it
    (lambda d: d["preprocess"].update(
        mean_image=torch.zeros(2).as_strided((3, 30000, 30000), (0, 0, 0))),
     r"views 2,700,000,000 elements of a storage of 2"),
    # a spec whose input would need terabytes of weights
    (lambda d: d["spec"].update(input_shape=[1, 100000, 100000]),
     r"net takes \(1, 100000, 100000\)"),
    # a spec whose hidden layer would need 10^9 x 3136 weights; shapes are compared first
    (lambda d: d["spec"]["layers"][4].update(units=10**9),
     r"3 mismatch\(es\); '10.weight': the net wants \(10, 1000000000\)"),
])
def test_checkpoints_cannot_make_softlif_allocate(saved, tmp_path, change, match):
    import copy
    import resource

    d = copy.deepcopy(saved)
    change(d)
    torch.save(d, tmp_path / "bomb.pt")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "bomb.pt")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown_kib < 500_000  # the refusal itself allocates nothing large


def test_the_rate_penalty_counts_the_energy_models_synaptic_events():
    """RateTap's count on a batch is the energy model's synops/s for the rates it recorded
    (independent: softlif.energy from the layer table)."""
    from softlif.activations import set_rate_mode
    from softlif.energy import energy_report
    from softlif.networks import build, layer_table
    from softlif.train import RateTap, synop_weights

    spec = get_spec("mnist")
    torch.manual_seed(0)
    model = build(spec, "softlif").eval()
    set_rate_mode(model, "hard")
    tap = RateTap(model, synop_weights(spec))
    x = torch.randn(3, 1, 28, 28)
    for i in range(3):  # one image at a time: the energy model takes one rate per layer
        tap.active = True
        model(x[i:i + 1])
        tap.active = False
        rates = [float(r.mean()) for r in tap.rates]
        got = float(tap.msynops()) * 1e6
        report = energy_report(layer_table(spec), rates, 0.2, 0.001)
        assert got == pytest.approx(report.synops_per_s, rel=1e-5)
    # by hand: 5x5x64 weights per pooled unit of 2x2 conv1 neurons; 2000 per pooled conv2
    # unit (2x2); 10 readout weights per dense neuron
    assert tap.rates == [] and synop_weights(spec) == [25 * 64 / 4, 2000 / 4, 10]
    with pytest.raises(RuntimeError, match="one forward pass"):
        tap.msynops()
    with pytest.raises(ValueError, match="rate_penalty"):
        TrainConfig(rate_penalty=-1.0)


def test_the_rate_penalty_trades_synaptic_events_for_loss():
    """The same short training with and without the penalty (same seed, 1,000 images): the
    penalised net's training-time synaptic events fall below the free one's while it learns as
    well; a strong penalty silences the net (measured: 30% fewer events, chance error)."""
    train_split, test_split = load_embedded_mnist()
    train_split = train_split.subset(list(range(1000)))
    data = (train_split, test_split.subset(list(range(200))),
            paper_preprocess("mnist", train_split))
    runs = {lam: _train(data, TrainConfig(epochs=3, batch_size=50, precision="float32",
                                          rate_penalty=lam)).metrics["history"][-1]
            for lam in (1e-12, 0.01)}
    free, cheap = runs[1e-12], runs[0.01]
    assert cheap["train_msynops_per_s"] < 0.95 * free["train_msynops_per_s"]
    assert free["test_error"] < 0.35 and cheap["test_error"] <= free["test_error"] + 0.1
    with pytest.raises(ValueError, match="--activation softlif"):
        _train(data, TrainConfig(epochs=1, rate_penalty=0.1), activation="relu")


def test_penalty_finetune_config_keeps_the_base_recipe():
    from softlif.penalty_sweep import finetune_config

    base = {**TrainConfig(epochs=25, batch_size=64, smoothing=0.05, noise_std=5.0,
                          weight_decay=(1e-4, 0.0)).__dict__, "weight_decay": [1e-4, 0.0],
            "unknown_future_key": 1}
    cfg = finetune_config(base, 0.003, "base.pt", epochs=4, lr=2e-4, seed=10)
    assert (cfg.epochs, cfg.lr, cfg.seed, cfg.rate_penalty, cfg.init_from) == (
        4, 2e-4, 10, 0.003, "base.pt")
    assert cfg.anneal_to is None and cfg.smoothing is None  # held at the base's final g
    assert (cfg.batch_size, cfg.noise_std, cfg.weight_decay) == (64, 5.0, (1e-4, 0.0))


def test_eval_images_evaluates_a_prefix_but_trains_the_same(tiny_mnist):
    cfg = TrainConfig(epochs=2, batch_size=64)
    whole = _train(tiny_mnist, cfg)
    quick = _train(tiny_mnist, cfg, eval_images=30)
    for k, v in whole.state_dict.items():  # evaluation does not touch the training
        assert torch.equal(v, quick.state_dict[k]), k
    h = quick.metrics["history"]
    assert [r["test_images"] for r in h] == [30, 100]  # the last epoch: all test images
    assert h[-1]["test_error"] == whole.metrics["history"][-1]["test_error"]
    assert h[-1]["test_error_hard"] == whole.metrics["history"][-1]["test_error_hard"]
    # epoch 1 on 30 images of the fixed shuffled order (not a prefix: a class-sorted test set
    # would give one class): what a run tested on those 30 alone scores after epoch 1
    train_split, test_split, pre = tiny_mnist
    idx = torch.randperm(100, generator=torch.Generator().manual_seed(0))[:30].numpy()
    one = _train((train_split, test_split.subset(idx), pre), TrainConfig(epochs=2, batch_size=64))
    assert h[0]["test_error"] == one.metrics["history"][0]["test_error"]
    with pytest.raises(ValueError, match="eval_images"):
        _train(tiny_mnist, cfg, eval_images=0)

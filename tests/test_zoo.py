"""The model zoo: nets published with their hash load offline, a changed file is refused, and
every command that takes a checkpoint takes pretrained:NAME."""

from __future__ import annotations

import json

import pytest
import torch

from softlif import zoo
from softlif.cli import main
from softlif.data import load_embedded_mnist, paper_preprocess
from softlif.errors import CheckpointError
from softlif.networks import get_spec
from softlif.train import TrainConfig, train

INFO = {"data": "embedded MNIST subset (256 images)", "recipe": "adam", "epochs": 1,
        "command": "pytest", "measured": {"ann_error": None}}


@pytest.fixture(scope="module")
def trained():
    tr, te = load_embedded_mnist()
    tr, te = tr.subset(list(range(256))), te.subset(list(range(50)))
    pre = paper_preprocess("mnist", tr)
    return train(get_spec("mnist"), tr, te, pre, TrainConfig(epochs=1, batch_size=64),
                 progress=False, log=lambda s: None)


@pytest.fixture
def shelf(tmp_path, monkeypatch, trained):
    """A zoo folder holding one net, ``tiny``, in place of the shipped one."""
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    zoo.publish(trained, "tiny", INFO)
    return tmp_path


def test_published_net_loads_by_name_with_the_same_weights(shelf, trained):
    entry = zoo.manifest()["tiny"]
    assert entry["sha256"] == zoo.sha256_of(shelf / "tiny.safetensors")
    assert entry["bytes"] == (shelf / "tiny.safetensors").stat().st_size
    assert zoo.names() == ["tiny"]
    ck = zoo.pretrained("tiny")
    assert ck.train_state is None and ck.epoch == trained.epoch
    for k, v in trained.state_dict.items():
        assert torch.equal(ck.state_dict[k], v), k
    assert zoo.load("pretrained:tiny").epoch == trained.epoch
    import softlif as sl

    assert sl.pretrained("tiny").spec == trained.spec


def test_a_changed_file_is_refused_naming_both_hashes(shelf):
    path = shelf / "tiny.safetensors"
    expected = zoo.manifest()["tiny"]["sha256"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        zoo.pretrained("tiny")
    assert expected in str(e.value) and zoo.sha256_of(path) in str(e.value)


def test_unknown_names_and_bad_manifests_are_clear(shelf):
    with pytest.raises(CheckpointError, match="no pretrained net 'cifar11'; the zoo has: tiny"):
        zoo.pretrained("cifar11")
    doc = json.loads((shelf / "manifest.json").read_text())
    doc["models"]["tiny"]["file"] = "../elsewhere.safetensors"
    (shelf / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="missing"):
        zoo.pretrained("tiny")
    del doc["models"]["tiny"]["sha256"]
    (shelf / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="lacks sha256"):
        zoo.pretrained("tiny")


def test_commands_take_pretrained_names(shelf, capsys, tmp_path):
    code = main(["simulate", "pretrained:tiny", "--images", "4", "--presentation-time", "0.03",
                 "--c0", "0.01", "--no-fuse", "--no-progress", "--out", str(tmp_path / "sim"),
                 "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert len(json.loads(out.out)["snn_rates_hz"]) == 3
    code = main(["simulate", "pretrained:nothing", "--images", "4"])
    assert code == 1 and "the zoo has: tiny" in capsys.readouterr().err
    code = main(["train", "--epochs", "1", "--limit-train", "128", "--limit-test", "20",
                 "--init-from", "pretrained:tiny", "--out", str(tmp_path / "ft"), "--no-fuse",
                 "--no-progress", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["init_from"]["epochs"] == 1


def test_the_shipped_manifest_is_consistent():
    """Every net the repository ships is listed with the hash of the file beside it."""
    for name, entry in zoo.manifest().items():
        path = zoo.ZOO_DIR / entry["file"]
        assert path.is_file(), name
        assert zoo.sha256_of(path) == entry["sha256"], name

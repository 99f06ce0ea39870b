"""Configuration validated before any work: unknown keys, strict types, ranges, NaN/inf."""

from __future__ import annotations

import pytest

from softlif.config import (
    BUNDLED,
    ConfigError,
    load_experiment_config,
    parse_experiment_config,
)
from softlif.errors import SoftlifError
from softlif.evaluate import SimSettings


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_configs_are_valid(name):
    conf = load_experiment_config(name)
    assert conf.train.noises and conf.simulate.c0 < conf.simulate.c1


BAD = [
    ({"trian": {}}, r"unknown table \[trian\] \(did you mean 'train'\?\)"),
    ({"train": {"epoch": 3}}, r"unknown key 'epoch' \(did you mean 'epochs'\?\)"),
    ({"simulate": {"tau": 0.005}}, r"unknown key 'tau' \(did you mean 'tau_s'\?\)"),
    ({"train": {"epochs": 1.5}}, r"\[train\] epochs must be an integer, got 1.5"),
    ({"train": {"epochs": True}}, r"\[train\] epochs must be an integer, got True"),
    ({"train": {"epochs": 0}}, r"\[train\] epochs must be >= 1"),
    ({"train": {"lr": True}}, r"\[train\] lr must be a number, got True"),
    ({"train": {"lr": "fast"}}, r"\[train\] lr must be a number, got 'fast'"),
    ({"train": {"lr": float("nan")}}, r"\[train\] lr must be finite"),
    ({"train": {"weight_decay": [0.0, -0.1]}}, r"weight_decay\[1\] must be >= 0"),
    ({"train": {"noises": []}}, r"\[train\] noises must not be empty"),
    ({"train": {"noises": [10.0, float("inf")]}}, r"noises\[1\] must be finite"),
    ({"train": {"recipe": "adan"}}, r"recipe must be one of paper, paper-exp, adam, modern; got 'adan' "
                                    r"\(did you mean 'adam'\?\)"),
    ({"train": {"anneal_fraction": 1.5}}, r"anneal_fraction must be <= 1"),
    ({"train": 5}, r"\[train\] must be a table"),
    ({"simulate": {"reset": "yes"}}, r"reset must be true or false, got 'yes'"),
    ({"simulate": {"c0": 0.2, "c1": 0.1}}, r"0 <= c0 < c1 <= presentation_time"),
    ({"simulate": {"c1": 0.3}}, r"0 <= c0 < c1 <= presentation_time \(0.2 s\)"),
    ({"simulate": {"tau_s": -0.001}}, r"tau_s must be >= 0"),
    ({"simulate": {"dt": 0}}, r"dt must be > 0"),
    ({"simulate": {"dt": 0.3}}, r"dt \(0.3 s\) must be shorter than the presentation time"),
    ({"simulate": {"synapse": "exp"}}, r"synapse must be one of none, lowpass, alpha"),
    ({"simulate": {"precision": "fp16"}}, r"precision must be one of auto, float32, bfloat16"),
    ({"simulate": {"batch_size": 2.0}}, r"batch_size must be an integer"),
    ({"sweep": {"taus": [0.005], "windows": [[0.1, 0.5]]}},
     r"windows\[0\] must satisfy 0 <= c0 < c1 <= the longest presentation time"),
    ({"sweep": {"taus": [0.005], "windows": [[0.1]]}}, r"windows\[0\] must be a pair"),
    ({"sweep": {"taus": [0.005]}}, r"taus given but no windows"),
    ({"sweep": {"times": [0.0]}}, r"times must be > 0"),
]


@pytest.mark.parametrize(("doc", "match"), BAD)
def test_bad_values_are_refused_naming_table_and_key(doc, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_experiment_config(doc, source="config x.toml")
    assert str(info.value).startswith("config x.toml: ")
    assert isinstance(info.value, SoftlifError) and info.value.exit_code == 2


def test_flag_overrides_are_validated_too():
    conf = parse_experiment_config({"train": {"epochs": 3}}, overrides={"train": {"epochs": 5}})
    assert conf.train.epochs == 5
    with pytest.raises(ConfigError, match="noises must not be empty"):
        parse_experiment_config({}, overrides={"train": {"noises": []}})


def test_toml_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_experiment_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_experiment_config(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text("[train]\nepochs = 2\nnoises = [0, 10]\n[simulate]\nc0 = 0.1\n")
    conf = load_experiment_config(good)
    assert conf.train.noises == (0.0, 10.0) and conf.simulate.c0 == 0.1


def test_sim_settings_validate_on_construction():
    with pytest.raises(ConfigError, match="c0 < c1"):
        SimSettings(c0=0.5)
    assert SimSettings(precision="float64").precision == "float64"  # the reference mode
    with pytest.raises(ConfigError, match="precision"):
        SimSettings(precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no CUDA device|CUDA"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present")
        SimSettings(device="cuda")
    with pytest.raises(ConfigError, match="not a torch device"):
        SimSettings(device="gpu7")

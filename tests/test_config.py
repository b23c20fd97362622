"""Config loading: every shipped YAML loads; bad files fail with one clear UserError."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from conftest import ROOT
from processors.core.errors import UserError
from processors.core.config import Config
from processors.core.config_io import apply_overrides, from_dict, save_config
from processors.core.config_checks import validate
from models.build import check_components
from training.configure import build_config, load_config

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def write_yaml(path, data: dict):
    path.write_text(yaml.safe_dump(data))
    return path


def base_dict() -> dict:
    return yaml.safe_load((ROOT / "configs" / "unet_ljspeech.yaml").read_text())


def test_configs_folder_is_not_empty():
    assert CONFIGS, "no YAML files in configs/"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.model.params, "model params are filled in from the model's defaults"


@pytest.mark.parametrize("section, key", [(None, "run_nme"), ("train", "lr_typo"), ("data.mask", "gap_len")])
def test_unknown_key_names_key_and_file(tmp_path, section, key):
    data = base_dict()
    node = data
    for part in (section.split(".") if section else []):
        node = node[part]
    node[key] = 1
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(UserError) as err:
        load_config(path)
    message = str(err.value)
    assert key in message and str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("key, value", [("batch_size", "sixteen"), ("batch_size", True), ("lr", "fast"),
                                        ("betas", 0.9)])
def test_wrong_type_is_a_user_error(tmp_path, key, value):
    data = base_dict()
    data["train"][key] = value
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(UserError, match=rf"train\.{key}"):
        load_config(path)


def test_section_that_is_not_a_mapping(tmp_path):
    data = base_dict()
    data["train"] = [1, 2]
    with pytest.raises(UserError, match="train"):
        load_config(write_yaml(tmp_path / "bad.yaml", data))


def test_ints_and_exponent_strings_are_accepted_for_floats(tmp_path):
    data = base_dict()
    data["train"]["lr"] = "3e-4"        # YAML 1.1 reads this (no dot) as a string
    data["audio"]["f_max"] = 8000
    cfg = load_config(write_yaml(tmp_path / "ok.yaml", data))
    assert cfg.train.lr == pytest.approx(3e-4) and isinstance(cfg.train.lr, float)
    assert isinstance(cfg.audio.f_max, float)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_is_a_user_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: {lr: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(path)


def test_apply_overrides_nested_and_typed():
    data = {"train": {"lr": 1.0}, "seed": 0}
    out = apply_overrides(data, ["train.lr=0.5", "train.max_steps=7", "data.mask.mode=fixed", "seed=3",
                                 "run_name=a=b"])
    assert out["train"] == {"lr": 0.5, "max_steps": 7}
    assert out["data"]["mask"]["mode"] == "fixed"
    assert out["seed"] == 3 and out["run_name"] == "a=b"


@pytest.mark.parametrize("bad", ["train.lr", "seed.x=1", "data.extra_roots=["])
def test_bad_overrides_are_user_errors(bad):
    with pytest.raises(UserError, match="--set"):
        apply_overrides({"seed": 0}, [bad])


def test_load_config_applies_overrides():
    cfg = load_config(ROOT / "configs" / "unet_ljspeech.yaml",
                      ["train.lr=3e-4", "data.crop_frames=64", "model.params.depth=2", "loss.weights.l1=0.5"])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.crop_frames == 64
    assert cfg.model.params["depth"] == 2
    assert cfg.loss.weights["l1"] == 0.5


def test_override_with_unknown_key_is_rejected():
    with pytest.raises(UserError, match="lrr"):
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", ["train.lrr=1"])


@pytest.mark.parametrize("overrides, key", [
    (["data.mask.mode=fixed", "data.mask.gap_frames=200"], "data.mask.gap_frames"),     # longer than the crop
    (["data.mask.mode=fixed", "data.crop_frames=64", "data.mask.gap_frames=57"], "data.mask.gap_frames"),
    (["audio.n_fft=128", "audio.win_length=128", "audio.hop_length=64"], "audio.n_mels"),   # 80 bands > 65 bins
    (["audio.f_max=12000"], "audio.f_max"),                                              # above Nyquist
    (["audio.hop_length=2048"], "audio.hop_length"),
    (["data.mask.max_fraction=0.95"], "data.mask.max_fraction"),
    (["data.crop_frames=8"], "data.crop_frames"),
    (["data.val_fraction=0"], "data.val_fraction"),
    (["train.lr=0"], "train.lr"),
    (["train.batch_size=100000000"], "train.batch_size"),    # a typo of zeros: refused, not a hang
    (["data.val_items=100000000"], "data.val_items"),
    (["train.schedule=step"], "train.schedule"),
    (["data.dataset=timit"], "data.dataset"),
    (["loss.weights.perceptual=1"], "loss.weights.perceptual"),
    (["loss.weights.mse=0", "loss.weights.l1=0", "loss.weights.boundary=0", "loss.weights.compressed=0"], "loss.weights"),
    (["vocoder.method=hifigan"], "vocoder.method"),
    (["eval.domain=podcast"], "eval.domain"),
    (["eval.excerpt_seconds=-1"], "eval.excerpt_seconds"),
    (["inference.lpc_hold_ms=-5"], "inference.lpc_hold_ms"),
    (["inference.lpc_hold_ms=10", "inference.lpc_fade_ms=0"], "inference.lpc_fade_ms"),   # a hold would click
    (["inference.corpus_copy_score=1.5"], "inference.corpus_copy_score"),
    (["run_name=../elsewhere"], "run_name"),                       # a path: it would write outside checkpoints/
    (["run_name=pretrained"], "run_name"),                         # the tracked, shipped models' folder
    (["data.test_fraction=1.5"], "data.test_fraction"),
    (["inference.corpus_copy_min_ms=-1"], "inference.corpus_copy_min_ms"),
    (["inference.edge_local_db=3"], "inference.edge_local_db"),
    (["inference.corpus_copy_pull=2"], "inference.corpus_copy_pull"),
])
def test_impossible_values_name_the_key(overrides, key):
    with pytest.raises(UserError) as err:
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", overrides)
    assert key in str(err.value)
    assert "unet_ljspeech.yaml" in str(err.value)


@pytest.mark.parametrize("key, value, allowed", [
    ("audio.mel_scale", "mel", "'slaney' or 'htk'"),
    ("audio.mel_norm", "l2", "'slaney' or 'none'"),
    ("data.mask.mode", "burst", "'random', 'fixed' or 'range'"),
    ("train.schedule", "step", "'constant' or 'cosine'"),
    ("train.amp", "fp8", "'off', 'bf16' or 'fp16'"),
    ("train.amp", 16, "'off', 'bf16' or 'fp16'"),
    ("loss.perceptual.distance", "l2", "'l1' or 'mse'"),
    ("inference.stereo", "mid_side", "'downmix' or 'per_channel'"),
])
def test_a_value_outside_its_fields_choices_is_one_line_naming_key_and_choices(key, value, allowed):
    """The allowed values are the field's Literal type, checked as the file is read."""
    with pytest.raises(UserError) as err:
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", [f"{key}={value}"])
    assert str(err.value) == f"{ROOT / 'configs' / 'unet_ljspeech.yaml'}: {key}: must be {allowed}, got {value!r}"


def test_checks_return_a_completed_config_and_leave_their_argument_alone():
    data = base_dict()
    data["model"]["params"] = {"depth": 2}
    raw = from_dict(Config, data)
    before = dataclasses.asdict(raw)
    validate(raw)
    cfg = check_components(raw)
    assert dataclasses.asdict(raw) == before and raw.model.params == {"depth": 2}
    assert cfg.model.params["depth"] == 2 and len(cfg.model.params) > 1      # the model's defaults filled in
    assert cfg.reassigned.params == check_components(cfg).reassigned.params


def test_music_configs_say_music():
    assert load_config(ROOT / "configs" / "unet_cal500.yaml").eval.domain == "music"
    assert load_config(ROOT / "configs" / "unet_ljspeech.yaml").eval.domain == "speech"


def test_model_params_unknown_key():
    with pytest.raises(UserError, match=r"model\.params.*'widht'"):
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", ["model.params.widht=3"])


def test_model_params_wrong_type():
    with pytest.raises(UserError, match=r"model\.params\.depth"):
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", ["model.params.depth=deep"])


def test_unknown_model_lists_known_names():
    with pytest.raises(UserError, match=r"unknown model 'transformer'.*unet"):
        load_config(ROOT / "configs" / "unet_ljspeech.yaml", ["model.name=transformer"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_round_trip_through_dict_and_yaml(tmp_path, path):
    cfg = load_config(path)
    again = build_config(cfg.to_dict())
    assert again == cfg
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


def test_to_dict_is_plain_data(tiny_cfg):
    data = tiny_cfg.to_dict()
    yaml.safe_dump(data)      # raises on anything that is not plain data
    assert data["model"]["params"] == {"base_channels": 4, "depth": 2, "residual_interp": True, "guide": False,
                                       "corpus": False, "corpus_bands": 40, "corpus_context": 12,
                                       "corpus_max_frames": 0}
    assert dataclasses.asdict(tiny_cfg) == data

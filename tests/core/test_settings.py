"""Settings: JSON round trips, forgiving reads, sampling ranges."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from app.core.errors import HerdError
from app.core.settings import (
    DEFAULT_PRESET_ID,
    FONT_SIZE_MAX,
    FONT_SIZE_MIN,
    SAMPLING_RANGES,
    SETTINGS_VERSION,
    KVType,
    LoadSettings,
    SamplingSettings,
    Settings,
    SettingsError,
    TemplateChoice,
    Theme,
)


def test_defaults_follow_llama4() -> None:
    s = Settings()
    # Meta's reference sampler: temperature 0.6 and top-p 0.9 only (top-k and min-p off)
    assert s.sampling == SamplingSettings(0.6, 0.9, 0, 0.0, 1.0, 2048, -1)
    assert s.theme is Theme.SYSTEM and s.theme == "system"
    assert s.font_size == 0
    assert s.default_preset_id == DEFAULT_PRESET_ID == "none"  # no system prompt, as Meta's


def test_round_trip(tmp_path: Path) -> None:
    s = Settings(
        load=LoadSettings(n_ctx=4096, type_k=KVType.Q8_0, tensor_overrides=(("a", "CPU"),)),
        sampling=SamplingSettings(temperature=1.2, top_k=0, seed=42),
        last_model="/m/x.gguf",
        theme=Theme.DARK,
        font_size=14,
        default_preset_id="user-abc",
    )
    path = tmp_path / "cfg" / "settings.json"
    s.save_to(path)
    assert Settings.load_from(path) == s
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["theme"] == "dark" and data["default_preset_id"] == "user-abc"
    assert data["version"] == SETTINGS_VERSION == 2
    assert not list(path.parent.glob("*.tmp"))
    assert path.stat().st_mode & 0o077 == 0  # it holds the server's API key: owner only


def test_theme_accepts_plain_strings() -> None:
    assert Settings(theme="light").theme is Theme.LIGHT  # type: ignore[arg-type]
    s = dataclasses.replace(Settings(), theme="dark")  # type: ignore[arg-type]
    assert s.theme is Theme.DARK
    assert Settings(theme="purple").theme is Theme.SYSTEM  # type: ignore[arg-type]


def test_old_file_without_new_fields(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"theme": "light", "font_size": 12, "sampling": {}}))
    s = Settings.load_from(path)
    assert s.theme is Theme.LIGHT and s.font_size == 12
    assert s.default_preset_id == DEFAULT_PRESET_ID


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "null", '"x"', ""])
def test_damaged_file_gives_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)
    assert Settings.load_from(path) == Settings()


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert Settings.load_from(tmp_path / "nope.json") == Settings()


def test_bad_values_fall_back_per_field(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    bad = {
        "load": {
            "n_ctx": "big",
            "type_k": "q9_9",
            "flash_attn": 1,
            "template": "model",
            "tensor_overrides": "x",
            "unknown": 3,
        },
        "sampling": {"temperature": "hot", "top_k": 12.5, "top_p": 0.5, "seed": None},
        "last_model": 7,
        "theme": ["dark"],
        "font_size": "huge",
        "default_preset_id": 3,
        "extra": True,
    }
    path.write_text(json.dumps(bad))
    s = Settings.load_from(path)
    assert s.load.n_ctx == 8192 and s.load.type_k is KVType.F16 and s.load.flash_attn is False
    assert s.load.template is TemplateChoice.MODEL and s.load.tensor_overrides == ()
    assert s.sampling == SamplingSettings(top_p=0.5)
    assert s.last_model == "" and s.theme is Theme.SYSTEM and s.font_size == 0
    assert s.default_preset_id == DEFAULT_PRESET_ID


def test_sections_that_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"load": [1], "sampling": "x", "theme": "DARK"}))
    s = Settings.load_from(path)
    assert s.load == LoadSettings() and s.sampling == SamplingSettings()
    assert s.theme is Theme.DARK


def test_out_of_range_is_clamped_on_read(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "sampling": {
                    "temperature": 5,
                    "top_p": -1,
                    "top_k": 999,
                    "min_p": 2,
                    "repeat_penalty": 0.5,
                    "max_tokens": 0,
                    "seed": -7,
                },
                "font_size": 200,
            }
        )
    )
    s = Settings.load_from(path)
    assert s.sampling == SamplingSettings(2.0, 0.0, 200, 1.0, 1.0, 1, -1)
    assert isinstance(s.sampling.temperature, float) and isinstance(s.sampling.top_k, int)
    assert s.font_size == FONT_SIZE_MAX


@pytest.mark.parametrize(("size", "expected"), [(0, 0), (-3, 0), (3, FONT_SIZE_MIN), (13, 13)])
def test_font_size_range(size: int, expected: int) -> None:
    assert Settings.from_dict({"font_size": size}).font_size == expected


def test_nan_gives_the_default() -> None:
    s = SamplingSettings(temperature=math.nan)
    assert s.problems() == ["Temperature is not a number."]
    assert s.clamped().temperature == 0.6


def test_validate_names_each_problem() -> None:
    assert SamplingSettings().validate() == SamplingSettings()
    with pytest.raises(SettingsError) as info:
        SamplingSettings(temperature=3.0, top_k=-1).validate()
    assert isinstance(info.value, HerdError) and isinstance(info.value, ValueError)
    assert "Temperature is 3" in info.value.user_message
    assert "Top-k is -1" in info.value.user_message
    assert info.value.hint


def test_clamped_keeps_good_values_and_identity() -> None:
    s = SamplingSettings(temperature=1.5, seed=123)
    assert s.clamped() is s


def test_every_sampling_field_has_a_documented_range() -> None:
    names = [f.name for f in dataclasses.fields(SamplingSettings)]
    assert sorted(SAMPLING_RANGES) == sorted(names)
    defaults = SamplingSettings()
    for name, spec in SAMPLING_RANGES.items():
        assert spec.minimum <= getattr(defaults, name) <= spec.maximum
        assert spec.label and len(spec.help) > 20
    assert (SAMPLING_RANGES["seed"].minimum, SAMPLING_RANGES["top_k"].maximum) == (-1, 200)


def test_load_settings_round_trip_through_dict() -> None:
    load = LoadSettings(type_v=KVType.Q4_0, tensor_overrides=(("blk", "CUDA0"), ("exps", "CPU")))
    assert LoadSettings.from_dict(json.loads(json.dumps(load.to_dict()))) == load


def test_sampling_from_dict_keeps_the_wire_values() -> None:
    """The engine gets exactly what it was sent; only a settings file is clamped."""
    wire = SamplingSettings(top_k=500, max_tokens=100_000).to_dict()
    assert SamplingSettings.from_dict(wire) == SamplingSettings(top_k=500, max_tokens=100_000)


def _version_1_file(path: Path, top_k: int, min_p: float, preset: str) -> Path:
    """A settings file as Herd wrote it before version 2: every field, no "version"."""
    data = Settings(last_model="/m/x.gguf").to_dict()
    del data["version"]
    data["sampling"].update(top_k=top_k, min_p=min_p, temperature=0.7)
    data["default_preset_id"] = preset
    path.write_text(json.dumps(data))
    return path


def test_version_1_defaults_move_to_the_new_ones(tmp_path: Path) -> None:
    """Top-k 40, min-p 0.05 and the "helpful" preset were stored defaults, not choices."""
    s = Settings.load_from(_version_1_file(tmp_path / "settings.json", 40, 0.05, "helpful"))
    assert (s.sampling.top_k, s.sampling.min_p) == (0, 0.0)
    assert s.default_preset_id == DEFAULT_PRESET_ID
    assert s.sampling.temperature == 0.7 and s.last_model == "/m/x.gguf"  # the rest is kept


@pytest.mark.parametrize(
    ("top_k", "min_p", "preset"),
    [(40, 0.1, "concise"), (20, 0.05, "user-abc"), (0, 0.05, "coder"), (40, 0.0, "none")],
)
def test_version_1_choices_are_kept(tmp_path: Path, top_k: int, min_p: float, preset: str) -> None:
    s = Settings.load_from(_version_1_file(tmp_path / "settings.json", top_k, min_p, preset))
    assert (s.sampling.top_k, s.sampling.min_p, s.default_preset_id) == (top_k, min_p, preset)


def test_version_2_keeps_the_old_defaults_once_chosen(tmp_path: Path) -> None:
    """Migrated once: top-k 40 with min-p 0.05 chosen after that stays, and so on."""
    chosen = Settings(sampling=SamplingSettings(top_k=40, min_p=0.05), default_preset_id="helpful")
    path = tmp_path / "settings.json"
    chosen.save_to(path)
    assert Settings.load_from(path) == chosen

"""The parameter schema: ranges, scales, normalization and presets."""
import json
import math

import pytest
import torch

from mixing.errors import PresetError
from mixing.params import (
    BAND_WIDTH_NAMES,
    LEARNABLE_MASTER_PARAMS,
    LEARNABLE_TRACK_PARAMS,
    MASTER_PARAMS,
    MASTER_SPECS,
    MATCH_EQ_CENTRES_HZ,
    MATCH_EQ_GAIN_NAMES,
    READABLE_SCHEMA_VERSIONS,
    SCHEMA_VERSION,
    TRACK_PARAMS,
    TRACK_SPECS,
    MixParams,
    ParamSpec,
    denormalize_tensor,
    normalize_tensor,
    schema_dict,
)

ALL_SPECS = TRACK_PARAMS + MASTER_PARAMS


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.name)
def test_every_parameter_names_its_unit_and_has_its_default_inside_its_range(spec):
    assert spec.min < spec.max and spec.min <= spec.default <= spec.max
    assert spec.scale in ("linear", "log") and spec.label
    unit_suffixes = {"dB": "_db", "Hz": "_hz", "ms": "_ms", "%": "_pct", "LUFS": "_lufs", "dBTP": "_dbtp"}
    if spec.unit in unit_suffixes:
        assert spec.name.endswith(unit_suffixes[spec.unit])


def test_names_are_unique_and_master_names_carry_their_prefix():
    assert len(TRACK_SPECS) == len(TRACK_PARAMS) and len(MASTER_SPECS) == len(MASTER_PARAMS)
    assert all(spec.name.startswith("master_") for spec in MASTER_PARAMS)
    assert not set(TRACK_SPECS) & set(MASTER_SPECS)


def test_log_scale_puts_the_geometric_middle_at_one_half():
    spec = ParamSpec("x_hz", "X", "Hz", 20.0, 20000.0, 1000.0, "log")
    assert spec.normalize(math.sqrt(20.0 * 20000.0)) == pytest.approx(0.5)
    assert spec.denormalize(0.0) == pytest.approx(20.0) and spec.denormalize(1.0) == pytest.approx(20000.0)


def test_invalid_specs_are_refused():
    with pytest.raises(ValueError, match="default"):
        ParamSpec("x_db", "X", "dB", 0.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="positive minimum"):
        ParamSpec("x_hz", "X", "Hz", 0.0, 1.0, 0.5, "log")


def test_tensor_normalization_round_trips_and_clamps_out_of_range_values():
    norm = torch.rand(5, len(LEARNABLE_TRACK_PARAMS), generator=torch.Generator().manual_seed(0))
    values = denormalize_tensor(norm, LEARNABLE_TRACK_PARAMS)
    torch.testing.assert_close(normalize_tensor(values, LEARNABLE_TRACK_PARAMS), norm, atol=1e-5, rtol=0)
    clamped = denormalize_tensor(torch.full((len(LEARNABLE_MASTER_PARAMS),), 2.0), LEARNABLE_MASTER_PARAMS)
    assert all(float(clamped[spec.name]) == pytest.approx(spec.max) for spec in LEARNABLE_MASTER_PARAMS)
    with pytest.raises(ValueError, match="expected"):
        denormalize_tensor(torch.zeros(3), LEARNABLE_TRACK_PARAMS)


def test_preset_round_trips_through_json_and_matches_tracks_by_name_then_position():
    params = MixParams.default(3)
    for i, row in enumerate(params.tracks):
        row["gain_db"] = float(i)
    preset = json.loads(json.dumps(params.to_preset(["Kick", "Bass", "Vox"])))
    assert preset["schema_version"] == SCHEMA_VERSION
    again = MixParams.from_preset(preset, ["Vox", "Kick", "Synth", "Extra"])
    assert [row["gain_db"] for row in again.tracks] == [2.0, 0.0, 2.0, 0.0]  # by name, by name, position 3, default


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p.update(schema_version=99), "schema_version"),
        (lambda p: p["tracks"][0]["params"].update(volume=1.0), "unknown parameter 'volume'"),
        (lambda p: p["tracks"][0]["params"].update(gain_db=99.0), r"gain_db = 99.0 dB is outside \[-36.0, 24.0\]"),
        (lambda p: p["master"].update(master_comp_ratio="hard"), "must be a finite number"),
        (lambda p: p["master"].update(master_width_pct=float("nan")), "must be a finite number"),
        (lambda p: p.update(tracks={"a": 1}), "'tracks' must be a list"),
    ],
)
def test_invalid_presets_raise_a_preset_error_naming_the_problem(change, message):
    preset = MixParams.default(1).to_preset()
    change(preset)
    with pytest.raises(PresetError, match=message):
        MixParams.from_preset(preset)


def test_missing_parameters_take_their_defaults():
    params = MixParams.from_preset(
        {"schema_version": SCHEMA_VERSION, "tracks": [{"name": "A", "params": {"gain_db": -3}}]}
    )
    assert params.tracks[0]["gain_db"] == -3.0
    assert params.tracks[0]["pan_pct"] == TRACK_SPECS["pan_pct"].default
    assert params.master == {spec.name: spec.default for spec in MASTER_PARAMS}


def test_schema_dict_is_json_and_lists_every_parameter():
    schema = json.loads(json.dumps(schema_dict()))
    assert [p["name"] for p in schema["track"]] == [spec.name for spec in TRACK_PARAMS]
    assert [p["name"] for p in schema["master"]] == [spec.name for spec in MASTER_PARAMS]


def test_a_version_1_preset_loads_with_a_flat_match_eq_and_centred_balance():
    version_2_only = {*MATCH_EQ_GAIN_NAMES, "master_balance_pct"}
    master = {spec.name: spec.default for spec in MASTER_PARAMS if spec.name not in version_2_only}
    master.update(master_width_pct=140.0, master_eq_high_shelf_gain_db=3.0)
    preset = {"schema_version": 1, "tracks": [{"name": "Kick", "params": {"gain_db": -4.0}}], "master": master}
    params = MixParams.from_preset(json.loads(json.dumps(preset)))
    assert params.tracks[0]["gain_db"] == -4.0
    assert params.master["master_width_pct"] == 140.0 and params.master["master_eq_high_shelf_gain_db"] == 3.0
    assert all(params.master[name] == 0.0 for name in MATCH_EQ_GAIN_NAMES)
    assert params.master["master_balance_pct"] == 0.0
    # Saved again, it is a current preset.
    assert params.to_preset()["schema_version"] == SCHEMA_VERSION == max(READABLE_SCHEMA_VERSIONS)


def test_a_version_2_preset_loads_with_the_expander_off():
    master = {spec.name: spec.default for spec in MASTER_PARAMS if "expander" not in spec.name}
    master.update(master_match_eq_05_gain_db=2.0)
    preset = {"schema_version": 2, "tracks": [{"name": "Kick", "params": {"gain_db": -4.0}}], "master": master}
    params = MixParams.from_preset(json.loads(json.dumps(preset)))
    assert params.master["master_match_eq_05_gain_db"] == 2.0
    assert params.master["master_expander_ratio"] == 1.0  # a ratio of 1 leaves the sound as version 2 made it


def test_a_version_4_preset_loads_with_every_band_at_full_width():
    master = {spec.name: spec.default for spec in MASTER_PARAMS if spec.name not in BAND_WIDTH_NAMES}
    master.update(master_match_eq_20_lr_db=1.5, master_width_pct=120.0)
    preset = {"schema_version": 4, "tracks": [{"name": "Kick", "params": {"gain_db": -4.0}}], "master": master}
    params = MixParams.from_preset(json.loads(json.dumps(preset)))
    assert params.master["master_match_eq_20_lr_db"] == 1.5 and params.master["master_width_pct"] == 120.0
    assert all(params.master[name] == 100.0 for name in BAND_WIDTH_NAMES)  # 100 %: as version 4 sounded


def test_band_width_has_one_slider_in_pct_per_match_eq_band_and_is_not_learned():
    assert len(BAND_WIDTH_NAMES) == len(MATCH_EQ_CENTRES_HZ)
    specs = [MASTER_SPECS[name] for name in BAND_WIDTH_NAMES]
    assert {(spec.unit, spec.min, spec.max, spec.default, spec.group, spec.learnable) for spec in specs} == {
        ("%", 0.0, 200.0, 100.0, "master band width", False)}
    assert specs[0].label == "95 Hz width" and specs[-1].label == "13.7 kHz width"


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, 99, "2", True, None, 1.5])
def test_unknown_schema_versions_are_refused(version):
    preset = MixParams.default(1).to_preset()
    if version is None:
        del preset["schema_version"]
    else:
        preset["schema_version"] = version
    with pytest.raises(PresetError, match="schema_version"):
        MixParams.from_preset(preset)


def test_match_eq_has_one_flat_bipolar_gain_per_bark_band_and_is_not_learned():
    assert len(MATCH_EQ_GAIN_NAMES) == len(MATCH_EQ_CENTRES_HZ) == 24
    assert list(MATCH_EQ_CENTRES_HZ) == sorted(MATCH_EQ_CENTRES_HZ)
    for name in (*MATCH_EQ_GAIN_NAMES, "master_balance_pct"):
        spec = MASTER_SPECS[name]
        assert spec.default == 0.0 and spec.min == -spec.max and not spec.learnable


def test_clamp_limits_a_value_to_the_specs_range():
    spec = MASTER_SPECS["master_width_pct"]
    assert spec.clamp(spec.min - 1.0) == spec.min
    assert spec.clamp(spec.max + 1.0) == spec.max
    inside = (spec.min + spec.max) / 2
    assert spec.clamp(inside) == inside

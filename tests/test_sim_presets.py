"""Device presets: shipped files load, and bad values are refused naming the field."""
import pytest

from sim_backend import DevicePreset, PresetError, load_preset
from sim_backend.presets import preset_names


def test_shipped_presets_load():
    assert {"film-amr", "crossbar-sot", "ideal"} <= set(preset_names())
    film = load_preset("film-amr")
    assert isinstance(film, DevicePreset)
    assert film.polarity == "unipolar"
    assert 0.01 <= film.contrast <= 0.03
    assert load_preset("crossbar-sot").polarity == "bipolar"
    ideal = load_preset("ideal")
    spreads = ("g_spread", "contrast_spread", "threshold_spread", "rate_spread")
    noises = ("cycle_noise", "read_noise_window", "stuck_probability")
    assert all(getattr(ideal, f) == 0 for f in spreads + noises)
    assert all(getattr(film, f) > 0 for f in spreads + noises)


def test_mapping_path_and_overrides(tmp_path):
    data = load_preset("film-amr").model_dump()
    assert load_preset(data) == load_preset("film-amr")
    assert load_preset("film-amr", {"cycle_noise": 0.0}).cycle_noise == 0.0
    path = tmp_path / "mine.toml"
    path.write_text("\n".join(f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
                              for k, v in data.items() if k != "name").replace("'", '"'))
    loaded = load_preset(path)
    assert loaded.name == "mine" and loaded.g_max_S == data["g_max_S"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"train_pulse_width_s": -1e-3}, "train_pulse_width_s"),
        ({"g_min_S": 2e-4}, "g_min_S"),
        ({"stuck_probability": 1.5}, "stuck_probability"),
        ({"rest_state": -0.1}, "rest_state"),
        ({"wall_length_m": 0.0}, "wall_length_m"),
        ({"polarity": "sideways"}, "polarity"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_values_name_the_field(change, field):
    with pytest.raises(PresetError, match=field):
        load_preset("film-amr", change)


def test_unknown_key_says_so():
    with pytest.raises(PresetError, match="'width_ms': unknown key"):
        load_preset({**load_preset("ideal").model_dump(), "width_ms": 3})


def test_unknown_preset_name_lists_shipped_ones():
    with pytest.raises(PresetError, match="film-amr"):
        load_preset("no-such-preset")


def test_with_changes_validates():
    with pytest.raises(PresetError, match="g_min_S"):
        load_preset("ideal").with_changes(g_min_S=1.0)

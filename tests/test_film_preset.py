"""The continuous-film preset model: loads by name, refuses bad values naming the field, and
leaves the pair presets as they were."""
import pytest

from sim_backend import DevicePreset, FilmPreset, PresetError, load_preset
from sim_backend.presets import preset_names


def test_film_presets_load_as_their_own_model_and_pairs_stay_pairs():
    assert "film-continuous" in preset_names()
    assert isinstance(load_preset("film-continuous"), FilmPreset)
    assert isinstance(load_preset("film-amr"), DevicePreset)  # the pair abstraction, kept
    data = load_preset("film-continuous").model_dump()
    assert load_preset(data) == load_preset("film-continuous")  # round trip (archives store this)
    assert load_preset("film-continuous", {"cells_per_side": 64}).cells_per_side == 64
    assert load_preset("film-continuous").with_changes(amr_ratio=0.03).amr_ratio == 0.03


@pytest.mark.parametrize("change, field", [
    ({"cells_per_side": 2}, "cells_per_side"),
    ({"amr_ratio": -0.01}, "amr_ratio"),
    ({"curie_K": 250.0}, "curie_K"),
    ({"thickness_m": 0.0}, "thickness_m"),
    ({"stuck_fraction": 1.5}, "stuck_fraction"),
    ({"contact_width_fraction": 1.0}, "contact_width_fraction"),
    ({"g_max_S": 1e-4}, "g_max_S"),  # a pair-model field is unknown to the film model
])
def test_bad_film_values_are_refused_naming_the_field(change, field):
    with pytest.raises(PresetError, match=field):
        load_preset("film-continuous", change)

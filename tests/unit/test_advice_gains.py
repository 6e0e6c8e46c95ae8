"""The learnt gain corrector: its features of a detuned pair, its fit and its checkpoint."""
import copy

import pytest
import torch

from mixing.params import MixParams
from mixing.train.advice_gains import FEATURES, fit, load_model, pair_features, predict_gains_db, save_model
from tests.unit.test_advice import session


def test_pair_features_read_the_level_gap_of_a_detuned_fader():
    engine = session()
    target = MixParams.default(3)
    current = copy.deepcopy(target)
    current.tracks[1]["gain_db"] = -5.0
    rows = pair_features(engine, current, target)
    assert rows.shape == (3, len(FEATURES))
    gaps = rows[:, FEATURES.index("level_gap_db")]
    # No compressor: the level moves with the fader, dB for dB, and so does every band.
    assert gaps.tolist() == pytest.approx([0.0, -5.0, 0.0], abs=0.01)
    band_gaps = rows[1, FEATURES.index("band_00_gap_db"):FEATURES.index("comp_ratio")]
    assert band_gaps.tolist() == pytest.approx([-5.0] * len(band_gaps), abs=0.05)


def test_the_corrector_learns_to_undo_a_level_gap_and_survives_its_checkpoint(tmp_path):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(400, len(FEATURES), generator=generator) * 4.0
    labels = -inputs[:, FEATURES.index("level_gap_db")]
    model = fit(inputs, labels, epochs=400)
    with torch.no_grad():
        assert float((model(inputs) - labels).pow(2).mean().sqrt()) < 0.5
    save_model(model, tmp_path / "corrector.pt")
    assert (tmp_path / "corrector.pt").stat().st_size < 1_000_000
    loaded = load_model(tmp_path / "corrector.pt")
    with torch.no_grad():
        assert torch.equal(loaded(inputs), model(inputs))
    target = MixParams.default(3)
    assert len(predict_gains_db(loaded, session(), copy.deepcopy(target), target)) == 3

"""AF loss (Diff-MST eq. 8) and the MRSTFT helper."""
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mixing import features
from mixing.losses import PAPER_WEIGHTS, AudioFeatureLoss, feature_distances, feature_metrics, mrstft_loss

SR = 44100


def stereo_noise(seed: int, samples: int = SR, batch: int = 1, right_gain: float = 0.7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(batch, 2, samples, generator=generator)
    x[:, 1] = right_gain * x[:, 1] + 0.5 * x[:, 0]
    return x


def test_paper_weights_are_the_defaults():
    assert AudioFeatureLoss(SR).weights == {
        "rms": 0.1, "crest_factor_db": 0.001, "bark_spectrum": 0.1, "stereo_width": 1.0, "stereo_imbalance": 1.0,
    }


def test_loss_of_a_mix_with_itself_is_zero():
    x = stereo_noise(0)
    total, terms = AudioFeatureLoss(SR)(x, x)
    assert total.item() == 0.0
    assert all(value.item() == 0.0 for value in terms.values())


def test_terms_are_named_by_feature_and_sum_to_the_total():
    total, terms = AudioFeatureLoss(SR)(stereo_noise(1), stereo_noise(2, right_gain=0.2))
    assert list(terms) == list(features.FEATURE_NAMES)
    assert total.item() == pytest.approx(sum(value.item() for value in terms.values()), rel=1e-6)
    assert all(value.item() > 0 for value in terms.values())


def test_per_channel_terms_are_half_the_sum_over_channels_of_weighted_mse():
    pred, ref = stereo_noise(3), stereo_noise(4, right_gain=0.3)
    _, terms = AudioFeatureLoss(SR)(pred, ref)
    for name, transform in (("rms", features.rms), ("crest_factor_db", features.crest_factor_db)):
        channel_mse = [
            float((transform(pred[:, i : i + 1]) - transform(ref[:, i : i + 1])).pow(2).mean()) for i in range(2)
        ]
        assert terms[name].item() == pytest.approx(PAPER_WEIGHTS[name] * 0.5 * sum(channel_mse), rel=1e-5)
    width_se = float((features.stereo_width(pred) - features.stereo_width(ref)) ** 2)
    assert terms["stereo_width"].item() == pytest.approx(PAPER_WEIGHTS["stereo_width"] * width_se, rel=1e-5)


def test_loss_grows_with_gain_mismatch():
    ref = stereo_noise(5)
    loss = AudioFeatureLoss(SR)
    totals = [loss(ref * 10 ** (gain_db / 20), ref)[0].item() for gain_db in (0.5, 3.0, 6.0, 12.0)]
    assert all(a < b for a, b in itertools.pairwise(totals))


def test_loss_grows_with_imbalance_mismatch():
    ref = stereo_noise(6, right_gain=1.0)
    loss = AudioFeatureLoss(SR)
    pans = [torch.tensor([[[1.0], [gain]]]) for gain in (0.9, 0.6, 0.3)]
    totals = [loss(ref * pan, ref)[1]["stereo_imbalance"].item() for pan in pans]
    assert all(a < b for a, b in itertools.pairwise(totals))


def test_weights_can_be_overridden_and_unknown_names_are_refused():
    pred, ref = stereo_noise(7), stereo_noise(8, right_gain=0.2)
    _, terms = AudioFeatureLoss(SR, weights={"stereo_width": 0.0, "rms": 2.0})(pred, ref)
    _, paper_terms = AudioFeatureLoss(SR)(pred, ref)
    assert terms["stereo_width"].item() == 0.0
    assert terms["rms"].item() == pytest.approx(20.0 * paper_terms["rms"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="unknown feature weight 'loudness'"):
        AudioFeatureLoss(SR, weights={"loudness": 1.0})


def test_cached_reference_features_give_the_same_loss():
    pred, ref = stereo_noise(9), stereo_noise(10)
    loss = AudioFeatureLoss(SR)
    ref_features = {name: value.detach() for name, value in loss.features(ref).items()}
    total, _ = loss.compare(loss.features(pred), ref_features)
    assert total.item() == pytest.approx(loss(pred, ref)[0].item(), rel=1e-6)


def test_reference_may_differ_in_length_and_broadcast_over_the_batch():
    pred = stereo_noise(11, samples=SR, batch=3)
    ref = stereo_noise(12, samples=SR // 2, batch=1)
    total, _ = AudioFeatureLoss(SR)(pred, ref)
    items = [AudioFeatureLoss(SR)(pred[i : i + 1], ref)[0].item() for i in range(3)]
    assert total.item() == pytest.approx(np.mean(items), rel=1e-5)


def test_mono_mixes_are_refused():
    with pytest.raises(ValueError, match="2 channels"):
        AudioFeatureLoss(SR)(torch.zeros(1, 1, 1000), torch.zeros(1, 1, 1000))


@pytest.mark.parametrize("pred_kind", ["silence", "noise", "same_as_ref", "anti_phase"])
def test_gradients_are_finite(pred_kind):
    ref = stereo_noise(13)
    base = {
        "silence": torch.zeros(1, 2, SR),
        "noise": stereo_noise(14),
        "same_as_ref": ref.clone(),
        "anti_phase": torch.stack([ref[:, 0], -ref[:, 0]], dim=1),
    }[pred_kind]
    pred = base.clone().requires_grad_(True)
    total, _ = AudioFeatureLoss(SR)(pred, ref)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(pred.grad).all()


def test_gradient_on_a_quiet_mix_points_towards_more_level():
    ref = stereo_noise(15)
    gain = torch.tensor(0.25, requires_grad=True)
    AudioFeatureLoss(SR)(gain * ref, ref)[0].backward()
    assert gain.grad.item() < 0


def test_feature_distances_need_stereo_features():
    mono = features.audio_features(torch.zeros(1, 1, 100), SR)
    with pytest.raises(ValueError, match="stereo_width"):
        feature_distances(mono, mono)


def test_feature_metrics_are_floats_with_the_af_loss():
    pred, ref = stereo_noise(16), stereo_noise(17, right_gain=0.3)
    metrics = feature_metrics(pred, ref, SR)
    assert set(metrics) == set(features.FEATURE_NAMES) | {"af_loss"}
    assert all(isinstance(value, float) for value in metrics.values())
    # Reports use Diff-MST's bark spectrum; the fitting variant only when asked for by name.
    paper = AudioFeatureLoss(SR, bark=features.PAPER_BARK)(pred, ref)[0].item()
    assert metrics["af_loss"] == pytest.approx(paper, rel=1e-6)
    fit = feature_metrics(pred, ref, SR, bark=features.FIT_BARK)["af_loss"]
    assert fit == pytest.approx(AudioFeatureLoss(SR)(pred, ref)[0].item(), rel=1e-6) and fit != pytest.approx(paper)
    assert metrics["stereo_imbalance"] == pytest.approx(
        float((features.stereo_imbalance(pred) - features.stereo_imbalance(ref)) ** 2), rel=1e-5
    )


def test_mrstft_loss_is_zero_for_identical_audio_and_positive_otherwise():
    loss = mrstft_loss()
    x = stereo_noise(18, samples=16384)
    assert [stft.fft_size for stft in loss.stft_losses] == [512, 2048, 8192]
    assert [stft.hop_size for stft in loss.stft_losses] == [256, 1024, 4096]
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(0.5 * x, x).item() > 0.1


def test_auraloss_needs_no_optional_dependencies():
    blocked = "import sys; [sys.modules.__setitem__(m, None) for m in ('librosa', 'matplotlib', 'scipy')]; "
    code = blocked + (
        "from mixing.losses import mrstft_loss; import torch; "
        "x = torch.rand(1, 2, 9000); print(float(mrstft_loss()(x, x)))"
    )
    repo_root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert result.returncode == 0, result.stderr

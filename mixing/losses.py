"""Losses between a predicted mix and a reference: the AF loss and the MRSTFT loss of Diff-MST.

Seed 002 (Diff-MST), section 2.6, equation 8:

    Loss(Mp, Mr) = 1/2 sum_{i=1..2} sum_{j=1..5} w_j MSE(T_j(Mp_i), T_j(Mr_i))

For the per-channel transforms (RMS, crest factor, bark spectrum) the mean of
the squared error over (batch, channels[, bands]) is exactly
1/2 sum_i MSE_i. Stereo width and imbalance are one value per stereo mix,
the same for i = 1 and i = 2, so the channel sum and its 1/2 cancel and their
term is the MSE over the batch.
"""
from __future__ import annotations

from collections.abc import Mapping

import auraloss
import torch
from torch import nn

from mixing import features

# The weights w_j of equations 3-7.
PAPER_WEIGHTS: dict[str, float] = {
    "rms": 0.1,
    "crest_factor_db": 0.001,
    "bark_spectrum": 0.1,
    "stereo_width": 1.0,
    "stereo_imbalance": 1.0,
}


# A mono reference says nothing about the stereo field: these weights leave it out of the comparison.
WITHOUT_STEREO_TERMS: dict[str, float] = {"stereo_width": 0.0, "stereo_imbalance": 0.0}


class AudioFeatureLoss(nn.Module):
    """The AF loss (eq. 8) between stereo mixes, with each weighted term reported.

    ``weights`` overrides some or all of :data:`PAPER_WEIGHTS`. Calling the
    module with pred and ref mixes (batch, 2, samples) returns
    ``(total, terms)``: a scalar tensor and a dict of the weighted scalar terms,
    keyed by :data:`mixing.features.FEATURE_NAMES`, that add up to it.

    ``bark``: how the bark spectrum is taken (:class:`mixing.features.BarkConvention`):
    :data:`~mixing.features.FIT_BARK`, the default, is what fitting, matching
    and training optimise; :data:`~mixing.features.PAPER_BARK` is the
    yardstick every report uses (:func:`feature_metrics`).

    The two mixes may differ in length (features are averages over time), and
    a reference of batch 1 broadcasts over a predicted batch. When the same
    reference is compared many times (fitting), compute its features once with
    :meth:`features` and call :meth:`compare`.
    """

    def __init__(
        self,
        sample_rate: int,
        weights: Mapping[str, float] | None = None,
        *,
        bark: features.BarkConvention = features.FIT_BARK,
        n_bands: int = features.N_BARK_BANDS,
    ):
        super().__init__()
        unknown = sorted(set(weights or {}) - set(PAPER_WEIGHTS))
        if unknown:
            raise ValueError(f"unknown feature weight {unknown[0]!r}; expected names from {list(PAPER_WEIGHTS)}")
        self.weights = {**PAPER_WEIGHTS, **(weights or {})}
        self.sample_rate = int(sample_rate)
        self.bark = bark
        self.n_fft = bark.n_fft
        self.hop_length = bark.hop_length
        self.n_bands = n_bands

    def features(self, mix: torch.Tensor, magnitude: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The AF transforms of a stereo mix (batch, 2, samples), with this loss's STFT settings.

        ``magnitude``: the ``features.mean_magnitude_spectrum`` the bark spectrum starts from, with these
        settings, if already computed.
        """
        features.check_audio_shape(mix, stereo=True)
        return features.audio_features(mix, self.sample_rate, convention=self.bark, n_bands=self.n_bands,
                                       magnitude=magnitude)

    def compare(
        self, pred_features: Mapping[str, torch.Tensor], ref_features: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 8 on precomputed features: returns (total, weighted terms)."""
        distances = feature_distances(pred_features, ref_features)
        terms = {name: self.weights[name] * distance for name, distance in distances.items()}
        return sum(terms.values()), terms

    def forward(self, pred_mix: torch.Tensor, ref_mix: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.compare(self.features(pred_mix), self.features(ref_mix))

    def extra_repr(self) -> str:
        weights = ", ".join(f"{name}={weight:g}" for name, weight in self.weights.items())
        return f"sample_rate={self.sample_rate}, bark={self.bark.name}, n_bands={self.n_bands}, {weights}"


def feature_distances(
    pred_features: Mapping[str, torch.Tensor], ref_features: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Unweighted MSE of each AF transform (the per-feature columns of the paper's Table 1)."""
    missing = [name for name in features.FEATURE_NAMES if name not in pred_features or name not in ref_features]
    if missing:
        raise ValueError(f"feature {missing[0]!r} is missing; the AF loss needs stereo mixes")
    return {name: (pred_features[name] - ref_features[name]).pow(2).mean() for name in features.FEATURE_NAMES}


def feature_metrics(pred_mix: torch.Tensor, ref_mix: torch.Tensor, sample_rate: int, *,
                    bark: features.BarkConvention = features.PAPER_BARK) -> dict[str, float]:
    """Evaluation figures as in the paper's Table 1: the unweighted MSE of each feature and ``af_loss``, with the
    bark spectrum as Diff-MST's code takes it unless ``bark`` says otherwise.

    pred_mix, ref_mix: (batch, 2, samples). Returns plain floats for display.
    """
    loss = AudioFeatureLoss(sample_rate, bark=bark)
    with torch.no_grad():
        pred_features, ref_features = loss.features(pred_mix), loss.features(ref_mix)
        total, _ = loss.compare(pred_features, ref_features)
        distances = feature_distances(pred_features, ref_features)
    return {**{name: float(value) for name, value in distances.items()}, "af_loss": float(total)}


def mrstft_loss() -> auraloss.freq.MultiResolutionSTFTLoss:
    """The MRSTFT loss of section 2.6 for training method 1 (full-reference: same content).

    Windows of 512, 2048 and 8192 samples with hops of half a window; L1
    distances of log and linear magnitudes (the paper's wording), without the
    spectral-convergence term. Takes (batch, channels, samples) pairs and
    returns a scalar tensor.
    """
    window_sizes = [512, 2048, 8192]
    return auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=window_sizes,
        hop_sizes=[size // 2 for size in window_sizes],
        win_lengths=window_sizes,
        w_sc=0.0,
        w_log_mag=1.0,
        w_lin_mag=1.0,
    )

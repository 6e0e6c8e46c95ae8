"""The controller network: tracks and a reference mix in, normalized console parameters out.

A compact version of the Diff-MST controller (Vanka et al., "Diff-MST:
Differentiable Mixing Style Transfer", ISMIR 2024, sections 2.4-2.5):

- Two spectrogram CNN encoders of the same design with separate weights:
  ``track_encoder`` (f_theta_t) embeds every channel of every track and
  ``reference_encoder`` (f_theta_r) embeds each channel of the reference.
  Each takes a magnitude STFT (Hann window 2048, hop 512), averages it into
  mel-spaced bands and groups of frames, takes the log and runs a few conv
  blocks pooled over time.
- A transformer encoder attends over one token per track, one token per
  reference channel and a learned master-bus token. Tracks get no positional
  encoding and padding tracks are masked out of attention, so the predicted
  parameters follow the tracks under any permutation and do not depend on
  how much padding a batch carries.
- A shared MLP maps each track token to that track's learnable strip
  parameters and another MLP maps the master token to the learnable
  master-bus parameters; sigmoids keep every output in [0, 1] (``_norm``).

Where the paper splits a stereo track into two mono tracks, our console keeps
a stereo stem as one strip with one pan and one compressor, so each track gets
exactly one token: its channels are embedded by the shared track encoder
separately, the embeddings are averaged, and a learned stereo embedding is
added to stereo tracks so the network can tell them from mono ones.
The reference's two channels stay separate tokens (as in the paper) and carry
a learned left/right embedding, so balance and width remain visible.

Input convention for batches of sessions with different track counts:
``tracks`` is ``(batch, tracks, 2, samples)``, padded with silent tracks up to
the largest session; ``track_mask`` is ``(batch, tracks)``, True for real
tracks; ``stereo`` is ``(batch, tracks)``, True where channel 1 is a real
second channel (for mono tracks channel 1 is ignored). :func:`pack_session`
and :func:`collate_sessions` build these tensors.

The network expects loudness-normalized audio at :data:`mixing.SAMPLE_RATE`:
each track at :data:`mixing.params.TRACK_INPUT_LUFS` and the reference at
:data:`REFERENCE_INPUT_LUFS`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mixing import SAMPLE_RATE
from mixing.params import LEARNABLE_MASTER_PARAMS, LEARNABLE_TRACK_PARAMS

# The level the paper normalizes references to (section 3.1).
REFERENCE_INPUT_LUFS = -16.0

N_FFT = 2048
HOP_SAMPLES = 512
# The lowest band starts at the bottom of hearing; bins below it carry only DC and rumble.
_MEL_MIN_HZ = 20.0
# Floor of the band power: a magnitude of 1e-5 (-100 dB), far below any loudness-normalized signal.
_POWER_EPS = 1e-10
# Untrained heads start at the schema defaults, kept away from the sigmoid's flat ends.
_INIT_NORM_MARGIN = 0.02


def default_config() -> dict:
    """Init kwargs of the shipped controller (3.2 M parameters, a 13 MB checkpoint)."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_bands": 64,
        "frames_per_step": 4,
        "conv_channels": [16, 32, 64, 128],
        "embed_dim": 256,
        "num_layers": 3,
        "num_heads": 8,
        "ff_dim": 1024,
        "dropout": 0.1,
    }


def tiny_config() -> dict:
    """Init kwargs of a very small controller for tests."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_bands": 16,
        "frames_per_step": 4,
        "conv_channels": [4, 8],
        "embed_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "ff_dim": 32,
        "dropout": 0.1,
    }


def mel_filterbank(n_fft: int, sample_rate: int, n_bands: int) -> torch.Tensor:
    """Triangular mel-spaced band filters, each summing to 1 so a band holds the mean of its bins.

    Returns shape ``(n_fft // 2 + 1, n_bands)`` (bins, bands).
    """

    min_mel, max_mel = (2595.0 * math.log10(1.0 + freq_hz / 700.0) for freq_hz in (_MEL_MIN_HZ, sample_rate / 2))
    edges_hz = 700.0 * (10.0 ** (torch.linspace(min_mel, max_mel, n_bands + 2, dtype=torch.float64) / 2595.0) - 1.0)
    bin_freqs_hz = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lower, centre, upper = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
    freqs = bin_freqs_hz[:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    if (weights.sum(0) == 0).any():
        raise ValueError(f"{n_bands} mel bands are too many for a {n_fft}-point FFT: the lowest would hold no bin")
    return (weights / weights.sum(0, keepdim=True)).float()


class SpectrogramEncoder(nn.Module):
    """Embeds mono signals: STFT -> mel-band and frame pooling -> log magnitude -> conv blocks -> linear.

    Input ``(batch, samples)``, any batch of mono signals; output ``(batch, embed_dim)``.
    Each signal is embedded independently of the others in the batch (GroupNorm, no batch
    statistics), which the track-permutation guarantees rely on.
    """

    # Signals per STFT call: bounds the complex spectrogram's memory on long excerpts.
    _STFT_CHUNK = 8

    def __init__(
        self, *, sample_rate: int, n_bands: int, frames_per_step: int, conv_channels: Sequence[int], embed_dim: int
    ):
        super().__init__()
        self.frames_per_step = frames_per_step
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filterbank", mel_filterbank(N_FFT, sample_rate, n_bands), persistent=False)
        blocks = []
        in_channels = 1
        for out_channels in conv_channels:
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                nn.GroupNorm(math.gcd(8, out_channels), out_channels),
                nn.GELU(),
                # ceil_mode keeps a one-step-long input from pooling down to nothing.
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        bands_left = n_bands
        for _ in conv_channels:
            bands_left = math.ceil(bands_left / 2)
        # Mean and max over time per band and conv channel: level, and peaks for the dynamics.
        self.project = nn.Linear(2 * in_channels * bands_left, embed_dim)

    def log_bands(self, signals: torch.Tensor) -> torch.Tensor:
        """Log RMS magnitude per mel band and step of ``frames_per_step`` STFT frames.

        Takes ``(batch, samples)``, returns ``(batch, bins, frames)`` with one bin per mel band.

        Pooling power rather than magnitude leaves one square root per band
        and step instead of one per bin and frame (complex abs is the slow part).
        """
        chunks = []
        for chunk in signals.split(self._STFT_CHUNK):
            spectrum = torch.stft(chunk, N_FFT, HOP_SAMPLES, window=self.window, center=True, return_complex=True)
            power = spectrum.real.square() + spectrum.imag.square()
            if self.frames_per_step > 1:
                power = nn.functional.avg_pool1d(power, self.frames_per_step, ceil_mode=True)
            band_power = torch.einsum("nkt,kb->nbt", power, self.filterbank)
            chunks.append(0.5 * torch.log(band_power + _POWER_EPS))
        return torch.cat(chunks)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        if signals.dim() != 2:
            raise ValueError(f"expected signals of shape (batch, samples), got {tuple(signals.shape)}")
        features = self.blocks(self.log_bands(signals).unsqueeze(1))
        pooled = torch.cat([features.mean(dim=-1), features.amax(dim=-1)], dim=1)
        return self.project(pooled.flatten(1))


class Controller(nn.Module):
    """Predicts normalized console parameters from tracks and a reference mix.

    Build it with keyword arguments, e.g. ``Controller(**default_config())``;
    ``config`` returns them as plain JSON types for checkpoints.
    ``forward(tracks, track_mask, stereo, reference)`` returns
    ``(track_norm (batch, tracks, params), master_norm (batch, params))`` over
    :data:`~mixing.params.LEARNABLE_TRACK_PARAMS` and
    :data:`~mixing.params.LEARNABLE_MASTER_PARAMS` in schema order.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_bands: int,
        frames_per_step: int,
        conv_channels: Sequence[int],
        embed_dim: int,
        num_layers: int,
        num_heads: int,
        ff_dim: int,
        dropout: float,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be a multiple of num_heads {num_heads}")
        if not conv_channels:
            raise ValueError("conv_channels must name at least one conv block")
        self._config = {
            "sample_rate": int(sample_rate),
            "n_bands": int(n_bands),
            "frames_per_step": int(frames_per_step),
            "conv_channels": [int(c) for c in conv_channels],
            "embed_dim": int(embed_dim),
            "num_layers": int(num_layers),
            "num_heads": int(num_heads),
            "ff_dim": int(ff_dim),
            "dropout": float(dropout),
        }
        # Filled by load_checkpoint; empty for a freshly built model.
        self.training_info: dict = {}
        encoder_kwargs = dict(
            sample_rate=sample_rate,
            n_bands=n_bands,
            frames_per_step=frames_per_step,
            conv_channels=conv_channels,
            embed_dim=embed_dim,
        )
        self.track_encoder = SpectrogramEncoder(**encoder_kwargs)
        self.reference_encoder = SpectrogramEncoder(**encoder_kwargs)
        self.stereo_embedding = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.track_type_embedding = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.reference_channel_embedding = nn.Parameter(torch.randn(2, embed_dim) * 0.02)
        self.master_token = nn.Parameter(torch.randn(embed_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            embed_dim,
            num_heads,
            dim_feedforward=ff_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )
        self.track_head = _head(embed_dim, LEARNABLE_TRACK_PARAMS)
        self.master_head = _head(embed_dim, LEARNABLE_MASTER_PARAMS)
        self.register_buffer(
            "padding_track_norm", torch.tensor([spec.default_norm for spec in LEARNABLE_TRACK_PARAMS]), persistent=False
        )

    @property
    def config(self) -> dict:
        """The init kwargs as plain JSON types."""
        return {key: list(value) if isinstance(value, list) else value for key, value in self._config.items()}

    @property
    def sample_rate(self) -> int:
        return self._config["sample_rate"]

    @property
    def device(self) -> torch.device:
        return self.master_token.device

    def forward(
        self, tracks: torch.Tensor, track_mask: torch.Tensor, stereo: torch.Tensor, reference: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict normalized parameters.

        tracks: ``(batch, tracks, 2, samples)``; track_mask, stereo: ``(batch, tracks)`` bool;
        reference: ``(batch, 2, samples)`` (its length may differ from the tracks').
        Returns ``track_norm (batch, tracks, params)`` and ``master_norm (batch, params)`` in [0, 1].
        Rows of padding tracks hold the schema defaults.
        """
        _check_inputs(tracks, track_mask, stereo, reference)
        batch, num_tracks = track_mask.shape
        track_mask = track_mask.bool()
        stereo = stereo.bool() & track_mask

        # Only the channels that carry audio go through the encoder, so padding costs nothing and cannot leak in.
        channel_used = torch.stack([track_mask, stereo], dim=-1)
        channel_embeddings = self.track_encoder(tracks[channel_used])
        per_channel = channel_embeddings.new_zeros(batch, num_tracks, 2, channel_embeddings.shape[-1])
        per_channel[channel_used] = channel_embeddings
        channel_count = channel_used.sum(-1, keepdim=True).clamp(min=1)
        track_tokens = (
            per_channel.sum(2) / channel_count
            + stereo.unsqueeze(-1) * self.stereo_embedding
            + self.track_type_embedding
        )

        reference_tokens = self.reference_encoder(reference.reshape(batch * 2, -1)).reshape(batch, 2, -1)
        reference_tokens = reference_tokens + self.reference_channel_embedding
        master_tokens = self.master_token.expand(batch, 1, -1)

        tokens = torch.cat([master_tokens, reference_tokens, track_tokens], dim=1)
        always_present = track_mask.new_ones(batch, 3)
        padding = ~torch.cat([always_present, track_mask], dim=1)
        encoded = self.transformer(tokens, src_key_padding_mask=padding)

        master_norm = torch.sigmoid(self.master_head(encoded[:, 0]))
        track_norm = torch.sigmoid(self.track_head(encoded[:, 3:]))
        track_norm = torch.where(track_mask.unsqueeze(-1), track_norm, self.padding_track_norm)
        return track_norm, master_norm


def _head(embed_dim: int, specs) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, len(specs)))
    # An untrained controller should give the console's neutral settings, not random ones.
    defaults_norm = torch.tensor([spec.default_norm for spec in specs]).clamp(_INIT_NORM_MARGIN, 1 - _INIT_NORM_MARGIN)
    with torch.no_grad():
        head[-1].weight.mul_(0.1)
        head[-1].bias.copy_(torch.logit(defaults_norm))
    return head


def _check_inputs(tracks, track_mask, stereo, reference):
    if tracks.dim() != 4 or tracks.shape[2] != 2:
        raise ValueError(f"expected tracks of shape (batch, tracks, 2, samples), got {tuple(tracks.shape)}")
    if track_mask.shape != tracks.shape[:2] or stereo.shape != tracks.shape[:2]:
        raise ValueError(
            f"track_mask {tuple(track_mask.shape)} and stereo {tuple(stereo.shape)} "
            f"must both be (batch, tracks) = {tuple(tracks.shape[:2])}"
        )
    if reference.dim() != 3 or reference.shape[:2] != (tracks.shape[0], 2):
        raise ValueError(
            f"expected reference of shape (batch, 2, samples) with batch {tracks.shape[0]}, "
            f"got {tuple(reference.shape)}"
        )
    if not track_mask.bool().any(dim=1).all():
        raise ValueError("every session in the batch needs at least one real track")
    for name, samples in (("tracks", tracks.shape[-1]), ("reference", reference.shape[-1])):
        if samples < N_FFT:
            raise ValueError(f"{name} have {samples} samples; the controller needs at least {N_FFT}")


def pack_session(tracks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack one session's tracks, each ``(channels, samples)`` with 1 or 2 channels and equal samples.

    Returns ``audio (tracks, 2, samples)`` (a mono track is copied into both
    channels) and ``stereo (tracks,)`` bool.
    """
    if not tracks:
        raise ValueError("a session needs at least one track")
    samples = tracks[0].shape[-1]
    for i, track in enumerate(tracks):
        if track.dim() != 2 or track.shape[0] not in (1, 2):
            raise ValueError(
                f"track {i}: expected shape (channels, samples) with 1 or 2 channels, got {tuple(track.shape)}"
            )
        if track.shape[-1] != samples:
            raise ValueError(f"track {i} has {track.shape[-1]} samples; track 0 has {samples}")
    audio = torch.stack([track.expand(2, -1) for track in tracks])
    stereo = torch.tensor([track.shape[0] == 2 for track in tracks], device=audio.device)
    return audio, stereo


def collate_sessions(
    sessions: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad sessions from :func:`pack_session` (equal samples, any track counts) into one batch.

    Returns ``tracks (batch, tracks, 2, samples)``, ``track_mask (batch, tracks)``
    and ``stereo (batch, tracks)``; padding tracks are silent and masked out.
    """
    if not sessions:
        raise ValueError("no sessions to collate")
    max_tracks = max(audio.shape[0] for audio, _ in sessions)
    first = sessions[0][0]
    tracks = first.new_zeros(len(sessions), max_tracks, 2, first.shape[-1])
    track_mask = torch.zeros(len(sessions), max_tracks, dtype=torch.bool, device=first.device)
    stereo = torch.zeros_like(track_mask)
    for i, (audio, is_stereo) in enumerate(sessions):
        if audio.shape[1:] != first.shape[1:]:
            raise ValueError(
                f"session {i} has shape {tuple(audio.shape)}; "
                f"sessions must share (2, samples) = {tuple(first.shape[1:])}"
            )
        tracks[i, : audio.shape[0]] = audio
        track_mask[i, : audio.shape[0]] = True
        stereo[i, : audio.shape[0]] = is_stereo
    return tracks, track_mask, stereo

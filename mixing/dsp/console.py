"""The engines of the mixing console: the stages of ``mixing.dsp.stages`` run two ways.

- ``DifferentiableConsole``: for fitting on short excerpts; differentiable
  w.r.t. the normalized parameters, batched over tracks and excerpts. EQ in the
  frequency domain on cached track spectra. It ends with a differentiable
  loudness gain and leaves the ceiling out: the ceiling is a safety stage that
  only acts on rare peaks, its gradient is zero almost everywhere, and the
  renders that people hear apply it.
- ``IncrementalRenderer`` / ``render_mix``: whole songs, no autograd, track by
  track in float32. On the CPU the EQ is exact IIR filtering (faster than an FFT
  of a whole song); on CUDA it is the frequency-domain EQ. Keeps each track's
  processed audio so that changing one track re-processes only that track and
  the master bus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from mixing.dsp.eq import apply_response, eq_response, fft_size, schema_tail_samples
from mixing.dsp.kept import BoundedAudioStore, kept_strips_max_bytes
from mixing.dsp.limiter import driven_ceiling, loudness_gain_db
from mixing.dsp.match_eq import match_eq_spectrum
from mixing.dsp.pan import pan, pan_gains
from mixing.dsp.reverb import reverb_return
from mixing.dsp.stages import (
    compress,
    db_to_amplitude,
    master_bus,
    master_bus_after_dynamics,
    master_dynamics,
    param_columns,
    strips_before_pan,
)
from mixing.loudness import normalize_to_lufs
from mixing.params import (
    BAND_WIDTH_NAMES,
    LEARNABLE_MASTER_PARAMS,
    LEARNABLE_TRACK_PARAMS,
    MASTER_PARAMS,
    MASTER_SPECS,
    MATCH_EQ_GAIN_NAMES,
    MATCH_EQ_LR_NAMES,
    REVERB_SEND_OFF_DB,
    MixParams,
    denormalize_tensor,
)
from mixing.tone.stage import ToneStage

# The master settings read after master_dynamics; the renderer keeps the dynamics output while all the others
# stay, so that a setting added to the schema invalidates it unless it is listed here.
_AFTER_MASTER_DYNAMICS = frozenset((*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES, *BAND_WIDTH_NAMES, "master_width_pct",
                                    "master_balance_pct", "master_loudness_lufs", "master_ceiling_dbtp",
                                    "master_limiter_drive_db"))
_REVERB_BUS = ("master_reverb_decay_s", "master_reverb_predelay_ms", "master_reverb_damping_hz",
               "master_reverb_return_db")
# Neither changes a track's strip output: a move of either only updates the sums.
_AFTER_STRIP = frozenset(("pan_pct", "reverb_send_db"))
# A track's settings its strip output depends on (sorted name-value pairs) and the family whose tone model shapes
# its input (None while the tone is off): equal settings, equal output.
StripSettings = tuple[tuple[tuple[str, float], ...], str | None]
# -120 dB: a silent track reports a finite level.
_MEAN_SQUARE_FLOOR = 1e-12


def _check_tracks(tracks: Sequence[torch.Tensor], leading_dims: int) -> int:
    if len(tracks) == 0:
        raise ValueError("the console needs at least one track")
    samples = tracks[0].shape[-1]
    for index, track in enumerate(tracks):
        if track.dim() != leading_dims + 2 or track.shape[-2] not in (1, 2):
            raise ValueError(
                f"track {index + 1}: expected shape {'(excerpts, ' if leading_dims else '('}channels 1 or 2, samples), "
                f"got {tuple(track.shape)}"
            )
        if track.shape[:-2] != tracks[0].shape[:-2] or track.shape[-1] != samples:
            raise ValueError(
                f"track {index + 1}: shape {tuple(track.shape)} differs from track 1's {tuple(tracks[0].shape)}"
            )
    return samples


class DifferentiableConsole(torch.nn.Module):
    """The console for fitting: normalized parameters in, stereo mix out, differentiable.

    Prepared once with the trimmed track excerpts, each of shape (channels,
    samples) or (excerpts, channels, samples) with the same excerpts and samples
    for every track. Their spectra are cached: gain and EQ are linear, so a
    step costs one inverse FFT per track and excerpt. Move it to a device with
    ``.to(device)``. ``master_settings`` holds the values in units of the master
    parameters that fitting does not move (balance, match EQ); they take
    their defaults when left out.
    """

    def __init__(self, tracks: Sequence[torch.Tensor], sample_rate: int,
                 master_settings: Mapping[str, float] | None = None):
        super().__init__()
        fixed = [spec for spec in MASTER_PARAMS if not spec.learnable]
        self.master_settings = {spec.name: float((master_settings or {}).get(spec.name, spec.default))
                                for spec in fixed}
        self.batched = tracks[0].dim() == 3 if len(tracks) else False
        self.samples = _check_tracks(tracks, 1 if self.batched else 0)
        self.sample_rate = sample_rate
        self.num_tracks = len(tracks)
        self.n_fft = fft_size(self.samples, schema_tail_samples(sample_rate))
        as_batched = [track if self.batched else track.unsqueeze(0) for track in tracks]
        self.groups = []
        for channels in (1, 2):
            indices = [i for i, track in enumerate(as_batched) if track.shape[-2] == channels]
            if not indices:
                continue
            # (excerpts, tracks, channels, samples)
            stacked = torch.stack([as_batched[i].float() for i in indices], dim=1)
            name = f"spectrum_{channels}ch"
            self.register_buffer(name, torch.fft.rfft(stacked, self.n_fft), persistent=False)
            self.register_buffer(f"indices_{channels}ch", torch.tensor(indices), persistent=False)
            self.groups.append(channels)

    def forward(
        self, track_norm: torch.Tensor, master_norm: torch.Tensor, master_loudness_lufs: float | torch.Tensor
    ) -> torch.Tensor:
        """Mix from ``track_norm`` (tracks, params) in LEARNABLE_TRACK_PARAMS order and
        ``master_norm`` (params,) in LEARNABLE_MASTER_PARAMS order, normalized to
        the mix loudness ``master_loudness_lufs``.

        Returns (2, samples), or (excerpts, 2, samples) when prepared with excerpts;
        each excerpt is brought to the target loudness on its own, by the
        differentiable, ungated measure ``loudness_gain_db`` (the renders use the
        gated BS.1770 measure; the two agree on material without long pauses).
        """
        return self.mix_and_track_levels(track_norm, master_norm, master_loudness_lufs)[0]

    def mix_and_track_levels(
        self, track_norm: torch.Tensor, master_norm: torch.Tensor, master_loudness_lufs: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mix of :meth:`forward` and each track's level after its strip and pan:
        (tracks,) in dB (mean square over excerpts and both channels, before the
        master bus), differentiable, so that fitting can keep every track audible.
        """
        if track_norm.shape != (self.num_tracks, len(LEARNABLE_TRACK_PARAMS)):
            raise ValueError(
                f"track_norm: expected shape ({self.num_tracks}, {len(LEARNABLE_TRACK_PARAMS)}), "
                f"got {tuple(track_norm.shape)}"
            )
        if master_norm.shape != (len(LEARNABLE_MASTER_PARAMS),):
            raise ValueError(
                f"master_norm: expected shape ({len(LEARNABLE_MASTER_PARAMS)},), got {tuple(master_norm.shape)}"
            )
        track_params = denormalize_tensor(track_norm, LEARNABLE_TRACK_PARAMS)
        mix = None
        mean_square = torch.zeros(self.num_tracks, dtype=track_norm.dtype, device=track_norm.device)
        for channels in self.groups:
            spectrum = getattr(self, f"spectrum_{channels}ch")
            indices = getattr(self, f"indices_{channels}ch")
            excerpts, group_tracks = spectrum.shape[:2]
            params = {name: value[indices] for name, value in track_params.items()}
            response = eq_response(params, self.sample_rate, self.n_fft, "", spectrum.device, spectrum.dtype)
            response = response * db_to_amplitude(params["gain_db"]).unsqueeze(-1)
            equalized = apply_response(spectrum, response, self.n_fft, self.samples).reshape(
                excerpts * group_tracks, channels, self.samples
            )
            # Excerpt-major flattening: every track's parameters repeat once per excerpt.
            per_item = {name: value.repeat(excerpts) for name, value in params.items()}
            panned = pan(compress(equalized, self.sample_rate, per_item, ""), self.sample_rate, per_item["pan_pct"])
            panned = panned.reshape(excerpts, group_tracks, 2, self.samples)
            mean_square = mean_square.index_add(0, indices, panned.pow(2).mean(dim=(0, 2, 3)).to(mean_square.dtype))
            summed = panned.sum(dim=1)
            mix = summed if mix is None else mix + summed
        excerpts = mix.shape[0]
        master_params = {
            name: value.reshape(1).expand(excerpts)
            for name, value in denormalize_tensor(master_norm, LEARNABLE_MASTER_PARAMS).items()
        }
        master_params.update({
            name: torch.full((excerpts,), value, dtype=mix.dtype, device=mix.device)
            for name, value in self.master_settings.items()
        })
        mastered = master_bus(mix, self.sample_rate, master_params)
        target_lufs = torch.as_tensor(master_loudness_lufs, dtype=mastered.dtype, device=mastered.device)
        out = mastered * db_to_amplitude(loudness_gain_db(mastered, self.sample_rate, target_lufs)).reshape(-1, 1, 1)
        levels_db = 10.0 * torch.log10(mean_square + _MEAN_SQUARE_FLOOR)
        return (out if self.batched else out[0]), levels_db


class IncrementalRenderer:
    """Full-length renders of one session that re-process only what changed.

    ``tracks``: the trimmed stems, each (channels, samples) with channels 1 or 2
    and equal samples. Each track's strip output before panning is kept (float32,
    channels x samples per track) in a store bounded by ``max_kept_bytes``
    (default :func:`mixing.dsp.kept.kept_strips_max_bytes`, 1 GiB), the least
    recently used evicted first; a track whose output was evicted is processed
    again, with the same settings and so to the same samples, when its audio is
    needed (its pan or mute/solo state changes, its settings change, or
    :meth:`strip_outputs` reads it). The running stereo sum of the active tracks
    is kept whole (float64, so that many edits add no audible rounding). A
    render re-processes a track only when its parameters other than ``pan_pct``
    changed, and updates the sum only for tracks whose audio, pan or
    mute/solo state changed. The output of the master bus's dynamics stages (EQ,
    compressor, expander) and its spectrum for the match EQ are kept for the
    last sum and settings, so a render that changes only the later master
    stages (match EQ, width, balance, loudness, ceiling: most of matching's
    rounds) starts at the match EQ. Tracks whose ``reverb_send_db`` is above
    its off value also feed a second running sum, the reverb send
    (``mixing.dsp.reverb``, one convolution for all tracks); its return, kept
    for the last send and bus settings, joins the sum before the master bus;
    with every send off neither exists. ``processed_tracks``
    counts the track strips run so far (evicted ones run again included); ``track_levels_db`` holds each track's
    RMS level (dBFS, mean over the two output channels) after its strip and
    pan, for a level overview; ``loudness_gain_db`` the gain the loudness
    stage applied in the last render. ``tone``: the tracks' neural tone stage (``mixing.tone.stage``), run on a
    track's input before its strip where its ``tone_amount_pct`` is above 0; default: every family unknown, so
    no track is shaped.
    """

    def __init__(self, tracks: Sequence[torch.Tensor], sample_rate: int, device: torch.device | str | None = None,
                 *, max_kept_bytes: int | None = None, tone: ToneStage | None = None):
        self.samples = _check_tracks(tracks, 0)
        self.tone = tone if tone is not None else ToneStage([None] * len(tracks))
        self.sample_rate = sample_rate
        self.device = torch.device(device) if device is not None else tracks[0].device
        self.tracks = [track.detach().to(self.device, torch.float32) for track in tracks]
        self._kept = BoundedAudioStore(kept_strips_max_bytes() if max_kept_bytes is None else max_kept_bytes)
        # Each track's row as last processed (what an evicted output is made again from) and its strip settings.
        self._processed_rows: list[Mapping[str, float] | None] = [None] * len(tracks)
        self._processed_with: list[StripSettings | None] = [None] * len(tracks)
        self._mean_square: list[list[float] | None] = [None] * len(tracks)
        self._sum = torch.zeros(2, self.samples, dtype=torch.float64, device=self.device)
        # The pan gains with which each track is in the sum; None: not in it.
        self._in_sum: list[tuple[float, float] | None] = [None] * len(tracks)
        # The same for the reverb send (pan gains times send amplitude); the send sum is made on first use.
        self._in_send: list[tuple[float, float] | None] = [None] * len(tracks)
        self._send_sum: torch.Tensor | None = None
        self._send_changes = 0
        self._reverb_key: tuple | None = None
        self._reverb: torch.Tensor | None = None
        # Bumped on every change of the sum; with the dynamics settings, the key of the kept bus output.
        self._sum_changes = 0
        self._dynamics_key: tuple | None = None
        self._dynamics: torch.Tensor | None = None
        self._dynamics_spectrum: torch.Tensor | None = None
        self.processed_tracks = 0
        self.track_levels_db: list[float | None] = [None] * len(tracks)
        self.loudness_gain_db = 0.0
        # Exact IIR is faster than a whole-song FFT on the CPU; on CUDA the FFT wins.
        self._exact_iir = self.device.type == "cpu"

    def _place_in_sum(self, index: int, gains: tuple[float, float] | None,
                      send_gains: tuple[float, float] | None = None) -> None:
        """Make track ``index`` contribute to the sum with ``gains`` and to the reverb send with ``send_gains``
        (None: not at all)."""
        if self._in_sum[index] != gains:
            self._add_to(self._sum, index, self._in_sum[index], gains)
            self._in_sum[index] = gains
            self._sum_changes += 1
        if self._in_send[index] != send_gains:
            if self._send_sum is None:
                self._send_sum = torch.zeros_like(self._sum)
            self._add_to(self._send_sum, index, self._in_send[index], send_gains)
            self._in_send[index] = send_gains
            self._send_changes += 1
            if all(entry is None for entry in self._in_send):
                self._send_sum = None  # every send off: no rounding left behind, and the memory back

    def _add_to(self, target: torch.Tensor, index: int, current: tuple[float, float] | None,
                gains: tuple[float, float] | None) -> None:
        processed = self._output(index)
        for sign, channel_gains in ((-1.0, current), (1.0, gains)):
            if channel_gains is None:
                continue
            for channel in range(2):
                target[channel].add_(processed[min(channel, processed.shape[0] - 1)],
                                     alpha=sign * channel_gains[channel])

    @torch.no_grad()
    def render(self, params: MixParams, active: Sequence[bool] | None = None) -> torch.Tensor:
        """The mix of the ``active`` tracks (default: all), shape (2, samples), true peak <= ``master_ceiling_dbtp``."""
        active = [True] * len(self.tracks) if active is None else list(active)
        if len(active) != len(self.tracks):
            raise ValueError(f"active: {len(active)} flags for {len(self.tracks)} tracks")
        self._strips_and_levels(params, active)
        master = param_columns([params.master], list(MASTER_SPECS.values()), self.device)
        dynamics = self._master_dynamics(params.master, master)
        mastered = master_bus_after_dynamics(dynamics, self.sample_rate, master,
                                             spectrum=self._match_eq_spectrum(params.master))[0]
        loud, self.loudness_gain_db = normalize_to_lufs(mastered, self.sample_rate,
                                                        float(params.master["master_loudness_lufs"]))
        return driven_ceiling(loud, self.sample_rate, float(params.master["master_ceiling_dbtp"]),
                              float(params.master["master_limiter_drive_db"]))

    @torch.no_grad()
    def track_levels(self, params: MixParams) -> list[float]:
        """``track_levels_db`` under ``params`` without mixing: only the strips that ``params`` change run, and
        the kept sum and master bus are left for the next :meth:`render`."""
        self._strips_and_levels(params)
        return list(self.track_levels_db)

    def follow_fader_moves(self, params: MixParams) -> list[int]:
        """Take over ``params``' rows for the tracks whose strip settings differ from those last processed only by a
        fader move ``d`` dB with the compressor threshold moved by the same ``d`` (or a fader move alone with the
        compressor off), without running their strips: the strip is linear up to its compressor, whose gain
        depends on the level over the threshold alone, so the output is the one kept scaled by ``d`` (as
        :func:`mixing.balance.pin_levels` moves faders). A kept output is scaled, an evicted one will be made
        from the new row. Returns the indices taken over; the next render or :meth:`track_levels` runs only the
        strips of the others that changed."""
        if len(params.tracks) != len(self.tracks):
            raise ValueError(f"{len(params.tracks)} track parameter sets for {len(self.tracks)} tracks")
        followed = []
        for index, (values, settings) in enumerate(zip(params.tracks, self.strip_settings(params), strict=True)):
            before, before_settings = self._processed_rows[index], self._processed_with[index]
            if before is None or before_settings == settings or before_settings[1] != settings[1]:
                continue
            moved_db = float(values["gain_db"]) - float(before["gain_db"])
            threshold_moved_db = float(values["comp_threshold_db"]) - float(before["comp_threshold_db"])
            others_equal = all(float(value) == float(before.get(name, math.nan)) for name, value in values.items()
                               if name not in (*_AFTER_STRIP, "gain_db", "comp_threshold_db"))
            compressed = float(values["comp_ratio"]) != 1.0
            if not others_equal or (compressed and abs(threshold_moved_db - moved_db) > 1e-9):
                continue
            self._place_in_sum(index, None)
            scale = 10.0 ** (moved_db / 20.0)
            kept = self._kept.get(index)
            if kept is not None:
                self._kept.put(index, kept * scale)
            self._mean_square[index] = [value * scale**2 for value in self._mean_square[index]]
            self._processed_rows[index] = dict(values)
            self._processed_with[index] = settings
            followed.append(index)
        return followed

    @property
    def kept_strip_bytes(self) -> int:
        """The bytes of strip outputs kept now (at most ``max_kept_bytes``, or one output alone over it)."""
        return self._kept.nbytes

    def bus_sum(self) -> torch.Tensor:
        """The sum of the active tracks after their strips and pans as last rendered, before the master bus:
        (2, samples) float32, a copy."""
        return self._sum.float()

    @torch.no_grad()
    def strip_outputs(self, params: MixParams) -> Sequence[torch.Tensor]:
        """Each track's strip output before pan under ``params``, (channels, samples) float32 on :attr:`device`,
        made as :meth:`track_levels` makes them: the renderer's kept audio, to read, not to change. The sequence
        fetches each track's output when it is read (processing an evicted one again), so that going through
        it holds one output at a time beyond the store's bound."""
        self._strips_and_levels(params)
        return _StripOutputs(self)

    def strip_settings(self, params: MixParams) -> list[StripSettings]:
        """Each track's settings that its strip output depends on (all but those applied after it) and the family
        whose tone model shapes its input (None while its tone is off), hashable: equal settings, equal
        :meth:`strip_outputs`."""
        return [(tuple(sorted((name, float(value)) for name, value in values.items() if name not in _AFTER_STRIP)),
                 self.tone.active_family(index, float(values.get("tone_amount_pct", 0.0))))
                for index, values in enumerate(params.tracks)]

    def strip_input(self, index: int, values: Mapping[str, float]) -> torch.Tensor:
        """What track ``index``'s strip hears under its settings ``values``: the track through the tone stage,
        (channels, samples) on :attr:`device`; the track itself while its ``tone_amount_pct`` is 0."""
        return self.tone.apply(index, self.tracks[index], float(values.get("tone_amount_pct", 0.0)), self.sample_rate)

    def _output(self, index: int) -> torch.Tensor:
        """Track ``index``'s strip output under the settings it was last processed with: the kept one, or,
        when evicted, the same made again (and kept)."""
        processed = self._kept.get(index)
        if processed is None:
            row = self._processed_rows[index]
            ((_, processed),) = strips_before_pan([self.strip_input(index, row)], [row],
                                                  self.sample_rate, self._exact_iir)
            self._kept.put(index, processed)
            self.processed_tracks += 1
        return processed

    def _strips_and_levels(self, params: MixParams, active: Sequence[bool] | None = None) -> None:
        """Re-process the tracks whose strip settings changed and set ``track_levels_db``; with ``active``
        (a flag per track), also place every track in the sum and the reverb send as :meth:`render` needs, each
        processed track as soon as it is made, so that the store's bound never evicts one before it is summed."""
        if len(params.tracks) != len(self.tracks):
            raise ValueError(f"{len(params.tracks)} track parameter sets for {len(self.tracks)} tracks")
        all_gains = [tuple(float(g) for g in pan_gains(torch.tensor([float(values["pan_pct"])]), track.shape[0])[0])
                     for values, track in zip(params.tracks, self.tracks, strict=True)]

        def place(index: int) -> None:
            if active is None:
                return
            gains = all_gains[index] if active[index] else None
            send_db = float(params.tracks[index].get("reverb_send_db", REVERB_SEND_OFF_DB))
            send = (tuple(g * 10.0 ** (send_db / 20.0) for g in gains)
                    if gains is not None and send_db > REVERB_SEND_OFF_DB else None)
            self._place_in_sum(index, gains, send)

        strip_values = self.strip_settings(params)
        changed = [index for index in range(len(self.tracks)) if self._processed_with[index] != strip_values[index]]
        for index in changed:
            self._place_in_sum(index, None)
            self._kept.discard(index)  # frees the old audio before the new is made
        made = set(changed)
        # The unchanged tracks whose outputs are kept go into the sum first: making the other outputs evicts the
        # least recently used kept ones, which are then in the sum already and need not be made again for it.
        at_hand = [index for index in range(len(self.tracks)) if index not in made and index in self._kept]
        for index in at_hand:
            place(index)
        inputs = [self.strip_input(index, params.tracks[index]) for index in changed]
        for position, processed in strips_before_pan(inputs, [params.tracks[index] for index in changed],
                                                     self.sample_rate, self._exact_iir):
            index = changed[position]
            self._kept.put(index, processed)
            self._mean_square[index] = [float(channel.square().mean()) for channel in processed]
            self._processed_rows[index] = dict(params.tracks[index])
            self._processed_with[index] = strip_values[index]
            self.processed_tracks += 1
            place(index)
        placed = made | set(at_hand)
        for index, gains in enumerate(all_gains):
            if index not in placed:
                place(index)
            mean_square = self._mean_square[index]
            panned_mean_square = sum(g**2 * mean_square[min(c, len(mean_square) - 1)] for c, g in enumerate(gains)) / 2
            self.track_levels_db[index] = 10.0 * math.log10(panned_mean_square + _MEAN_SQUARE_FLOOR)

    def _master_dynamics(self, values: Mapping[str, float], master: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The sum through the master's dynamics stages, (1, 2, samples); kept while sum and settings stay."""
        key = (self._sum_changes, self._send_changes, *(float(value) for name, value in sorted(values.items())
                                                        if name not in _AFTER_MASTER_DYNAMICS))
        if key != self._dynamics_key:
            self._dynamics = self._dynamics_spectrum = None  # frees the old audio before the new is made
            bus = self._sum.float()
            wet = self._reverb_return(values)
            if wet is not None:
                bus += wet
            self._dynamics = master_dynamics(bus.unsqueeze(0), self.sample_rate, master, exact_iir=self._exact_iir)
            self._dynamics_key = key
        return self._dynamics

    def _reverb_return(self, values: Mapping[str, float]) -> torch.Tensor | None:
        """The reverb bus's return for the current send, (2, samples) float32; None while every send is off."""
        if self._send_sum is None:
            self._reverb = self._reverb_key = None
            return None
        key = (self._send_changes, *(float(values[name]) for name in _REVERB_BUS))
        if key != self._reverb_key:
            self._reverb = None
            decay_s, predelay_ms, damping_hz, return_db = key[1:]
            self._reverb = reverb_return(self._send_sum.float(), self.sample_rate, decay_s, predelay_ms, damping_hz,
                                         return_db)
            self._reverb_key = key
        return self._reverb

    def _match_eq_spectrum(self, values: Mapping[str, float]) -> torch.Tensor | None:
        """The match EQ's spectrum of the kept dynamics output, made on the first render that needs it."""
        if (not any(float(values[name]) for name in (*MATCH_EQ_GAIN_NAMES, *MATCH_EQ_LR_NAMES))
                and all(float(values[name]) == 100.0 for name in BAND_WIDTH_NAMES)):
            return None  # a flat match EQ at full width passes its input through without an FFT
        if self._dynamics_spectrum is None:
            self._dynamics_spectrum = match_eq_spectrum(self._dynamics, self.sample_rate)
        return self._dynamics_spectrum


class _StripOutputs(Sequence):
    """The renderer's strip outputs as :meth:`IncrementalRenderer.strip_outputs` returns them, each read when
    indexed."""

    def __init__(self, renderer: IncrementalRenderer):
        self._renderer = renderer

    def __len__(self) -> int:
        return len(self._renderer.tracks)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"track {index} of {len(self)}")
        return self._renderer._output(index % len(self))


def render_mix(tracks: Sequence[torch.Tensor], params: MixParams, sample_rate: int) -> torch.Tensor:
    """One full-length render of ``tracks`` (each (channels, samples)) with ``params``; returns (2, samples)."""
    return IncrementalRenderer(tracks, sample_rate).render(params)

"""Feed-forward compressor with real attack and release ballistics, differentiable.

Signal flow, after Giannoulis, Massberg & Reiss, "Digital Dynamic Range
Compressor Design - A Tutorial and Analysis", JAES 60(6), 2012:

1. Level detector: the mean over channels of the squared signal (stereo is
   linked: one detector drives both channels), averaged by a one-pole filter
   with a fixed ``DETECTOR_MS`` time constant. Its output is a short-term RMS
   level in dB, ``10 * log10(mean square)``, so a steady sine with peak
   amplitude A reads ``20 * log10(A) - 3.01`` dB. ``threshold_db`` refers to
   this RMS level.
2. Static curve: gain in dB from that level with the quadratic soft knee of
   the paper (eq. 4).
3. Gain smoothing in dB with branching one-pole ballistics: the attack
   coefficient while the gain is falling (more reduction), the release
   coefficient while it recovers. A time constant ``t_ms`` gives the
   coefficient ``1 - exp(-1000 / (t_ms * sample_rate))``, so a step in the
   static gain is covered to 1 - 1/e (63 %) after ``t_ms``.

There is no makeup gain; the track gain before the compressor provides it.

The whole chain runs per sample in one numba kernel (no control-rate
decimation), wrapped in ``torch.autograd.Function`` with a hand-written
backward: one reverse-time sweep that carries the adjoints of the gain
smoother and of the detector, replaying the attack/release choices of the
forward pass (the branch is piecewise constant, so it is not differentiated).
CUDA tensors are processed on the CPU and moved back.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch

# Short enough that the detector adds well under a millisecond of lag to the
# attack; long enough that a 1 kHz tone's level ripples by only about +-0.2 dB.
DETECTOR_MS = 2.0
# -120 dB: keeps the level finite on digital silence.
_POWER_FLOOR = 1e-12
# Below these the knee's quadratic and the time-to-coefficient map lose
# precision (at zero they divide by zero); the schema's ranges stay above them.
_KNEE_FLOOR_DB = 0.01
_TIME_FLOOR_MS = 0.01
_DB_PER_NEPER = 20.0 / math.log(10.0)


def ms_to_coef(time_ms: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """One-pole coefficient whose step response reaches 1 - 1/e after ``time_ms``."""
    return -torch.expm1(-1000.0 / (time_ms.clamp_min(_TIME_FLOOR_MS) * sample_rate))


@numba.njit(nogil=True, cache=True)
def _static_curve(level_db, threshold_db, ratio, knee_db):
    """Soft-knee gain in dB (eq. 4 of the paper) and its derivatives w.r.t. level, threshold, ratio, knee."""
    over_db = level_db - threshold_db
    slope = 1.0 / ratio - 1.0
    if 2.0 * over_db < -knee_db:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if 2.0 * over_db > knee_db:
        return slope * over_db, slope, -slope, -over_db / (ratio * ratio), 0.0
    into_knee_db = over_db + 0.5 * knee_db
    gain_db = slope * into_knee_db * into_knee_db / (2.0 * knee_db)
    d_level = slope * into_knee_db / knee_db
    d_ratio = -into_knee_db * into_knee_db / (2.0 * knee_db * ratio * ratio)
    d_knee = slope * into_knee_db * (knee_db - into_knee_db) / (2.0 * knee_db * knee_db)
    return gain_db, d_level, -d_level, d_ratio, d_knee


@numba.njit(parallel=True, nogil=True, cache=True)
def _compress_forward(
    x, threshold_db, ratio, knee_db, detector_coef, attack_coef, release_coef, y, level_db, gain_db, keep
):
    batch, channels, samples = x.shape
    for b in numba.prange(batch):
        threshold, rat, knee = threshold_db[b], ratio[b], knee_db[b]
        if rat == 1.0 and not keep:
            # The static gain is 0 dB everywhere; with gradients the ratio's derivative is still needed.
            y[b] = x[b]
            continue
        attack, release, detector = attack_coef[b], release_coef[b], detector_coef[b]
        # Written as state * keep + coef * input so that each step's
        # dependency on the previous one is a single fused multiply-add.
        detector_keep, attack_keep, release_keep = 1.0 - detector, 1.0 - attack, 1.0 - release
        power_coef = detector / channels
        # Below this mean square the static gain is 0, so the log can be skipped.
        knee_start_power = 10.0 ** ((threshold - 0.5 * knee) / 10.0) - _POWER_FLOOR
        # log and exp take their argument from here, in x's precision:
        # float32 transcendentals cost half as much as float64 ones.
        scratch = np.empty(1, x.dtype)
        mean_square = 0.0
        gain = 0.0
        for n in range(samples):
            power = 0.0
            for c in range(channels):
                power += x[b, c, n] * x[b, c, n]
            mean_square = detector_keep * mean_square + power_coef * power
            if keep or mean_square >= knee_start_power:
                scratch[0] = mean_square + _POWER_FLOOR
                level = 10.0 * math.log10(scratch[0])
                target = _static_curve(level, threshold, rat, knee)[0]
            else:
                level = -math.inf
                target = 0.0
            attacked = attack_keep * gain + attack * target
            released = release_keep * gain + release * target
            gain = attacked if target < gain else released
            scratch[0] = gain / _DB_PER_NEPER
            linear = math.exp(scratch[0])
            for c in range(channels):
                y[b, c, n] = x[b, c, n] * linear
            if keep:
                level_db[b, n] = level
                gain_db[b, n] = gain


@numba.njit(parallel=True, nogil=True, cache=True)
def _compress_backward(
    grad_y, x, threshold_db, ratio, knee_db, detector_coef, attack_coef, release_coef, level_db, gain_db
):
    batch, channels, samples = x.shape
    grad_x = np.empty_like(x)
    # Columns: threshold, ratio, knee, attack coefficient, release coefficient.
    grad_params = np.zeros((batch, 5))
    for b in numba.prange(batch):
        threshold, rat, knee = threshold_db[b], ratio[b], knee_db[b]
        attack, release, detector = attack_coef[b], release_coef[b], detector_coef[b]
        gain_adjoint = 0.0
        gain_keep_next = 0.0
        detector_adjoint = 0.0
        sums = np.zeros(5)
        scratch = np.empty(1, x.dtype)
        for n in range(samples - 1, -1, -1):
            gain = gain_db[b, n]
            scratch[0] = gain / _DB_PER_NEPER
            linear = math.exp(scratch[0])
            d_gain = 0.0
            for c in range(channels):
                d_gain += grad_y[b, c, n] * x[b, c, n]
                grad_x[b, c, n] = grad_y[b, c, n] * linear
            gain_adjoint = d_gain * linear / _DB_PER_NEPER + gain_keep_next * gain_adjoint
            previous = gain_db[b, n - 1] if n > 0 else 0.0
            level = level_db[b, n]
            target, d_level, d_threshold, d_ratio, d_knee = _static_curve(level, threshold, rat, knee)
            if target < previous:
                coef = attack
                sums[3] += gain_adjoint * (target - previous)
            else:
                coef = release
                sums[4] += gain_adjoint * (target - previous)
            gain_keep_next = 1.0 - coef
            d_target = coef * gain_adjoint
            sums[0] += d_target * d_threshold
            sums[1] += d_target * d_ratio
            sums[2] += d_target * d_knee
            d_mean_square = 0.0
            if d_level != 0.0:
                scratch[0] = level / _DB_PER_NEPER * 2.0
                d_mean_square = d_target * d_level * _DB_PER_NEPER / 2.0 / math.exp(scratch[0])
            detector_adjoint = d_mean_square + (1.0 - detector) * detector_adjoint
            d_power = detector * detector_adjoint / channels
            for c in range(channels):
                grad_x[b, c, n] += d_power * 2.0 * x[b, c, n]
        grad_params[b] = sums
    return grad_x, grad_params


class _Compress(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold_db, ratio, knee_db, detector_coef, attack_coef, release_coef):
        params = (threshold_db, ratio, knee_db, detector_coef, attack_coef, release_coef)
        arrays = [p.detach().to(torch.float64).contiguous().numpy() for p in params]
        x_array = x.detach().contiguous().numpy()
        keep = any(ctx.needs_input_grad)
        y = np.empty_like(x_array)
        trace_shape = x_array.shape[::2] if keep else (0, 0)
        level_db, gain_db = np.empty(trace_shape), np.empty(trace_shape)
        _compress_forward(x_array, *arrays, y, level_db, gain_db, keep)
        if keep:
            ctx.save_for_backward(x, *params, torch.from_numpy(level_db), torch.from_numpy(gain_db))
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad_y):
        x, *params, level_db, gain_db = ctx.saved_tensors
        arrays = [p.detach().to(torch.float64).contiguous().numpy() for p in params]
        grad_x, grad_params = _compress_backward(
            grad_y.contiguous().numpy(), x.detach().contiguous().numpy(), *arrays, level_db.numpy(), gain_db.numpy()
        )
        grad_params = torch.from_numpy(grad_params).to(x.dtype)
        d_threshold, d_ratio, d_knee, d_attack, d_release = grad_params.unbind(dim=1)
        return torch.from_numpy(grad_x), d_threshold, d_ratio, d_knee, None, d_attack, d_release


def _per_item(value, batch: int, like: torch.Tensor, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.dim() > 1 or (tensor.dim() == 1 and tensor.shape[0] not in (1, batch)):
        raise ValueError(f"{name}: expected shape (batch,) = ({batch},) or a scalar, got {tuple(tensor.shape)}")
    return tensor.expand(batch)


def _checked(x, sample_rate, threshold_db, ratio, attack_ms, release_ms, knee_db) -> tuple[list, list]:
    """The kernel's inputs on the CPU: x, threshold, ratio and knee, then the detector, attack and release
    coefficients."""
    if x.dim() != 3 or x.shape[1] not in (1, 2):
        raise ValueError(f"x: expected shape (batch, channels 1 or 2, samples), got {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"x: expected float32 or float64, got {x.dtype}")
    batch = x.shape[0]
    threshold_db, ratio, attack_ms, release_ms, knee_db = (
        _per_item(value, batch, x, name)
        for value, name in (
            (threshold_db, "threshold_db"),
            (ratio, "ratio"),
            (attack_ms, "attack_ms"),
            (release_ms, "release_ms"),
            (knee_db, "knee_db"),
        )
    )
    on_cpu = [t.cpu() for t in (x, threshold_db, ratio.clamp_min(1.0), knee_db.clamp_min(_KNEE_FLOOR_DB))]
    coefs = [ms_to_coef(t, sample_rate).cpu() for t in (torch.full_like(attack_ms, DETECTOR_MS), attack_ms, release_ms)]
    return on_cpu, coefs


def compressor(
    x: torch.Tensor,
    sample_rate: int,
    threshold_db: torch.Tensor,
    ratio: torch.Tensor,
    attack_ms: torch.Tensor,
    release_ms: torch.Tensor,
    knee_db: torch.Tensor,
) -> torch.Tensor:
    """Compress ``x`` of shape (batch, channels, samples), channels 1 or 2; returns the same shape.

    Parameters are tensors of shape (batch,) (scalars broadcast):
    ``threshold_db`` against the detector's short-term RMS level (see the module
    docstring), ``ratio`` >= 1 (1 leaves ``x`` unchanged), ``attack_ms`` and
    ``release_ms`` the time constants of the gain smoothing, ``knee_db`` the
    width of the soft knee. Differentiable w.r.t. ``x`` and every parameter.
    """
    on_cpu, coefs = _checked(x, sample_rate, threshold_db, ratio, attack_ms, release_ms, knee_db)
    return _Compress.apply(*on_cpu, *coefs).to(x.device)


def compressor_gain_db(
    x: torch.Tensor,
    sample_rate: int,
    threshold_db: torch.Tensor,
    ratio: torch.Tensor,
    attack_ms: torch.Tensor,
    release_ms: torch.Tensor,
    knee_db: torch.Tensor,
) -> torch.Tensor:
    """The gain in dB (<= 0) that :func:`compressor` with these arguments applies to each sample of ``x``
    (batch, channels, samples): shape (batch, samples), float64 on the CPU, from the same kernel."""
    (x, *params), coefs = _checked(x, sample_rate, threshold_db, ratio, attack_ms, release_ms, knee_db)
    arrays = [p.detach().to(torch.float64).contiguous().numpy() for p in (*params, *coefs)]
    x_array = x.detach().contiguous().numpy()
    level_db, gain_db = np.empty(x_array.shape[::2]), np.empty(x_array.shape[::2])
    _compress_forward(x_array, *arrays, np.empty_like(x_array), level_db, gain_db, True)
    return torch.from_numpy(gain_db)

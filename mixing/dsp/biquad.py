"""The biquad recursion of the compiled filters: the exact IIR EQ (:mod:`mixing.dsp.eq`) and the K-weighting of
the loudness measure (:mod:`mixing.loudness`).

numba caches its callers compiled, and a cached caller is not recompiled when only this file changes: after
editing it, clear the ``__pycache__`` entries of those two modules (or touch their files).
"""
import numba


@numba.njit(inline="always", nogil=True)
def biquad_step(value, coefficients, state1, state2):
    """One sample ``value`` (float64) through one section in transposed direct form II, the recursion of
    ``scipy.signal.sosfilt``. ``coefficients``: the tuple (b0, b1, b2, a0, a1, a2) with a0 = 1; states float64.

    Returns (filtered sample, new state1, new state2). Scalars in and out, tuple coefficients: a loop filtering
    several signals at once then keeps every state and coefficient in registers, where arrays would be
    reloaded on every sample (3 times slower on the K-weighting).
    """
    b0, b1, b2, _, a1, a2 = coefficients
    filtered = b0 * value + state1
    return filtered, b1 * value - a1 * filtered + state2, b2 * value - a2 * filtered


@numba.njit(inline="always", nogil=True)
def section_coefficients(sos, section):
    """Row ``section`` of ``sos`` (sections, 6) as the tuple :func:`biquad_step` takes."""
    return sos[section, 0], sos[section, 1], sos[section, 2], sos[section, 3], sos[section, 4], sos[section, 5]

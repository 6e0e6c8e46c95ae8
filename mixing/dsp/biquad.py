"""The biquad recursion of the compiled filters: the exact IIR EQ (:mod:`mixing.dsp.eq`) and the K-weighting of
the loudness measure (:mod:`mixing.loudness`).

numba caches its callers compiled, and a cached caller is not recompiled when only this file changes: after
editing it, clear the ``__pycache__`` entries of those two modules (or touch their files).
"""
import numba


@numba.njit(inline="always", nogil=True)
def biquad_sections(value, sos, state1, state2):
    """One sample ``value`` (float64) through the sections ``sos`` (sections, 6, a0 = 1) in transposed direct
    form II, the recursion of ``scipy.signal.sosfilt``; ``state1`` and ``state2`` (sections,) float64 are
    updated in place. Returns the filtered sample."""
    for section in range(sos.shape[0]):
        b0, b1, b2, _, a1, a2 = sos[section]
        filtered = b0 * value + state1[section]
        state1[section] = b1 * value - a1 * filtered + state2[section]
        state2[section] = b2 * value - a2 * filtered
        value = filtered
    return value

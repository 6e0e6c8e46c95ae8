"""The console's processors as functions ``f(x, sample_rate, **params_with_units)``.

Import each processor from its module (``from mixing.dsp.compressor import compressor``);
this package imports nothing itself, so loading one processor does not compile the others' kernels.
"""

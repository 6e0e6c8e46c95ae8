"""Mixref's mixing library: audio I/O, the parameter schema, the console, features, matching.

Usable without Django; the web app and the workers call into it.
"""
SAMPLE_RATE = 44100

"""The experimental neural stem-tone model (seeds 000 and 001): one deep autoencoder per instrument family maps
STFT magnitude frames of a raw stem to those of its processed version; the output is resynthesised with the
raw stem's phase. Django-free; see ``mixing.tone.model`` (network, STFT), ``mixing.tone.data`` (pairs),
``mixing.tone.train`` (layer-wise pretraining, fine-tuning) and ``mixing.tone.family`` (which model a stem uses).
"""

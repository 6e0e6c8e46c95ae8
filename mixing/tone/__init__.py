"""The experimental neural stem-tone model (seeds 000 and 001): one deep autoencoder per instrument family maps
STFT magnitude frames of a raw stem to those of its processed version; the output is resynthesised with the
raw stem's phase. Django-free; see ``mixing.tone.model`` (network, STFT), ``mixing.tone.data`` (pairs),
``mixing.tone.train`` (layer-wise pretraining, fine-tuning), ``mixing.tone.family`` (which model a stem uses)
and ``mixing.tone.stage`` (the console's optional stage before a track's strip: the model's output kept per
track, blended with the dry track by its ``tone_amount_pct``).
"""

"""Training the controller (seed 002, section 3); never imported by the web app.

- :func:`random_plausible_params`: random but plausible console settings (method 1's references), and
  :func:`lift_buried_tracks`, which raises the tracks such settings bury on given audio.
- :class:`SessionFolder`, :class:`ReferenceFolder`: the data, sampled in high-energy windows.
- :class:`TrainConfig`, :func:`train`: the loop for methods 1 and 2.
- :func:`make_references`: reference songs rendered from sessions with random plausible settings.
- :func:`evaluate_against_expert`: the controller's starting point against the expert start.

Command line: ``python -m mixing.train --help``.
"""
from mixing.train.data import ReferenceFolder, SessionFolder
from mixing.train.evaluate import evaluate_against_expert
from mixing.train.loop import TrainConfig, train
from mixing.train.random_params import lift_buried_tracks, random_plausible_params
from mixing.train.references import make_references

__all__ = [
    "ReferenceFolder",
    "SessionFolder",
    "TrainConfig",
    "evaluate_against_expert",
    "lift_buried_tracks",
    "make_references",
    "random_plausible_params",
    "train",
]

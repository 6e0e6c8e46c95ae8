"""Training data: procedurally composed multitrack sessions rendered through FluidSynth.

``generate_session`` writes one session folder of dry stems (drums, bass, keys, lead,
guitar, strings and up to ten extras) at random raw recording levels plus a
``session.json``; ``generate_sessions`` writes many. A reference song for a session
is best made by mixing another, independently generated session, so that the
reference never shares stems with the session being mixed.

Needs the ``fluidsynth`` program and a General MIDI SoundFont (Debian packages
fluidsynth and fluid-soundfont-gm; ``$MIXREF_SOUNDFONT`` points elsewhere).
"""
from mixing.datagen.compose import MAX_STEMS, compose_song
from mixing.datagen.render import find_fluidsynth
from mixing.datagen.session import SESSION_FILE, generate_session, generate_sessions

__all__ = ["MAX_STEMS", "SESSION_FILE", "compose_song", "find_fluidsynth", "generate_session", "generate_sessions"]

"""Procedural songs for training data: a plan (tempo, key, chords, sections) and one MIDI part per stem.

Everything is drawn from a ``numpy.random.Generator`` passed in by the caller, so a
seed gives the same song every time and the global random state is left alone.

A song is a 4/4 loop of diatonic triads in a random key and mode, laid out in
sections (intro, verse, chorus, bridge, outro) whose energy differs, so levels and
activity move over time the way real multitracks do. Each stem is a role (drums,
bass, keys, ...) written by one of a few generic writers (drum kit, hand percussion,
bass line, chord comping in several styles, melody) with its own General MIDI
program, register and presence per section.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mido
import numpy as np

TICKS_PER_BEAT = 480
BEATS_PER_BAR = 4
DRUM_CHANNEL = 9  # General MIDI percussion is channel 10, counted from 1

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
# Dorian and mixolydian are less common in pop; weight them down.
MODE_WEIGHTS = (0.4, 0.4, 0.1, 0.1)

# Names of the General MIDI programs (0-based) the roles use, for session.json.
GM_PROGRAM_NAMES = {
    0: "Acoustic Grand Piano", 1: "Bright Acoustic Piano", 2: "Electric Grand Piano",
    4: "Electric Piano 1", 5: "Electric Piano 2", 7: "Clavinet", 8: "Celesta",
    9: "Glockenspiel", 11: "Vibraphone", 12: "Marimba", 16: "Drawbar Organ",
    17: "Percussive Organ", 18: "Rock Organ", 24: "Nylon Guitar", 25: "Steel Guitar",
    26: "Jazz Guitar", 27: "Clean Electric Guitar", 28: "Muted Electric Guitar",
    29: "Overdriven Guitar", 30: "Distortion Guitar", 32: "Acoustic Bass",
    33: "Fingered Bass", 34: "Picked Bass", 35: "Fretless Bass", 38: "Synth Bass 1",
    39: "Synth Bass 2", 45: "Pizzicato Strings", 48: "String Ensemble 1",
    49: "String Ensemble 2", 50: "Synth Strings 1", 52: "Choir Aahs", 53: "Voice Oohs",
    54: "Synth Voice", 56: "Trumpet", 61: "Brass Section", 62: "Synth Brass 1",
    65: "Alto Sax", 66: "Tenor Sax", 68: "Oboe", 71: "Clarinet", 73: "Flute",
    80: "Square Lead", 81: "Sawtooth Lead", 85: "Voice Lead", 87: "Bass and Lead",
    88: "New Age Pad", 89: "Warm Pad", 90: "Polysynth Pad", 91: "Choir Pad", 95: "Sweep Pad",
}
DRUM_KIT_NAME = "Standard Drum Kit"

# General MIDI percussion keys.
KICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 39, 42, 46, 49, 51
TOMS = (50, 48, 47, 45, 43)
DISTORTED_GUITARS = (29, 30)  # played as power chords
SHAKER, TAMBOURINE, COWBELL, CONGAS = 70, 54, 56, (62, 63, 64)

# (name, bars choices, energy): the song form; after one pass it repeats verse/chorus.
FORM = (
    ("intro", (2, 4), 0.25),
    ("verse", (8,), 0.5),
    ("chorus", (8,), 0.9),
    ("verse", (8,), 0.55),
    ("chorus", (8,), 0.95),
    ("bridge", (4, 8), 0.4),
    ("chorus", (8,), 1.0),
    ("outro", (4,), 0.3),
)
LOOP_FORM = FORM[1:3]


@dataclass(frozen=True)
class Note:
    """One note; times in beats of the song's tempo, ``pitch`` and ``velocity`` as MIDI numbers."""

    start_beats: float
    length_beats: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Section:
    name: str
    start_bar: int
    bars: int
    energy: float  # 0 (sparse, quiet) .. 1 (full, loud)


@dataclass(frozen=True)
class SongPlan:
    """What every part of a song shares: tempo, key, chords and sections."""

    tempo_bpm: float
    key_root: int  # pitch class, 0 = C
    mode: str
    chord_degrees: tuple[int, ...]  # 0-based scale degrees, looped
    chord_beats: int  # how long each chord lasts
    sections: tuple[Section, ...]

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the key's scale, from the tonic."""
        return tuple((self.key_root + step) % 12 for step in MODES[self.mode])

    @property
    def total_bars(self) -> int:
        return sum(section.bars for section in self.sections)

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.key_root]} {self.mode}"

    def seconds(self, beats: float) -> float:
        return beats * 60.0 / self.tempo_bpm

    def chord_at(self, beat: float) -> tuple[int, int, int, int]:
        """Pitch classes (root, third, fifth, seventh) of the diatonic chord sounding at ``beat``."""
        degree = self.chord_degrees[int(beat // self.chord_beats) % len(self.chord_degrees)]
        scale = self.scale
        return tuple(scale[(degree + 2 * k) % 7] for k in range(4))

    def chord_name(self, degree: int) -> str:
        scale = self.scale
        root, third = scale[degree], scale[(degree + 2) % 7]
        return PITCH_NAMES[root] + ("m" if (third - root) % 12 == 3 else "")

    def bar_energy(self) -> np.ndarray:
        """Energy of each bar, shape (bars,)."""
        return np.concatenate([np.full(s.bars, s.energy) for s in self.sections])

    def bar_section(self) -> np.ndarray:
        """Index of the section each bar belongs to, shape (bars,)."""
        return np.concatenate([np.full(s.bars, i) for i, s in enumerate(self.sections)])


@dataclass(frozen=True)
class Part:
    """A stem's MIDI content. ``channel_pans`` lists the pan (0..127) of each channel the notes use."""

    name: str
    program: int  # 0-based General MIDI program; ignored for drums
    is_drums: bool
    notes: tuple[Note, ...]
    stereo: bool
    channels: tuple[int, ...] = ()  # channel per note; empty means all on one channel
    channel_pans: tuple[int, ...] = (64,)

    @property
    def instrument(self) -> str:
        return DRUM_KIT_NAME if self.is_drums else GM_PROGRAM_NAMES[self.program]


@dataclass(frozen=True)
class Song:
    plan: SongPlan
    parts: tuple[Part, ...]
    duration_s: float


def _nearest_pitch(pitch_class: int, around: float) -> int:
    """The MIDI pitch of ``pitch_class`` closest to ``around``."""
    base = round(around) - 6
    return base + (pitch_class - base) % 12


def _velocity(rng: np.random.Generator, base: float, energy: float, spread: float = 8.0) -> int:
    # Quiet sections are played softer, not only sparser, so loudness moves with the form.
    return int(np.clip(round(base * (0.65 + 0.35 * energy) + rng.normal(0.0, spread)), 1, 127))


def _humanize(rng: np.random.Generator, beat: float, jitter_beats: float) -> float:
    return max(0.0, float(beat + rng.normal(0.0, jitter_beats)))


# ---------------------------------------------------------------------------------------------
# Writers: (rng, plan, active bars (bars,) bool, energy (bars,), style) -> notes.
# ---------------------------------------------------------------------------------------------

_KICK_PATTERNS = {  # 16 steps per bar
    "rock": (0, 8, 10),
    "four": (0, 4, 8, 12),
    "halftime": (0, 7, 10),
    "hiphop": (0, 3, 10, 11),
}
_SNARE_STEPS = {"rock": (4, 12), "four": (4, 12), "halftime": (8,), "hiphop": (4, 12)}


def write_drum_kit(rng, plan: SongPlan, active, energy, style: dict) -> list[Note]:
    """Kick, snare and hats with fills at section ends and crashes at section starts."""
    groove = style["groove"]
    notes = []
    section_starts = {s.start_bar for s in plan.sections}
    section_ends = {s.start_bar + s.bars - 1 for s in plan.sections}
    for bar in np.flatnonzero(active):
        e = float(energy[bar])
        bar_beat = bar * BEATS_PER_BAR
        fill = bar in section_ends and e > 0.35 and rng.random() < 0.6
        hat_step = 1 if e > 0.8 and groove in ("hiphop", "four") else (2 if e > 0.3 else 4)
        hat = RIDE if e > 0.85 and style["ride_in_chorus"] else CLOSED_HAT
        for step in range(16):
            beat = bar_beat + step / 4
            if fill and step >= 12:
                tom = TOMS[min(step - 12 + rng.integers(0, 2), len(TOMS) - 1)]
                notes.append(Note(beat, 0.25, tom, _velocity(rng, 105, e)))
                continue
            if step in _KICK_PATTERNS[groove] or (e > 0.6 and step == 14 and rng.random() < 0.3):
                notes.append(Note(beat, 0.25, KICK, _velocity(rng, 110, e, 6)))
            if step in _SNARE_STEPS[groove]:
                notes.append(Note(beat, 0.25, CLAP if style["clap"] else SNARE, _velocity(rng, 112, e, 6)))
            elif e > 0.7 and step % 2 == 1 and rng.random() < 0.08:
                notes.append(Note(beat, 0.25, SNARE, _velocity(rng, 45, e)))  # ghost note
            if step % hat_step == 0:
                open_hat = groove == "four" and step % 4 == 2 and hat == CLOSED_HAT
                accent = 90 if step % 4 == 0 else 68
                notes.append(Note(beat, 0.25, OPEN_HAT if open_hat else hat, _velocity(rng, accent, e, 10)))
        if bar in section_starts and e > 0.5:
            notes.append(Note(bar_beat, 1.0, CRASH, _velocity(rng, 105, e)))
    return [Note(_humanize(rng, n.start_beats, 0.008), n.length_beats, n.pitch, n.velocity) for n in notes]


def write_hand_percussion(rng, plan: SongPlan, active, energy, style: dict) -> list[Note]:
    """Shaker or tambourine on a grid plus a two-bar conga figure that repeats."""
    conga_steps = np.flatnonzero(rng.random(32) < 0.3)
    conga_pitches = rng.choice(CONGAS, size=32)
    notes = []
    for bar in np.flatnonzero(active):
        e = float(energy[bar])
        bar_beat = bar * BEATS_PER_BAR
        grid = 1 if e > 0.6 else 2
        for step in range(0, 16, grid):
            velocity = _velocity(rng, 80 if step % 4 else 95, e, 12)
            notes.append(Note(bar_beat + step / 4, 0.25, style["shaker"], velocity))
        for step in conga_steps[(conga_steps >= 16 * (bar % 2)) & (conga_steps < 16 * (bar % 2 + 1))]:
            notes.append(Note(bar_beat + (step % 16) / 4, 0.25, int(conga_pitches[step]), _velocity(rng, 95, e)))
    return [Note(_humanize(rng, n.start_beats, 0.01), n.length_beats, n.pitch, n.velocity) for n in notes]


def _rhythm(rng, steps: int, hits: int) -> tuple[int, ...]:
    """A random rhythm: step 0 plus ``hits`` more onsets among ``steps`` eighth-note steps."""
    chosen = rng.choice(np.arange(1, steps), size=min(hits, steps - 1), replace=False).tolist()
    return (0, *sorted(chosen))


def write_bass(rng, plan: SongPlan, active, energy, style: dict) -> list[Note]:
    """Roots, fifths and octaves on a per-song rhythm; sparse sections hold whole notes."""
    groove = _rhythm(rng, 8, int(rng.integers(3, 7)))
    notes = []
    for bar in np.flatnonzero(active):
        e = float(energy[bar])
        onsets = (0, 4) if e < 0.35 else groove
        for i, step in enumerate(onsets):
            beat = bar * BEATS_PER_BAR + step / 2
            end = bar * BEATS_PER_BAR + (onsets[i + 1] / 2 if i + 1 < len(onsets) else BEATS_PER_BAR)
            root, _, fifth, _ = plan.chord_at(beat)
            root_pitch = _nearest_pitch(root, style["register"])
            choice = rng.random()
            if step == 0 or choice < 0.6:
                pitch = root_pitch
            elif choice < 0.85:
                pitch = _nearest_pitch(fifth, root_pitch + 5)
            else:
                pitch = root_pitch + 12
            length = (end - beat) * (0.9 if style["legato"] else 0.55)
            notes.append(Note(_humanize(rng, beat, 0.01), length, pitch, _velocity(rng, 100, e)))
    return notes


def _voicing(chord: tuple[int, ...], previous: list[int] | None, center: float) -> list[int]:
    """Chord tones near ``center``, choosing the inversion that moves least from ``previous``."""
    candidates = []
    for inversion in range(len(chord)):
        tones = chord[inversion:] + chord[:inversion]
        pitches = [_nearest_pitch(tones[0], center - 4)]
        for pc in tones[1:]:
            pitches.append(pitches[-1] + (pc - pitches[-1]) % 12 or 12)
        candidates.append(pitches)
    if previous is None:
        return min(candidates, key=lambda p: abs(np.mean(p) - center))
    return min(candidates, key=lambda p: abs(np.mean(p) - np.mean(previous)) + 0.5 * abs(np.mean(p) - center))


def write_chords(rng, plan: SongPlan, active, energy, style: dict) -> list[Note]:
    """Chord parts: ``style["comp"]`` is sustain, pulse, comp (syncopated), strum, power or arp."""
    comp = style["comp"]
    groove = _rhythm(rng, 8, int(rng.integers(2, 5)))
    arp_step = 0.25 if style.get("fast_arp") else 0.5
    notes, previous = [], None
    for bar in np.flatnonzero(active):
        e = float(energy[bar])
        bar_beat = bar * BEATS_PER_BAR
        mode = "sustain" if e < 0.3 and comp in ("pulse", "comp", "strum") else comp
        if mode == "sustain":
            onsets = np.arange(0, BEATS_PER_BAR, min(plan.chord_beats, BEATS_PER_BAR), dtype=float)
        elif mode == "pulse":
            onsets = np.arange(0, BEATS_PER_BAR, 1.0 if e < 0.7 else 0.5)
        elif mode == "arp":
            onsets = np.arange(0, BEATS_PER_BAR, arp_step)
        elif mode in ("strum", "power"):
            onsets = np.arange(0, BEATS_PER_BAR, 0.5)
        else:
            onsets = np.array(groove, dtype=float) / 2
        for i, offset in enumerate(onsets):
            beat = bar_beat + offset
            end = bar_beat + (onsets[i + 1] if i + 1 < len(onsets) else BEATS_PER_BAR)
            chord = plan.chord_at(beat)
            tones = chord if style.get("sevenths") else chord[:3]
            if mode == "power":
                root = _nearest_pitch(chord[0], style["center"])
                pitches = [root, root + 7, root + 12]
            else:
                pitches = _voicing(tones, previous, style["center"])
                previous = pitches
            if mode == "arp":
                ladder = pitches + [p + 12 for p in pitches]
                pitches = [ladder[round((beat - bar_beat) / arp_step) % len(ladder)]]
            velocity = _velocity(rng, 92, e)
            length = (end - beat) * (0.95 if mode in ("sustain", "arp") else 0.6)
            if mode in ("strum", "power"):
                # A down stroke on the beat (low to high), a lighter up stroke off it.
                down = offset % 1 == 0
                order = pitches if down else pitches[::-1][: max(2, len(pitches) - 1)]
                if not down and rng.random() < 0.3:
                    continue
                for k, pitch in enumerate(order):
                    delay = k * style.get("strum_beats", 0.02)
                    notes.append(Note(_humanize(rng, beat + delay, 0.008), length, pitch,
                                      max(1, velocity - (0 if down else 15) - 3 * k)))
            else:
                t = _humanize(rng, beat, 0.01)
                notes.extend(Note(t, length, p, max(1, velocity - int(rng.integers(0, 8)))) for p in pitches)
                if style.get("bass_note") and mode == "sustain":
                    notes.append(Note(t, length, _nearest_pitch(chord[0], style["center"] - 15), velocity))
    return notes


def write_melody(rng, plan: SongPlan, active, energy, style: dict) -> list[Note]:
    """Two-bar phrases from the scale, chord tones on strong beats; the phrase rhythm repeats with variation."""
    scale = plan.scale
    low, high = int(style["center"]) - 9, int(style["center"]) + 9
    scale_pitches = [p for p in range(low, high + 1) if p % 12 in scale]
    phrase = _rhythm(rng, 16, int(rng.integers(4, 10)))
    notes = []
    index = len(scale_pitches) // 2
    for bar in np.flatnonzero(active):
        e = float(energy[bar])
        if bar % 4 >= 2 and rng.random() < style["rest_probability"] * (1.2 - e):
            continue  # answer the phrase with silence, as singers and soloists breathe
        if bar % 2 == 0 and rng.random() < 0.25:
            phrase = _rhythm(rng, 16, int(rng.integers(4, 10)))
        onsets = [s for s in phrase if 8 * (bar % 2) <= s < 8 * (bar % 2 + 1)]
        for i, step in enumerate(onsets):
            beat = bar * BEATS_PER_BAR + (step % 8) / 2
            nxt = onsets[i + 1] % 8 / 2 if i + 1 < len(onsets) else BEATS_PER_BAR
            length = max(0.25, (nxt - (step % 8) / 2) * style["legato"])
            index = int(np.clip(index + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0, len(scale_pitches) - 1))
            pitch = scale_pitches[index]
            if step % 4 == 0:
                chord = plan.chord_at(beat)[:3]
                pitch = min((p for p in scale_pitches if p % 12 in chord), key=lambda p: abs(p - pitch))
                index = scale_pitches.index(pitch)
            notes.append(Note(_humanize(rng, beat, 0.012), length, pitch, _velocity(rng, 100, e, 10)))
    return notes


# ---------------------------------------------------------------------------------------------
# Roles: which writer, programs, register and presence each stem name gets.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    writer: Callable
    programs: tuple[int, ...]  # empty for drum-channel parts
    presence: tuple[float, float]  # probability of playing a section at energy 0 and at energy 1
    stereo_probability: float
    style: Callable[[np.random.Generator, int], dict]  # (rng, program) -> writer style


def _choice(rng, options):
    return options[int(rng.integers(0, len(options)))]


def _drum_style(rng, program):
    return {"groove": _choice(rng, tuple(_KICK_PATTERNS)), "ride_in_chorus": rng.random() < 0.3,
            "clap": rng.random() < 0.2}


def _guitar_style(rng, program):
    comp = "power" if program in DISTORTED_GUITARS else _choice(rng, ("strum", "strum", "arp", "comp"))
    return {"comp": comp, "center": rng.uniform(55, 62), "strum_beats": rng.uniform(0.015, 0.04)}


ROLES = {
    role.name: role
    for role in (
        Role("Drums", write_drum_kit, (), (0.5, 1.0), 0.8, _drum_style),
        Role("Bass", write_bass, (32, 33, 34, 35, 38, 39), (0.6, 1.0), 0.1,
             lambda rng, program: {"register": rng.uniform(36, 44), "legato": rng.random() < 0.5}),
        Role("Keys", write_chords, (0, 1, 2, 4, 5), (0.85, 0.95), 0.7,
             lambda rng, program: {"comp": _choice(rng, ("sustain", "pulse", "comp")), "center": rng.uniform(60, 68),
                                   "sevenths": rng.random() < 0.5, "bass_note": rng.random() < 0.5}),
        Role("Lead", write_melody, (80, 81, 73, 65, 66, 56, 71, 68), (0.15, 0.95), 0.15,
             lambda rng, program: {"center": rng.uniform(70, 78), "legato": rng.uniform(0.6, 0.95),
                                   "rest_probability": 0.5}),
        Role("Guitar", write_chords, (24, 25, 26, 27, 29, 30), (0.4, 1.0), 0.4, _guitar_style),
        Role("Strings", write_chords, (48, 49, 50), (0.4, 0.9), 0.8,
             lambda rng, program: {"comp": "sustain", "center": rng.uniform(62, 70), "bass_note": rng.random() < 0.6}),
        Role("Perc", write_hand_percussion, (), (0.2, 0.9), 0.5,
             lambda rng, program: {"shaker": _choice(rng, (SHAKER, TAMBOURINE, COWBELL))}),
        Role("Pad", write_chords, (88, 89, 90, 91, 95), (0.5, 0.8), 0.9,
             lambda rng, program: {"comp": "sustain", "center": rng.uniform(64, 72), "sevenths": rng.random() < 0.6}),
        Role("Keys2", write_chords, (4, 5, 7, 0), (0.2, 0.8), 0.6,
             lambda rng, program: {"comp": _choice(rng, ("comp", "pulse", "arp")), "center": rng.uniform(68, 76),
                                   "sevenths": rng.random() < 0.5}),
        Role("Guitar2", write_chords, (24, 25, 27, 28), (0.2, 0.9), 0.4,
             lambda rng, program: {"comp": _choice(rng, ("arp", "comp", "strum")), "center": rng.uniform(60, 67),
                                   "strum_beats": rng.uniform(0.015, 0.04)}),
        Role("Vox", write_melody, (52, 53, 54, 85), (0.1, 0.8), 0.1,
             lambda rng, program: {"center": rng.uniform(64, 72), "legato": rng.uniform(0.85, 1.0),
                                   "rest_probability": 0.7}),
        Role("Brass", write_chords, (61, 62, 56), (0.0, 0.8), 0.5,
             lambda rng, program: {"comp": "comp", "center": rng.uniform(62, 70)}),
        Role("Arp", write_chords, (80, 81, 87), (0.3, 0.9), 0.6,
             lambda rng, program: {"comp": "arp", "center": rng.uniform(64, 74), "fast_arp": rng.random() < 0.6,
                                   "sevenths": rng.random() < 0.5}),
        Role("Organ", write_chords, (16, 17, 18), (0.3, 0.9), 0.6,
             lambda rng, program: {"comp": _choice(rng, ("sustain", "pulse")), "center": rng.uniform(58, 66),
                                   "sevenths": rng.random() < 0.4}),
        Role("Pizz", write_chords, (45,), (0.3, 0.7), 0.6,
             lambda rng, program: {"comp": "arp", "center": rng.uniform(58, 66)}),
        Role("Bells", write_melody, (8, 9, 11, 12), (0.1, 0.7), 0.5,
             lambda rng, program: {"center": rng.uniform(76, 84), "legato": 0.5, "rest_probability": 0.8}),
    )
}
MAX_STEMS = len(ROLES)
CORE_ROLES = ("Drums", "Bass", "Keys", "Lead", "Guitar", "Strings")
EXTRA_ROLES = tuple(name for name in ROLES if name not in CORE_ROLES)


def choose_roles(rng: np.random.Generator, num_stems: int) -> list[str]:
    """The stems of a session: the core band first (drums, bass, keys, lead, guitar, strings), then random extras."""
    if not 1 <= num_stems <= MAX_STEMS:
        raise ValueError(f"num_stems must be in [1, {MAX_STEMS}], got {num_stems}")
    extras = rng.permutation(len(EXTRA_ROLES))[: max(0, num_stems - len(CORE_ROLES))]
    chosen = set(CORE_ROLES[:num_stems]) | {EXTRA_ROLES[i] for i in extras}
    return [name for name in ROLES if name in chosen]


def plan_song(rng: np.random.Generator, duration_s: float) -> SongPlan:
    """Tempo 70-160 BPM, a key and mode, a looped progression and enough sections to cover ``duration_s``."""
    tempo_bpm = float(round(rng.uniform(70.0, 160.0), 1))
    mode = str(rng.choice(tuple(MODES), p=MODE_WEIGHTS))
    # Degrees whose triad is diminished sound wrong as loop chords; leave them out.
    scale = MODES[mode]
    usable = [d for d in range(1, 7) if (scale[(d + 4) % 7] - scale[d]) % 12 == 7]
    length = int(rng.choice((2, 4, 4, 4)))
    degrees = [0]
    while len(degrees) < length:
        degree = int(rng.choice(usable))
        if degree != degrees[-1]:
            degrees.append(degree)
    chord_beats = int(rng.choice((2, 4, 4, 8))) if tempo_bpm > 100 else int(rng.choice((2, 4, 4)))
    bars_needed = int(np.ceil(duration_s * tempo_bpm / 60.0 / BEATS_PER_BAR)) + 1
    # Half the songs start at a random section, so short excerpts are not all intros.
    form_index = 0 if rng.random() < 0.5 else int(rng.integers(0, len(FORM)))
    sections, bar = [], 0
    while bar < bars_needed:
        if form_index < len(FORM):
            name, bar_choices, energy = FORM[form_index]
        else:
            name, bar_choices, energy = LOOP_FORM[(form_index - len(FORM)) % len(LOOP_FORM)]
        bars = int(rng.choice(bar_choices))
        jittered = float(np.clip(energy + rng.normal(0.0, 0.07), 0.05, 1.0))
        sections.append(Section(name, bar, bars, round(jittered, 3)))
        bar += bars
        form_index += 1
    return SongPlan(tempo_bpm, int(rng.integers(0, 12)), mode, tuple(degrees), chord_beats, tuple(sections))


def _spread_channels(notes: list[Note], num_channels: int = 4) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spread a stereo part across channels by pitch (low left, high right), like a piano seen from the player."""
    pans = tuple(round(p) for p in np.linspace(36, 92, num_channels))
    edges = np.linspace(36, 84, num_channels + 1)[1:-1]
    return tuple(int(np.searchsorted(edges, n.pitch)) for n in notes), pans


def compose_song(rng: np.random.Generator, *, duration_s: float, num_stems: int) -> Song:
    """A song plan plus ``num_stems`` parts, each with notes that start before ``duration_s``.

    Some parts (never the first) enter late, after up to a quarter of the song: real
    stems often begin with silence.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    plan = plan_song(rng, duration_s)
    energy_per_bar = plan.bar_energy()
    section_per_bar = plan.bar_section()
    last_beat = duration_s * plan.tempo_bpm / 60.0
    parts = []
    for i, name in enumerate(choose_roles(rng, num_stems)):
        role = ROLES[name]
        program = int(rng.choice(role.programs)) if role.programs else 0
        style = role.style(rng, program)
        low, high = role.presence
        plays = rng.random(len(plan.sections)) < low + (high - low) * np.array([s.energy for s in plan.sections])
        enters_at_beat = 0.0
        if i > 0 and duration_s >= 8.0 and rng.random() < 0.25:
            enters_at_beat = rng.uniform(1.0, min(8.0, 0.25 * duration_s)) * plan.tempo_bpm / 60.0
        written = role.writer(rng, plan, plays[section_per_bar], energy_per_bar, style)
        notes = _audible(written, enters_at_beat, last_beat)
        if not notes:
            # A stem of silence teaches nothing; let this one play throughout instead.
            all_bars = np.ones(plan.total_bars, dtype=bool)
            notes = _audible(role.writer(rng, plan, all_bars, energy_per_bar, style), 0.0, last_beat)
        stereo = bool(rng.random() < role.stereo_probability)
        channels, pans = ((), (64,))
        if stereo and role.programs:
            channels, pans = _spread_channels(notes)
        parts.append(Part(name, program, not role.programs, tuple(notes), stereo, channels, pans))
    return Song(plan, tuple(parts), float(duration_s))


def _audible(notes: list[Note], first_beat: float, last_beat: float) -> list[Note]:
    kept = [n for n in notes if first_beat <= n.start_beats < last_beat]
    return sorted(kept, key=lambda n: (n.start_beats, n.pitch))


def part_to_midi(part: Part, plan: SongPlan, *, end_beats: float) -> mido.MidiFile:
    """A type-0 MIDI file of one part. Reverb and chorus sends are zeroed: raw stems are dry.

    ``end_beats`` places the end of the track, so the renderer covers the whole song
    even when the part falls silent early.
    """
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    events = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(plan.tempo_bpm)))]
    note_channels = part.channels or (0,) * len(part.notes)
    used = sorted(set(note_channels))
    for index, channel in enumerate(used):
        midi_channel = DRUM_CHANNEL if part.is_drums else channel
        pan = part.channel_pans[index if len(part.channel_pans) > 1 else 0]
        if not part.is_drums:
            events.append((0, 0, mido.Message("program_change", channel=midi_channel, program=part.program)))
        for control, value in ((7, 100), (10, pan), (91, 0), (93, 0)):
            events.append((0, 0, mido.Message("control_change", channel=midi_channel, control=control, value=value)))
    for note, channel in zip(part.notes, note_channels, strict=True):
        midi_channel = DRUM_CHANNEL if part.is_drums else channel
        on = round(note.start_beats * TICKS_PER_BEAT)
        off = on + max(1, round(note.length_beats * TICKS_PER_BEAT))
        # Offs sort before ons at the same tick so a repeated pitch is re-struck, not cut.
        events.append((on, 2, mido.Message("note_on", channel=midi_channel, note=note.pitch, velocity=note.velocity)))
        events.append((off, 1, mido.Message("note_off", channel=midi_channel, note=note.pitch, velocity=0)))
    events.sort(key=lambda event: (event[0], event[1]))
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    end_tick = max(now, round(end_beats * TICKS_PER_BEAT))
    track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    return midi

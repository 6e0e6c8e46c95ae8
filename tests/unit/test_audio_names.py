import pytest

from mixing.audio.names import dedupe_names, is_audio_filename, track_name_from_filename


@pytest.mark.parametrize("filename, expected", [
    ("03_Lead Vox.wav", "Lead Vox"),
    ("03 - Lead Vox.wav", "Lead Vox"),
    ("1. Kick.flac", "Kick"),
    ("01-Snare Top.aif", "Snare Top"),
    ("12) Room.wav", "Room"),
    ("07 \u2013 Pad.m4a", "Pad"),
    ("001 Strings.wav", "Strings"),
    ("Bass__DI   .wav", "Bass DI"),
    ("Synth 2.wav", "Synth 2"),
    ("808 Kick.wav", "808 Kick"),
    ("2nd Verse Vox.mp3", "2nd Verse Vox"),
    ("12.5 Hz Sub.wav", "12.5 Hz Sub"),
    ("01.wav", "01"),
    ("Song/Drums\\04_OH L.WAV", "OH L"),
    ("_.wav", "Track"),
])
def test_track_name_from_filename(filename, expected):
    assert track_name_from_filename(filename) == expected


def test_dedupe_names_numbers_repeats_ignoring_case_and_keeps_order():
    assert dedupe_names(["Gtr", "Bass", "Gtr", "gtr"]) == ["Gtr", "Bass", "Gtr (2)", "gtr (3)"]


def test_dedupe_names_never_returns_a_name_twice():
    names = dedupe_names(["Gtr", "Gtr (2)", "Gtr", "Gtr (2)"])
    assert len({n.casefold() for n in names}) == 4
    assert names[:2] == ["Gtr", "Gtr (2)"]


@pytest.mark.parametrize("filename, expected", [
    ("a.WAV", True), ("a.aiff", True), ("a.m4a", True), ("a.mp3", True), ("a.ogg", True),
    ("a.txt", False), ("a.zip", False), ("wav", False), ("a.wav.zip", False),
])
def test_is_audio_filename(filename, expected):
    assert is_audio_filename(filename) is expected

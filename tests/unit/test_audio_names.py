import pytest

from mixing.audio.names import dedupe_names, is_audio_filename, track_name_from_filename, track_names_from_filenames


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


@pytest.mark.parametrize("filenames, expected", [
    (["6.Caesium_Stem_ALT HATS_mobile.m4a", "1.Caesium_Stem_KICK_mobile.m4a", "12.Caesium_Stem_BASS DI_mobile.m4a"],
     ["ALT HATS", "KICK", "BASS DI"]),
    # Case is ignored when comparing; a number the prefix hid comes off with it.
    (["Song 01 - Kick.wav", "song 02 - Snare.wav"], ["Kick", "Snare"]),
    # No name is emptied: the shared "Kick" is all of one name, so it stays on both.
    (["Kick.wav", "Kick Sub.wav"], ["Kick", "Kick Sub"]),
    (["Gtr.wav", "Gtr.wav"], ["Gtr", "Gtr"]),
    # A shared word in the middle stays.
    (["Lead Vox.wav", "Vox Double.wav"], ["Lead Vox", "Vox Double"]),
    # A lone file keeps its whole name.
    (["6.Caesium_Stem_ALT HATS_mobile.m4a"], ["Caesium Stem ALT HATS mobile"]),
    # What is left would hold no letter or digit: the untrimmed name stays.
    (["Stem A x.wav", "Stem - x.wav"], ["A", "Stem - x"]),
    ([], []),
])
def test_track_names_from_filenames_drop_the_words_all_names_share_at_start_and_end(filenames, expected):
    assert track_names_from_filenames(filenames) == expected

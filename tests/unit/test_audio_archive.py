import io
import stat
import zipfile

import pytest

from mixing.audio import SkippedEntry, extract_stems_zip
from mixing.errors import StemError

WAV_BYTES = b"RIFF" + bytes(996)  # the archive code never decodes; any bytes will do


def make_zip(path, entries):
    """``entries``: (name or ZipInfo, data) pairs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def test_extracts_audio_flat_and_skips_the_rest(tmp_path):
    zip_path = make_zip(tmp_path / "Song.zip", [
        ("Song/", b""),
        ("Song/01_Kick.wav", WAV_BYTES),
        ("Song/Bass.FLAC", WAV_BYTES),
        ("__MACOSX/Song/._01_Kick.wav", b"metadata"),
        ("Song/.DS_Store", b"x"),
        ("Song/notes.txt", b"tempo 120"),
        ("Other/01_kick.wav", WAV_BYTES),
    ])
    dest = tmp_path / "stems"
    result = extract_stems_zip(zip_path, dest)
    assert [p.name for p in result.paths] == ["01_Kick.wav", "Bass.FLAC", "01_kick (2).wav"]
    assert all(p.parent == dest and p.read_bytes() == WAV_BYTES for p in result.paths)
    assert result.skipped == [SkippedEntry("Song/notes.txt", "it is not an audio file (.txt).")]
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in result.paths)


def test_never_writes_outside_the_destination(tmp_path):
    zip_path = make_zip(tmp_path / "evil.zip", [
        ("../../escape.wav", WAV_BYTES), ("/abs/root.wav", WAV_BYTES), ("win\\..\\..\\back.wav", WAV_BYTES),
        ("ctl\x07bell.wav", WAV_BYTES),
    ])
    dest = tmp_path / "deep" / "stems"
    result = extract_stems_zip(zip_path, dest)
    assert [p.name for p in result.paths] == ["escape.wav", "root.wav", "back.wav", "ctlbell.wav"]
    assert all(p.parent == dest for p in result.paths)
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == sorted(p.name for p in result.paths)


def test_does_not_overwrite_files_already_in_the_destination(tmp_path):
    dest = tmp_path / "stems"
    dest.mkdir()
    (dest / "Kick.wav").write_bytes(b"earlier upload")
    result = extract_stems_zip(make_zip(tmp_path / "a.zip", [("Kick.wav", WAV_BYTES)]), dest)
    assert [p.name for p in result.paths] == ["Kick (2).wav"]
    assert (dest / "Kick.wav").read_bytes() == b"earlier upload"


def test_links_and_encrypted_entries_are_skipped_with_reasons(tmp_path):
    link = zipfile.ZipInfo("link.wav")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    zip_path = make_zip(tmp_path / "a.zip", [(link, "/etc/passwd"), ("locked.wav", WAV_BYTES)])
    # zipfile cannot encrypt: set the "encrypted" flag bit in locked.wav's central directory record.
    data = bytearray(zip_path.read_bytes())
    record = data.rindex(b"PK\x01\x02")
    data[record + 8] |= 0x1
    zip_path.write_bytes(bytes(data))
    result = extract_stems_zip(zip_path, tmp_path / "stems")
    assert result.paths == []
    assert [(s.name, s.reason) for s in result.skipped] == [
        ("link.wav", "it is a symbolic link."), ("locked.wav", "it is encrypted.")]


def test_too_many_entries_is_refused(tmp_path):
    zip_path = make_zip(tmp_path / "many.zip", [(f"{i}.wav", WAV_BYTES) for i in range(4)])
    with pytest.raises(StemError, match=r"^many\.zip: it holds 4 entries; the maximum is 3\."):
        extract_stems_zip(zip_path, tmp_path / "stems", max_entries=3)


def test_too_many_bytes_is_refused_and_nothing_is_left(tmp_path):
    zip_path = make_zip(tmp_path / "big.zip", [("a.wav", bytes(600_000)), ("b.wav", bytes(600_000))])
    with pytest.raises(StemError, match=r"^big\.zip: it unpacks to more than 1 MB\."):
        extract_stems_zip(zip_path, tmp_path / "stems", max_total_bytes=1024**2)
    assert not any((tmp_path / "stems").iterdir())


def test_bytes_are_counted_as_written_not_taken_from_headers(tmp_path, monkeypatch):
    zip_path = make_zip(tmp_path / "liar.zip", [("a.wav", WAV_BYTES), ("b.wav", WAV_BYTES)])
    # Headers say 1000 bytes each; the streams deliver far more, as a lying archive could.
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, entry: io.BytesIO(bytes(700_000)))
    with pytest.raises(StemError, match="unpacks to more than 1 MB"):
        extract_stems_zip(zip_path, tmp_path / "stems", max_total_bytes=1024**2)
    assert not any((tmp_path / "stems").iterdir())


def test_a_corrupt_entry_is_skipped_and_the_others_kept(tmp_path):
    zip_path = make_zip(tmp_path / "a.zip", [("good.wav", WAV_BYTES), ("bad.wav", bytes(range(256)) * 40)])
    data = bytearray(zip_path.read_bytes())
    payload = data.index(b"bad.wav") + len("bad.wav") + 20  # inside bad.wav's compressed data
    data[payload: payload + 8] = b"\xff" * 8
    zip_path.write_bytes(bytes(data))
    result = extract_stems_zip(zip_path, tmp_path / "stems")
    assert [p.name for p in result.paths] == ["good.wav"]
    assert result.skipped == [SkippedEntry("bad.wav", "it is corrupt.")]
    assert [p.name for p in (tmp_path / "stems").iterdir()] == ["good.wav"]


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "stems.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(StemError, match=r"^stems\.zip: it is not a valid ZIP archive\."):
        extract_stems_zip(path, tmp_path / "stems")


def test_too_many_audio_files_are_refused_from_the_directory_before_unpacking(tmp_path):
    zip_path = make_zip(tmp_path / "many.zip", [(f"{index}.wav", WAV_BYTES) for index in range(5)]
                        + [("notes.txt", b"not counted")])
    dest = tmp_path / "stems"
    with pytest.raises(StemError, match=r"many.zip: it holds 5 audio files; at most 4 can be added at once\."):
        extract_stems_zip(zip_path, dest, max_files=4)
    assert list(dest.iterdir()) == []
    assert [p.name for p in extract_stems_zip(zip_path, dest, max_files=5).paths] == [f"{i}.wav" for i in range(5)]


def test_declared_sizes_over_the_cap_are_refused_before_unpacking(tmp_path):
    zip_path = make_zip(tmp_path / "bomb.zip", [("a.wav", bytes(600 * 1024)), ("b.wav", bytes(600 * 1024))])
    dest = tmp_path / "stems"
    with pytest.raises(StemError, match=r"it unpacks to more than 1 MB\."):
        extract_stems_zip(zip_path, dest, max_total_bytes=1024**2)
    assert list(dest.iterdir()) == []


def test_a_zip_inside_the_zip_is_skipped_with_a_reason(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", [("a.wav", WAV_BYTES)]).read_bytes()
    result = extract_stems_zip(make_zip(tmp_path / "outer.zip", [("Stems/inner.zip", inner)]), tmp_path / "stems")
    assert result.paths == []
    assert result.skipped == [SkippedEntry("Stems/inner.zip",
                                           "ZIPs inside a ZIP are not unpacked; add its files to the outer ZIP.")]


def test_an_entry_whose_local_header_is_broken_is_skipped_as_corrupt(tmp_path):
    # Found by bench/fuzz.py: the local header fails when the entry is opened, before anything is written.
    zip_path = make_zip(tmp_path / "a.zip", [("good.wav", WAV_BYTES), ("bad.wav", WAV_BYTES)])
    data = bytearray(zip_path.read_bytes())
    header = data.index(b"PK\x03\x04", data.index(b"PK\x03\x04") + 4)  # bad.wav's local header
    data[header: header + 4] = b"XXXX"
    zip_path.write_bytes(bytes(data))
    result = extract_stems_zip(zip_path, tmp_path / "stems")
    assert [p.name for p in result.paths] == ["good.wav"]
    assert result.skipped == [SkippedEntry("bad.wav", "it is corrupt.")]


@pytest.mark.parametrize("failure", [OSError(22, "Invalid argument"),
                                     UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")])
def test_an_entry_that_cannot_be_opened_is_skipped_as_corrupt(tmp_path, monkeypatch, failure):
    # Found by bench/fuzz.py: a header offset before the file's start fails zipfile's seek, and a name flagged
    # UTF-8 that is not fails to decode. Both are raised by ZipFile.open, stood in for here (a mock).
    zip_path = make_zip(tmp_path / "a.zip", [("good.wav", WAV_BYTES), ("bad.wav", WAV_BYTES)])
    real_open = zipfile.ZipFile.open

    def failing_open(self, member, *args, **kwargs):
        if getattr(member, "filename", member) == "bad.wav":
            raise failure
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", failing_open)
    result = extract_stems_zip(zip_path, tmp_path / "stems")
    assert [p.name for p in result.paths] == ["good.wav"]
    assert result.skipped == [SkippedEntry("bad.wav", "it is corrupt.")]

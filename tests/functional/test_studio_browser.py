"""The studio as a visitor uses it, in Chromium against the real web server and Celery worker:
upload four stems (and one broken file) and a reference, remove the DC offset the preflight finds in the
bass, make the instant mix, listen in mono and at streaming loudness, move two sliders,
re-render, hear that the new version differs, apply the advice to move the fader back and re-render
again, and download version 2. And a 24-track session in the compact console: every row on one
screen, keyboard navigation, one track's details. Screenshots of the finished pages are kept in
test-output/ (studio.png, studio-24-tracks.png) for people to review."""
import io
import json
import re

import numpy as np
import pytest
import soundfile
from playwright.sync_api import expect

from mixing import SAMPLE_RATE
from mixing.explain import EQ_CURVE_POINTS
from mixing.features import N_BARK_BANDS
from mixing.params import MixParams
from tests.integration.studio_helpers import CORRUPT, reference_wav, session_stems, wav_bytes
from tests.signals import sine

pytestmark = [pytest.mark.slow, pytest.mark.browser]

STEM_DURATION_S = 6.0
# Generous: the worker shares two cores with everything else on a CI machine.
JOB_TIMEOUT_MS = 240_000
UPLOAD_TIMEOUT_MS = 60_000
# A fader moved by 12 dB changes the mix far more than this (RMS of the difference, full scale = 1).
MIN_DIFFERENCE_RMS = 0.05


def wav_file(name: str, content: bytes) -> dict:
    """A file for Playwright's file chooser, made in memory."""
    return {"name": name, "mimeType": "audio/wav", "buffer": content}


def format_hz(value_hz: float) -> str:
    """A frequency as the studio's sliders show it (static/js/studio/params.js formatValue)."""
    return f"{float(f'{value_hz / 1000:.2f}'):g} kHz" if value_hz >= 1000 else f"{round(value_hz)} Hz"


def decoded(response) -> np.ndarray:
    assert response.ok, f"{response.url}: {response.status} {response.text()[:300]}"
    samples, sample_rate_hz = soundfile.read(io.BytesIO(response.body()), dtype="float32", always_2d=True)
    assert sample_rate_hz == SAMPLE_RATE
    return samples


def upload_stems_with_one_broken(page) -> None:
    stems = session_stems(duration_s=STEM_DURATION_S)
    # An offset of 0.1 (-20 dBFS) for the preflight to find and remove.
    stems["01_Bass.wav"] = wav_bytes(sine(55.0, STEM_DURATION_S, amplitude=0.4) + 0.1)
    files = [wav_file(name, content) for name, content in stems.items()] + [wav_file("05_Broken.wav", CORRUPT)]
    page.get_by_test_id("stems-input").set_input_files(files)

    rows = page.locator("#stem-uploads [data-testid=upload-row]")
    expect(rows).to_have_count(len(files))
    expect(rows.and_(page.locator("[data-state=uploading]"))).to_have_count(0, timeout=UPLOAD_TIMEOUT_MS)
    states = {row.locator(".upload-name").inner_text(): row.get_attribute("data-state") for row in rows.all()}
    assert states == {**dict.fromkeys(stems, "accepted"), "05_Broken.wav": "rejected"}
    broken = rows.filter(has_text="05_Broken.wav")
    expect(broken.locator(".upload-reason")).to_have_text(re.compile("not a readable audio file"))
    expect(page.get_by_test_id("stem-name")).to_have_count(len(stems))
    names = {field.input_value() for field in page.get_by_test_id("stem-name").all()}
    assert names == {"Bass", "Keys", "Pad", "Drums"}


def remove_the_dc_offset_the_preflight_found(page) -> None:
    """The report lists the bass's offset; its fix rewrites the stem (as FLAC, same track) and the finding goes."""
    panel = page.get_by_test_id("preflight")
    offset = panel.locator("[data-testid=preflight-finding][data-check=dc_offset]")
    expect(offset).to_have_count(1, timeout=UPLOAD_TIMEOUT_MS)
    expect(panel).to_have_attribute("aria-busy", "false", timeout=UPLOAD_TIMEOUT_MS)
    expect(offset).to_contain_text("01_Bass.wav has a DC offset of -20.0 dBFS")
    offset.get_by_test_id("preflight-fix-dc_offset").click()
    expect(page.get_by_test_id("preflight-done")).to_have_text(
        "01_Bass.wav: its DC offset was removed; stored as 01_Bass.flac (24-bit FLAC, 44.1 kHz).")
    expect(offset).to_have_count(0, timeout=UPLOAD_TIMEOUT_MS)
    expect(panel).to_have_attribute("aria-busy", "false", timeout=UPLOAD_TIMEOUT_MS)
    expect(page.get_by_test_id("preflight-status")).to_contain_text("4 stems checked")
    expect(page.get_by_test_id("stem-name")).to_have_count(4)


def listen_in_mono_and_at_streaming_loudness(page) -> None:
    """The checks route every player through Web Audio: mono is a one-channel node, and streaming loudness
    replaces the level matching with each file's gain to -14 LUFS."""
    mono = page.get_by_test_id("check-mono")
    mono.click()
    expect(mono).to_have_attribute("aria-pressed", "true")
    for source in ("mix", "reference"):
        assert page.get_by_test_id(f"player-{source}").evaluate("audio => audio.mixrefChain.mono.channelCount") == 1
    page.get_by_test_id("check-streaming").click()
    expect(page.get_by_test_id("levels-text")).to_contain_text("At streaming loudness (-14 LUFS): Mix v1 ")
    mix_gain = page.get_by_test_id("player-mix").evaluate("audio => audio.mixrefChain.level.gain.value")
    mix_url = page.get_by_test_id("player-mix").evaluate("audio => new URL(audio.dataset.url, location.href).href")
    mix_lufs = float(page.request.get(mix_url).headers["x-loudness-lufs"])
    assert mix_gain == pytest.approx(10 ** ((-14 - mix_lufs) / 20), rel=1e-3)
    page.get_by_test_id("check-streaming").click()
    mono.click()
    expect(mono).to_have_attribute("aria-pressed", "false")
    assert page.get_by_test_id("player-mix").evaluate("audio => audio.mixrefChain.mono.channelCount") == 2
    expect(page.get_by_test_id("levels-text")).to_contain_text("Levels matched")


def move_gain_and_an_eq_frequency(page) -> float:
    """Track 1's fader by 12 dB and, in track 2's EQ (collapsed until opened), band 2's frequency; returns the
    fader's automatic value in dB."""
    gain = page.get_by_test_id("slider-0-gain_db")
    auto_gain_db = float(gain.input_value())
    new_gain_db = round(auto_gain_db + 12.0 if auto_gain_db <= 12.0 else auto_gain_db - 12.0, 1)
    gain.fill(str(new_gain_db))
    expect(gain).to_have_attribute("aria-valuetext", f"{new_gain_db:+.1f} dB")

    # Track 2's EQ is in its details strip, shown once its console row is selected.
    page.locator("#strip-title-1").click()
    page.locator("[data-strip='1'] details[data-group='eq'] > summary").click()
    frequency = page.get_by_test_id("slider-1-eq_band2_freq_hz")
    expect(frequency).to_be_visible()
    position = 100 if int(frequency.input_value()) > 500 else 900
    frequency.fill(str(position))
    min_hz, max_hz = 100.0, 4000.0  # band 2 in mixing/params.py EQ_BANDS
    expect(frequency).to_have_attribute("aria-valuetext", format_hz(min_hz * (max_hz / min_hz) ** (position / 1000)))
    expect(page.locator("#changes-text")).to_have_text("2 changes not rendered yet.")
    return auto_gain_db


def apply_the_advice_on_the_moved_fader(page, auto_gain_db: float) -> None:
    """The first suggestion moves track 1's fader back to the automatic balance; applying it moves the slider."""
    first = page.get_by_test_id("advice-item").first
    expect(first).to_be_visible(timeout=30_000)
    expect(first).to_contain_text(page.locator("#strip-title-0").inner_text() + " is ")
    expect(first).to_contain_text("Why: Level in the mix")
    page.get_by_test_id("advice-apply-0").click()
    expect(page.get_by_test_id("advice-apply-0")).to_have_text("Applied")
    assert float(page.get_by_test_id("slider-0-gain_db").input_value()) == pytest.approx(auto_gain_db, abs=0.5)
    expect(page.locator("#changes-text")).to_have_text("1 change not rendered yet.")


def test_studio_mixes_uploads_rerenders_a_moved_slider_and_downloads_the_wav(
    page, script_errors, studio_app, output_dir, tmp_path,
):
    page.goto(studio_app.url + "/")
    page.get_by_test_id("project-name").fill("Browser Song")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}/$"))
    project_id = page.locator("#studio").get_attribute("data-project-id")

    upload_stems_with_one_broken(page)
    page.get_by_test_id("reference-input").set_input_files(wav_file("Reference.wav", reference_wav(duration_s=8.0)))
    expect(page.get_by_test_id("reference-info")).to_be_visible(timeout=UPLOAD_TIMEOUT_MS)
    expect(page.locator("#reference-name")).to_have_text("Reference.wav")
    remove_the_dc_offset_the_preflight_found(page)

    page.get_by_test_id("mix-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 1 · automatic mix", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")
    listen_in_mono_and_at_streaming_loudness(page)

    auto_gain_db = move_gain_and_an_eq_frequency(page)
    page.get_by_test_id("render-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 2 · your changes", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_test_id("job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("version-2")).to_have_attribute("aria-current", "true")
    expect(page.get_by_test_id("version-1")).to_be_visible()

    audio = f"{studio_app.url}/api/projects/{project_id}/versions/{{}}/audio/"
    first, second = (decoded(page.request.get(audio.format(number))) for number in (1, 2))
    assert first.shape == second.shape
    difference_rms = float(np.sqrt(np.mean((second - first) ** 2)))
    assert difference_rms > MIN_DIFFERENCE_RMS, f"version 2 sounds like version 1 (RMS difference {difference_rms:.5f})"

    apply_the_advice_on_the_moved_fader(page, auto_gain_db)
    page.get_by_test_id("render-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 3 · your changes", timeout=JOB_TIMEOUT_MS)
    page.get_by_test_id("open-version-2").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 2 · your changes")

    with page.expect_download() as download_info:
        page.get_by_test_id("download-wav24").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-v2.wav")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    info = soundfile.info(saved)
    assert (info.channels, info.samplerate, info.subtype) == (2, SAMPLE_RATE, "PCM_24")
    assert abs(info.frames - round(STEM_DURATION_S * SAMPLE_RATE)) <= 4

    expect(page.locator("[data-testid=charts] .chart-plot .main-svg").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("charts")).to_have_attribute("aria-busy", "false", timeout=30_000)
    # The top bar is sticky: from the top of the page it is drawn there, not where the page was scrolled to.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=output_dir / "studio.png", full_page=True)
    assert script_errors == []


# A 24-track export as a DAW names it: every file shares "Caesium_Stem_" and "_mobile".
MANY_TRACKS = ["KICK", "SNARE", "HATS", "TOM 1", "TOM 2", "OH L", "OH R", "ROOM", "BASS DI", "BASS AMP", "GTR L",
               "GTR R", "ACOUSTIC", "PIANO", "ORGAN", "SYNTH PAD", "LEAD VOX", "BV 1", "BV 2", "STRINGS", "BRASS",
               "FX RISER", "PERC", "CLAP"]
CONSOLE_VIEWPORT = {"width": 1400, "height": 1000}


def test_compact_mixer_shows_24_tracks_at_once_and_moves_by_keyboard(page, script_errors, studio_app, output_dir):
    page.set_viewport_size(CONSOLE_VIEWPORT)
    page.goto(studio_app.url + "/")
    page.get_by_test_id("project-name").fill("Many Tracks")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}/$"))

    files = [wav_file(f"{number}.Caesium_Stem_{name}_mobile.wav",
                      wav_bytes(sine(80.0 * 1.15 ** number, 1.5, amplitude=0.3)))
             for number, name in enumerate(MANY_TRACKS, start=1)]
    page.get_by_test_id("stems-input").set_input_files(files)
    expect(page.get_by_test_id("upload-summary")).to_have_text(re.compile("24 uploads done: 24 added"),
                                                                timeout=UPLOAD_TIMEOUT_MS * 3)
    # The log folds away; the names lose the export's shared words once the page refetches the project.
    expect(page.locator("#stem-uploads [data-testid=upload-row]").first).to_be_hidden()
    expect(page.get_by_test_id("stem-name").last).to_have_value("CLAP")
    assert [field.input_value() for field in page.get_by_test_id("stem-name").all()] == MANY_TRACKS
    expect(page.get_by_test_id("project-status")).to_have_text("Needs a reference")
    page.get_by_test_id("reference-input").set_input_files(wav_file("Reference.wav", reference_wav(duration_s=2.0)))
    expect(page.get_by_test_id("project-status")).to_have_text("Ready to mix", timeout=UPLOAD_TIMEOUT_MS)

    # A preset renders a version without the automatic mix's fit: the console is what is tested here.
    preset = json.dumps(MixParams.default(len(MANY_TRACKS)).to_preset(MANY_TRACKS)).encode()
    page.get_by_test_id("preset-input").set_input_files(
        {"name": "flat.json", "mimeType": "application/json", "buffer": preset})
    expect(page.get_by_test_id("current-version")).to_have_text("Version 1 · from a preset", timeout=JOB_TIMEOUT_MS)

    # Every row on one screen of 1400 x 1000 px, from the keys hint at its top.
    rows = page.locator("[data-testid=console] .console-row")
    expect(rows).to_have_count(len(MANY_TRACKS) + 1)  # and the master
    page.get_by_test_id("mixer-hint").evaluate("el => el.scrollIntoView({block: 'start'})")
    for index, row in enumerate(rows.all()):
        box = row.bounding_box()
        assert box is not None and box["height"] > 0, f"row {index} is not drawn"
        in_view = box["y"] >= 0 and box["y"] + box["height"] <= CONSOLE_VIEWPORT["height"]
        assert in_view, f"row {index} is out of view: {box}"
        assert box["x"] + box["width"] <= CONSOLE_VIEWPORT["width"], f"row {index} overflows to the right: {box}"
    first = page.get_by_test_id("console-row-0")
    expect(first).to_contain_text(" dB")
    expect(first.locator(".console-pan .param-value")).to_have_text("C")
    expect(first.locator("[role=meter]")).to_have_attribute("aria-valuetext", re.compile(r"^-\d+\.\d LUFS$"))
    expect(first).to_have_class(re.compile("family-drums"))

    page.locator("#strip-title-0").click()
    first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    third = page.get_by_test_id("console-row-2")
    expect(third).to_have_attribute("aria-current", "true")
    expect(third).to_be_focused()
    expect(first).to_have_attribute("aria-current", "false")
    expect(page.locator("[data-strip='2']")).to_be_visible()
    expect(page.locator("[data-strip='0']")).to_be_hidden()
    # What the mix did for track 3: its EQ curve, one point per frequency the worker read, on a log Hz axis.
    expect(page.locator("#explain-title")).to_have_text(f"What the mix did: {MANY_TRACKS[2]}")
    eq_chart = page.get_by_test_id("explain-eq")
    expect(eq_chart.locator(".main-svg").first).to_be_visible()
    drawn = eq_chart.evaluate("el => ({points: el.data[0].x.length, axis: el.layout.xaxis.type,"
                              " unit: el.layout.yaxis.title.text})")
    assert drawn == {"points": EQ_CURVE_POINTS, "axis": "log", "unit": "Gain (dB)"}
    expect(page.get_by_test_id("explain-summary")).to_contain_text("Pan centre")

    page.keyboard.press("Enter")  # into the details of track 3
    assert page.evaluate("document.activeElement.closest('[data-strip]').dataset.strip") == "2"
    page.keyboard.press("Enter")  # the focused EQ summary opens
    expect(page.get_by_test_id("slider-2-eq_band2_freq_hz")).to_be_visible()
    page.keyboard.press("Escape")
    expect(third).to_be_focused()
    page.keyboard.press("m")
    expect(page.get_by_test_id("mute-2")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#changes-text")).to_have_text("1 change not rendered yet.")

    # The master's row shows its match EQ and its width per band, one bar per band, against the reference.
    page.locator("#strip-title-master").click()
    expect(page.locator("#explain-title")).to_have_text("What the mix did: master")
    width_chart = page.get_by_test_id("explain-width")
    expect(width_chart.locator(".main-svg").first).to_be_visible()
    assert width_chart.evaluate("el => el.data.map((trace) => trace.x.length)") == [N_BARK_BANDS] * 3
    expect(page.get_by_test_id("explain-reduction").locator("xpath=..")).to_be_hidden()

    expect(page.locator("[data-testid=charts] [data-chart=levels] .main-svg").first).to_be_visible(timeout=30_000)
    page.screenshot(path=output_dir / "studio-24-tracks.png", full_page=True)
    assert script_errors == []

"""The neural tone stage from the studio, in Chromium against the real web server and worker: mix four stems,
see each track's family (from its name) with the tone slider usable only where the family has a model, change
one track's family, solo the bass and render it, turn its tone fully on, re-render and hear its tone change."""
import re

import pytest
from playwright.sync_api import expect

from tests.integration.studio_helpers import reference_wav, session_stems, wav_bytes
from tests.signals import band_to_rest_db, sine

from .test_studio_browser import JOB_TIMEOUT_MS, STEM_DURATION_S, UPLOAD_TIMEOUT_MS, decoded, wav_file

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# The bass: a 55 Hz sawtooth (harmonics 1/k), rendered alone (soloed), so its spectrum is the mix's. Its strip
# and the master bus treat both renders alike (linear EQ, and dynamics that move every frequency together), so
# what moves the energy of its harmonics in the low mids against the rest is the tone stage alone.
HARMONICS = 30
LOW_MIDS_HZ = (300.0, 1000.0)
# About the smallest level change people hear (a 1 dB step in a band); a render that changed nothing moves it
# by 0 dB (the same settings render the same samples).
AUDIBLE_DB = 1.0


def sawtooth_bass(duration_s: float):
    return sum(sine(55.0 * k, duration_s, amplitude=0.3 / k) for k in range(1, HARMONICS + 1))


def test_the_tone_stage_on_the_bass_rerenders_audibly_different(page, script_errors, studio_app):
    page.goto(studio_app.url + "/")
    page.get_by_test_id("project-name").fill("Tone Song")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}/$"))
    project_id = page.locator("#studio").get_attribute("data-project-id")
    stems = session_stems(duration_s=STEM_DURATION_S) | {"01_Bass.wav": wav_bytes(sawtooth_bass(STEM_DURATION_S))}
    page.get_by_test_id("stems-input").set_input_files([wav_file(name, content) for name, content in stems.items()])
    expect(page.get_by_test_id("stem-name")).to_have_count(len(stems), timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_test_id("reference-input").set_input_files(wav_file("Reference.wav", reference_wav(duration_s=6.0)))
    expect(page.get_by_test_id("reference-info")).to_be_visible(timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_test_id("mix-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 1 · automatic mix", timeout=JOB_TIMEOUT_MS)

    # Families from the names (Bass, Keys, Pad, Drums); which have a model is the server's word.
    models = {family["name"]: family for family in page.request.get(f"{studio_app.url}/api/schema/").json()["families"]}
    for row, family in enumerate(["bass", "keys", "keys", "drums"]):
        expect(page.get_by_test_id(f"family-{row}")).to_have_value(family)
        slider = page.get_by_test_id(f"slider-{row}-tone_amount_pct")
        if models[family]["tone_model"]:
            expect(slider).to_be_enabled()
        else:
            expect(slider).to_be_disabled()
            expect(page.get_by_test_id(f"tone-reason-{row}")).to_have_text(f"Unavailable: {models[family]['reason']}.")
    assert models["bass"]["tone_model"], "the shipped bass checkpoint is missing"

    # The Pad is not a bass, but the user may say so: the choice is stored and the slider follows it.
    # Keys has a model too, so the slider's state alone does not show that the choice was stored: wait for it.
    with page.expect_response(lambda response: response.request.method == "PATCH" and "/stems/" in response.url):
        page.get_by_test_id("family-2").select_option("bass")
    expect(page.get_by_test_id("slider-2-tone_amount_pct")).to_be_enabled()
    stems_now = page.request.get(f"{studio_app.url}/api/projects/{project_id}/").json()["stems"]
    assert [stem["family"] for stem in stems_now] == ["bass", "keys", "bass", "drums"]

    page.get_by_test_id("console-row-0").click()
    page.get_by_test_id("solo-0").click()
    page.get_by_test_id("render-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 2 · your changes", timeout=JOB_TIMEOUT_MS)
    expect(page.get_by_text("Neural tone (experimental)").first).to_be_visible()
    page.get_by_test_id("slider-0-tone_amount_pct").fill("100")
    page.get_by_test_id("render-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 3 · your changes", timeout=JOB_TIMEOUT_MS)

    version = page.request.get(f"{studio_app.url}/api/projects/{project_id}/versions/3/").json()
    assert [track["params"]["tone_amount_pct"] for track in version["params"]["tracks"]] == [100.0, 0.0, 0.0, 0.0]
    audio = f"{studio_app.url}/api/projects/{project_id}/versions/{{}}/audio/"
    dry, toned = (decoded(page.request.get(audio.format(number))) for number in (2, 3))
    assert dry.shape == toned.shape
    moved_db = band_to_rest_db(toned, LOW_MIDS_HZ) - band_to_rest_db(dry, LOW_MIDS_HZ)
    assert abs(moved_db) > AUDIBLE_DB, f"the bass's low mids moved by {moved_db:.2f} dB only"
    assert script_errors == []

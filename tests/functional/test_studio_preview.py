"""The live slider preview in Chromium against the real web server and worker: mix four stems, prepare the
preview (a stems job labelled "Preparing the live preview"), move one fader and check within one animation
frame that its source's GainNode holds 10^((new - rendered) / 20), mute a track and see its source at 0, pan one, then
re-render and hear the exact render again. The slider -> gain node latency is kept in
test-output/preview-latency.json (BENCHMARKS.md, "Live preview files")."""
import json
import math
import re
import statistics

import pytest
from playwright.sync_api import expect

from tests.integration.studio_helpers import reference_wav, session_stems

from .test_studio_browser import JOB_TIMEOUT_MS, UPLOAD_TIMEOUT_MS, wav_file

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PREVIEW_TEXT = "Preview (approximate, master not applied)"
LATENCY_MOVES = 50
PAN_PCT = -40

# Sets a slider the way a drag does (value, then an input event that bubbles to the mixer) and answers in the
# next animation frame: the hook's gain for that track, the indicator, and the time from before the event to
# the gain node's update (performance.now(), milliseconds).
MOVE_AND_READ = """([testId, track, value]) => new Promise((resolve) => {
  const input = document.querySelector(`[data-testid="${testId}"]`);
  const before = performance.now();
  input.value = String(value);
  input.dispatchEvent(new Event('input', { bubbles: true }));
  requestAnimationFrame(() => {
    const hook = window.__mixrefPreview;
    resolve({ gain: hook.gainOf(track), state: hook.state, indicator: hook.indicator,
              latencyMs: hook.updatedAt - before, value: Number(input.value) });
  });
})"""


def test_the_live_preview_follows_a_fader_within_a_frame_until_the_exact_render_returns(
    page, script_errors, studio_app, output_dir,
):
    page.goto(studio_app.url + "/")
    page.get_by_test_id("project-name").fill("Preview Song")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}/$"))
    project_id = page.locator("#studio").get_attribute("data-project-id")
    stems = session_stems(duration_s=6.0)
    page.get_by_test_id("stems-input").set_input_files([wav_file(name, content) for name, content in stems.items()])
    expect(page.get_by_test_id("stem-name")).to_have_count(len(stems), timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_test_id("reference-input").set_input_files(wav_file("Reference.wav", reference_wav(duration_s=6.0)))
    expect(page.get_by_test_id("reference-info")).to_be_visible(timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_test_id("mix-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 1 · automatic mix", timeout=JOB_TIMEOUT_MS)

    indicator = page.get_by_test_id("preview-indicator")
    expect(indicator).to_have_text("Exact render")
    page.get_by_test_id("preview-button").click()
    expect(page.get_by_test_id("job-status")).to_contain_text("Preparing the live preview")
    panel = page.locator("#job-panel")
    expect(panel).to_have_class(re.compile(r"is-done|is-failed"), timeout=JOB_TIMEOUT_MS)
    assert "is-done" in panel.get_attribute("class"), page.locator("#job-error").inner_text()
    expect(page.get_by_test_id("preview-button")).to_be_hidden()
    page.wait_for_function("() => window.__mixrefPreview.ready", timeout=30_000)
    manifest = page.request.get(f"{studio_app.url}/api/projects/{project_id}/versions/1/preview/").json()
    rendered_db = manifest["tracks"][0]["gain_db"]
    assert [source["tracks"] for source in manifest["sources"]] == [[index] for index in range(len(stems))]

    new_db = round(rendered_db + 6.0 if rendered_db <= 6.0 else rendered_db - 6.0, 1)
    moved = page.evaluate(MOVE_AND_READ, ["slider-0-gain_db", 0, new_db])
    assert moved["value"] == pytest.approx(new_db)
    assert moved["gain"] == pytest.approx(10 ** ((new_db - rendered_db) / 20), abs=1e-3)
    assert (moved["state"], moved["indicator"]) == ("preview", PREVIEW_TEXT)
    expect(indicator).to_have_text(PREVIEW_TEXT)
    assert page.get_by_test_id("player-mix").evaluate("audio => audio.muted")
    # Track 2's source was not touched: it plays as rendered.
    assert page.evaluate("window.__mixrefPreview.gainOf(1)") == pytest.approx(1.0, abs=1e-6)
    page.get_by_test_id("mute-1").click()
    assert page.evaluate("window.__mixrefPreview.gainOf(1)") == 0.0
    page.get_by_test_id("mute-1").click()
    # The pan follows with the console's law: a one-channel source's StereoPannerNode at pan / 100, a
    # two-channel one's sides at cos(pan * pi / 200) on the far side (mixing/dsp/pan.py pan_gains).
    # The bass is one channel, the pad two.
    assert [source["channels"] for source in manifest["sources"]] == [1, 1, 2, 1]
    for track in (0, 2):
        page.get_by_test_id(f"slider-{track}-pan_pct").fill(str(PAN_PCT))
        pan = page.evaluate(f"window.__mixrefPreview.sources[{track}].pan")
        expected = PAN_PCT / 100 if track == 0 else [1.0, math.cos(-PAN_PCT * math.pi / 200)]
        assert pan == pytest.approx(expected, abs=1e-6)

    latencies_ms = []
    for move in range(LATENCY_MOVES):
        value = round(new_db - 3.0 * (move % 2), 1)
        reading = page.evaluate(MOVE_AND_READ, ["slider-0-gain_db", 0, value])
        assert reading["gain"] == pytest.approx(10 ** ((value - rendered_db) / 20), abs=1e-3)
        latencies_ms.append(reading["latencyMs"])
    (output_dir / "preview-latency.json").write_text(json.dumps({
        "moves": LATENCY_MOVES, "median_ms": statistics.median(latencies_ms), "max_ms": max(latencies_ms),
    }, indent=2))

    page.get_by_test_id("render-button").click()
    expect(page.get_by_test_id("current-version")).to_have_text("Version 2 · your changes", timeout=JOB_TIMEOUT_MS)
    expect(indicator).to_have_text("Exact render")
    assert page.evaluate("window.__mixrefPreview.state") == "exact"
    assert not page.get_by_test_id("player-mix").evaluate("audio => audio.muted")
    expect(page.get_by_test_id("preview-button")).to_be_visible()
    assert script_errors == []

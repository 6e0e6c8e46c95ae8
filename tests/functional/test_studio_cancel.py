"""A visitor cancels a running mix from the studio (a stuck job would otherwise block the project):
the panel says "Cancelled." and the mix button is back. (That a cancelled job saves no version is
tested in tests/integration/test_job_faults.py.)"""
import re

import pytest
from playwright.sync_api import expect

from tests.integration.studio_helpers import reference_wav, session_stems

from .test_studio_browser import UPLOAD_TIMEOUT_MS, wav_file

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_running_mix_is_cancelled_from_the_studio(page, script_errors, studio_app):
    page.goto(studio_app.url + "/")
    page.get_by_test_id("project-name").fill("Cancelled Song")
    page.get_by_test_id("create-project").click()
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}/$"))
    stems = list(session_stems(duration_s=6.0).items())[:2]
    page.get_by_test_id("stems-input").set_input_files([wav_file(name, content) for name, content in stems])
    expect(page.get_by_test_id("stem-name")).to_have_count(2, timeout=UPLOAD_TIMEOUT_MS)
    page.get_by_test_id("reference-input").set_input_files(wav_file("Reference.wav", reference_wav(duration_s=6.0)))
    expect(page.get_by_test_id("reference-info")).to_be_visible(timeout=UPLOAD_TIMEOUT_MS)

    page.get_by_test_id("mix-button").click()
    cancel = page.get_by_test_id("job-cancel")
    expect(cancel).to_be_visible(timeout=30_000)
    cancel.click()

    expect(page.locator("#job-error")).to_have_text("Cancelled.", timeout=30_000)
    expect(cancel).to_be_hidden()
    expect(page.get_by_test_id("mix-button")).to_be_enabled()
    assert script_errors == []

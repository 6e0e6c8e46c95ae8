"""The session's rate kept: stems at 48 kHz (or mostly so) render, play and download at 48 kHz through the
render task run in this process, the reference (at 44.1 kHz) resampled to the session's rate."""
import io
import zipfile

import pytest
import soundfile

from tests.signals import noise, sine
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    project_create,
    reference_upload,
    reference_wav,
    stems_upload,
    version_1_rendered,
    wav_bytes,
)

pytestmark = pytest.mark.django_db

DURATION_S = 1.5


def rendered_at_rates(client, enqueued, capture, rates_hz: list[int]) -> dict:
    project = project_create(client)
    stems = {f"{index:02d}_Track.wav": wav_bytes(sine(110.0 * (index + 1), DURATION_S, sample_rate=rate_hz)
                                                 + noise(DURATION_S, sample_rate=rate_hz, rms=0.02, seed=index),
                                                 rate_hz)
             for index, rate_hz in enumerate(rates_hz)}
    assert stems_upload(client, project["id"], stems).status_code == 201
    assert reference_upload(client, project["id"], reference_wav(duration_s=2.0)).status_code == 201
    return version_1_rendered(client, client.get(f"/api/projects/{project['id']}/").json(), enqueued, capture)


def info_of(response) -> soundfile._SoundFileInfo:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return soundfile.info(io.BytesIO(content))


@pytest.mark.parametrize("rates_hz", [[48000, 48000], [24000, 48000, 48000]])
def test_a_48_khz_session_renders_plays_and_downloads_at_48_khz(client, enqueued,
                                                                django_capture_on_commit_callbacks, rates_hz):
    project = rendered_at_rates(client, enqueued, django_capture_on_commit_callbacks, rates_hz)
    base = f"/api/projects/{project['id']}/"

    played = info_of(client.get(base + "versions/1/audio/"))
    assert played.samplerate == 48000
    assert played.frames == round(DURATION_S * 48000)
    assert info_of(client.get(base + "baseline/audio/?v=1")).samplerate == 48000
    for format_name, subtype in (("wav24", "PCM_24"), ("wav16", "PCM_16"), ("flac", "PCM_24")):
        download = info_of(client.get(base + f"versions/1/download/?format={format_name}"))
        assert (download.samplerate, download.subtype, download.frames) == (48000, subtype, played.frames)


def test_the_stems_zip_has_one_file_per_track_of_one_length_at_the_sessions_rate(
        client, enqueued, django_capture_on_commit_callbacks):
    project = rendered_at_rates(client, enqueued, django_capture_on_commit_callbacks, [24000, 48000, 48000])
    url = f"/api/projects/{project['id']}/versions/1/stems/"
    assert client.get(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 202, response.content
    assert enqueued[-1][0] == "project_stems"
    tasks.project_stems(enqueued[-1][1])
    tasks.project_stems(enqueued[-1][1])  # a repeated message keeps the one ZIP
    job = client.get(f"/api/jobs/{enqueued[-1][1]}/").json()
    assert (job["status"], job["error"]) == ("succeeded", "")
    version = client.get(f"/api/projects/{project['id']}/versions/1/").json()
    assert version["downloads"]["stems"] == url

    download = client.get(url)
    assert download["Content-Disposition"] == 'attachment; filename="my-song-v1-stems.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as archive:
        names = archive.namelist()
        infos = [soundfile.info(io.BytesIO(archive.read(name))) for name in names]
    assert names == [f"{index + 1:02d} {stem['name']}.wav" for index, stem in enumerate(project["stems"])]
    assert {(info.samplerate, info.frames, info.channels) for info in infos} == {(48000, round(DURATION_S * 48000), 2)}

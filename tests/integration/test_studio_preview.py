"""The live preview's files (mixing.preview through a stems job with "set": "preview"): one Ogg source per
track before its pan, at the session's rate, that through the console's pan law sum to the version's mix
before the master bus; for many tracks, family groups already panned that sum to it too."""
import io

import numpy as np
import pytest
import soundfile
import torch

from mixing.dsp.pan import pan_gains
from mixing.params import MixParams
from mixing.preview import preview_sources
from webapp.studio import work
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    ready_project,
    reference_wav,
    render_request,
    session_stems,
)

pytestmark = pytest.mark.django_db


def panned(audio: torch.Tensor, pan_pct: float | None) -> torch.Tensor:
    """A source (channels, samples) as the bus gets it: through the console's pan law, or as it is (a group)."""
    if pan_pct is None:
        return audio
    left, right = pan_gains(torch.tensor([pan_pct]), audio.shape[0])[0].tolist()
    stereo = audio.expand(2, -1)
    return stereo * torch.tensor([[left], [right]])


@pytest.fixture
def previewed(client, ready_project, enqueued, django_capture_on_commit_callbacks) -> dict:
    """Version 1 with track 0 at -6 dB, panned 40 % left, and its live preview made."""
    base = f"/api/projects/{ready_project['id']}/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{base}render/", render_request(ready_project, gain_db=-6.0, pan_pct=-40.0),
                               content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])
    url = f"{base}versions/1/preview/"
    assert client.get(url).status_code == 404
    assert client.get(f"{base}versions/1/").json()["preview_url"] is None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 202, response.content
    assert enqueued[-1][0] == "project_stems"
    tasks.project_stems(enqueued[-1][1])
    job = client.get(f"/api/jobs/{enqueued[-1][1]}/").json()
    assert (job["status"], job["error"]) == ("succeeded", "")
    assert client.get(f"{base}versions/1/").json()["preview_url"] == url
    return {"project": ready_project, "manifest": client.get(url).json()}


def test_the_preview_files_are_each_tracks_source_at_the_sessions_rate(client, previewed):
    """One Ogg file per track, at the session's rate and length, at its unencoded source's level. Vorbis keeps
    a source's level but not a noise's waveform (it codes noise as noise), so the files are compared by level;
    the exact sum is checked before encoding (next test)."""
    project, manifest = previewed["project"], previewed["manifest"]
    session = work._sessions[project["id"]].engine
    names = [stem["name"] for stem in project["stems"]]
    params = MixParams.from_preset(render_request(project, gain_db=-6.0, pan_pct=-40.0)["params"], track_names=names)
    rate = session.sample_rate
    assert (manifest["sample_rate_hz"], manifest["grouped"]) == (rate, False)
    assert [track["index"] for track in manifest["tracks"]] == list(range(len(names)))
    assert (manifest["tracks"][0]["gain_db"], manifest["tracks"][0]["pan_pct"]) == (-6.0, -40.0)
    for source, exact in zip(manifest["sources"], preview_sources(session, params, names), strict=True):
        response = client.get(source["url"])
        assert response["Content-Type"] == "audio/ogg"
        audio, file_rate = soundfile.read(io.BytesIO(response.content), dtype="float32", always_2d=True)
        assert (file_rate, audio.shape) == (rate, (session.renderer.samples, source["channels"]))
        # 1 dB: well past Vorbis's level error on these signals (under 0.5 dB), well short of a -6 dB gain.
        level_db = 10 * np.log10(float(np.square(audio).mean()) / float(exact.audio.square().mean()))
        assert abs(level_db) < 1.0, (source["name"], level_db)
    assert client.get(manifest["sources"][0]["url"].replace("01.ogg", "manifest.json")).status_code == 404


def test_the_preview_sources_sum_exactly_per_track_and_in_family_groups(client, previewed):
    """Before encoding the sum is exact to float32 rounding: each track once, with its own pan."""
    session = work._sessions[previewed["project"]["id"]].engine
    names = [stem["name"] for stem in previewed["project"]["stems"]]
    params = MixParams.from_preset(render_request(previewed["project"], gain_db=-6.0, pan_pct=-40.0)["params"],
                                   track_names=names)
    bus = session.renderer.bus_sum()
    for max_sources in (16, 1):  # one source per track; then families (bass; pad as other)
        sources = preview_sources(session, params, names, max_sources=max_sources)
        assert sorted(index for source in sources for index in source.tracks) == list(range(len(names)))
        total = torch.stack([panned(source.audio, source.pan_pct) for source in sources]).sum(0)
        torch.testing.assert_close(total, bus, rtol=0, atol=len(names) * 1e-6)
    assert [(source.pan_pct, source.audio.shape[0]) for source in sources] == [(None, 2)] * len(sources)

"""What the mix did, through the API: the render job stores each track's EQ curve, gain reduction, pan and level
and the master's bands with the version, and /explain/ reads them back."""
import pytest

from mixing.explain import GAIN_REDUCTION_POINTS
from webapp.studio.models import MixVersion
from workers import tasks

from .studio_helpers import enqueued, ready_project, render_request  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_a_render_stores_what_each_strip_and_the_master_did(client, ready_project, enqueued,
                                                             django_capture_on_commit_callbacks):
    project_id = ready_project["id"]
    body = render_request(ready_project, eq_band1_freq_hz=200.0, eq_band1_gain_db=6.0, comp_threshold_db=-40.0,
                          comp_ratio=4.0, pan_pct=-30.0)
    body["muted"] = [ready_project["stems"][1]["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project_id}/render/", body, content_type="application/json")
    assert response.status_code == 202, response.content
    tasks.project_render(enqueued[-1][1])
    explained = client.get(f"/api/projects/{project_id}/versions/1/explain/").json()

    assert explained["duration_s"] == pytest.approx(1.5)  # the stems' length: the gain reductions' time span
    bass, pad = explained["tracks"]
    assert [bass["name"], pad["name"]] == [stem["name"] for stem in ready_project["stems"]]
    assert len(bass["eq_db"]) == len(explained["eq_freqs_hz"])
    # A peaking band's curve peaks at its gain, at its centre (within one step of the log grid).
    peak = max(range(len(bass["eq_db"])), key=bass["eq_db"].__getitem__)
    assert bass["eq_db"][peak] == pytest.approx(6.0, abs=0.02)
    assert explained["eq_freqs_hz"][peak] == pytest.approx(200.0, rel=0.03)
    assert max(abs(v) for v in pad["eq_db"]) < 1e-6
    # The bass, a 55 Hz sine trimmed to -30 LUFS, sits well above a -40 dB threshold; the pad is not compressed.
    assert len(bass["gain_reduction_db"]) == GAIN_REDUCTION_POINTS
    assert min(bass["gain_reduction_db"]) < -3.0
    assert pad["gain_reduction_db"] == [0.0] * GAIN_REDUCTION_POINTS
    assert bass["pan_pct"] == -30.0
    # The pad is muted: the bass is the whole mix, and the pad has no level in it.
    assert bass["level_in_mix_db"] == pytest.approx(0.0, abs=0.01) and pad["level_in_mix_db"] is None

    master = explained["master"]
    bands = len(master["band_centres_hz"])
    assert len(master["match_eq_gain_db"]) == len(master["band_width_pct"]) == bands
    assert set(master["spectra"]) == {"mix", "reference"}
    assert len(master["spectra"]["reference"]["side_minus_mid_db"]) == bands
    assert master["band_width_pct"] == [100.0] * bands  # a render of the defaults leaves every band's width


def test_a_version_made_before_it_explains_nothing(client, ready_project, enqueued,
                                                   django_capture_on_commit_callbacks):
    project_id = ready_project["id"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/projects/{project_id}/render/", render_request(ready_project),
                    content_type="application/json")
    tasks.project_render(enqueued[-1][1])
    version = MixVersion.objects.get(project_id=project_id, number=1)
    version.chart_data.pop("explain")
    version.save(update_fields=["chart_data"])
    response = client.get(f"/api/projects/{project_id}/versions/1/explain/")
    assert response.status_code == 200 and response.json() == {}

"""Track names drop the words a session's file names share, as the files come in one per request, and
the project badge (``status``) follows stems, reference and versions."""
import pytest

from webapp.studio.models import MixVersion, Project

from .studio_helpers import project_create, reference_upload, reference_wav, session_stems, stems_upload

pytestmark = pytest.mark.django_db

EXPORT = ["1.Caesium_Stem_KICK_mobile.wav", "6.Caesium_Stem_ALT HATS_mobile.wav", "7.Caesium_Stem_BASS_mobile.wav"]


def names_of(client, project_id: str) -> list[str]:
    return [stem["name"] for stem in client.get(f"/api/projects/{project_id}/").json()["stems"]]


def test_shared_words_of_the_file_names_are_dropped_as_the_files_come_in_one_by_one(client):
    project = project_create(client)
    audio = session_stems(duration_s=1.0)["01_Bass.wav"]

    first = stems_upload(client, project["id"], {EXPORT[0]: audio}).json()["stems"][0]
    assert first["name"] == "Caesium Stem KICK mobile"  # a lone file keeps its whole name
    stems_upload(client, project["id"], {EXPORT[1]: audio})
    assert names_of(client, project["id"]) == ["KICK", "ALT HATS"]

    # A name the user gave stays; the others follow the session.
    hats = client.get(f"/api/projects/{project['id']}/").json()["stems"][1]
    client.patch(f"/api/projects/{project['id']}/stems/{hats['id']}/", {"name": "Hats"},
                 content_type="application/json")
    stems_upload(client, project["id"], {EXPORT[2]: audio})
    assert names_of(client, project["id"]) == ["KICK", "Hats", "BASS"]


def test_names_stay_once_a_version_exists(client):
    project = project_create(client)
    audio = session_stems(duration_s=1.0)["01_Bass.wav"]
    stems_upload(client, project["id"], {EXPORT[0]: audio, EXPORT[1]: audio})
    MixVersion.objects.create(project=Project.objects.get(pk=project["id"]), number=1, method="auto",
                              params={}, auto_params={})

    stems_upload(client, project["id"], {"Caesium_Stem_BASS.wav": audio})

    assert names_of(client, project["id"]) == ["KICK", "ALT HATS", "Caesium Stem BASS"]


def status_of(client, project_id: str) -> str:
    return client.get(f"/api/projects/{project_id}/").json()["status"]


def test_badge_follows_stems_reference_and_versions(client):
    reference_first = project_create(client, "Reference first")
    assert status_of(client, reference_first["id"]) == "empty"
    assert reference_upload(client, reference_first["id"], reference_wav(duration_s=2.0)).status_code == 201
    assert status_of(client, reference_first["id"]) == "needs_stems"

    project = project_create(client)
    stems = session_stems(duration_s=2.0)
    stems_upload(client, project["id"], {"01_Bass.wav": stems["01_Bass.wav"]})
    assert status_of(client, project["id"]) == "needs_reference"
    reference_upload(client, project["id"], reference_wav(duration_s=2.0))
    assert status_of(client, project["id"]) == "ready"

    MixVersion.objects.create(project=Project.objects.get(pk=project["id"]), number=1, method="auto",
                              params={"tracks": [{"name": "Bass", "params": {}}]}, auto_params={})
    assert status_of(client, project["id"]) == "mixed"
    stems_upload(client, project["id"], {"03_Pad.wav": stems["03_Pad.wav"]})
    assert status_of(client, project["id"]) == "changed"


def test_badge_says_changed_after_a_stem_is_deleted_since_the_mix(client):
    project = project_create(client)
    stems = session_stems(duration_s=2.0)
    stems_upload(client, project["id"], {name: stems[name] for name in ("01_Bass.wav", "03_Pad.wav")})
    reference_upload(client, project["id"], reference_wav(duration_s=2.0))
    MixVersion.objects.create(project=Project.objects.get(pk=project["id"]), number=1, method="auto",
                              params={"tracks": [{"name": "Bass", "params": {}}, {"name": "Pad", "params": {}}]},
                              auto_params={})
    assert status_of(client, project["id"]) == "mixed"

    pad = client.get(f"/api/projects/{project['id']}/").json()["stems"][1]
    assert client.delete(f"/api/projects/{project['id']}/stems/{pad['id']}/").status_code in (200, 204)
    assert status_of(client, project["id"]) == "changed"

"""The worker's per-project session cache is bounded in bytes (MIXREF_RENDER_CACHE_MAX_BYTES): the least
recently used sessions go first, and one too big on its own is not kept. Render tasks run in this process."""
import numpy as np
import pytest
import torch

from webapp.studio import work
from workers import tasks

from .studio_helpers import (  # noqa: F401 (fixtures)
    enqueued,
    project_create,
    reference_upload,
    reference_wav,
    render_request,
    session_stems,
    stems_upload,
)

pytestmark = pytest.mark.django_db


def test_held_bytes_counts_each_storage_once_through_objects_lists_and_dicts():
    class Holder:
        def __init__(self):
            self.audio = torch.zeros(2, 1000)  # 8000 bytes
            self.views = [self.audio[0], self.audio[:, :10]]  # views: no more bytes
            self.cache = {"spectrum": np.zeros(500, np.float64), "name": "pad"}  # 4000 bytes
            self.module = torch.nn.Linear(10, 10, bias=False)  # 400 bytes

    assert work.held_bytes(Holder()) == 8000 + 4000 + 400


def _rendered_project(client, name: str, enqueued, capture) -> str:
    project = project_create(client, name)
    stems = dict(list(session_stems(duration_s=1.5).items())[:2])
    assert stems_upload(client, project["id"], stems).status_code == 201
    assert reference_upload(client, project["id"], reference_wav(2.0)).status_code == 201
    project = client.get(f"/api/projects/{project['id']}/").json()
    with capture(execute=True):
        client.post(f"/api/projects/{project['id']}/render/", render_request(project), content_type="application/json")
    tasks.project_render(enqueued[-1][1])
    return project["id"]


@pytest.fixture
def empty_cache():
    work._sessions.clear()
    yield work._sessions
    work._sessions.clear()


def test_sessions_past_the_byte_cap_are_forgotten_oldest_first(
    client, enqueued, django_capture_on_commit_callbacks, settings, empty_cache
):
    first = _rendered_project(client, "First", enqueued, django_capture_on_commit_callbacks)
    one_session_bytes = work.held_bytes(empty_cache[first].engine)
    settings.MIXREF_RENDER_CACHE_MAX_BYTES = round(one_session_bytes * 1.5)

    second = _rendered_project(client, "Second", enqueued, django_capture_on_commit_callbacks)

    assert list(empty_cache) == [second]
    assert one_session_bytes > 1024**2  # decoded stems, reference, baseline and renderer are all counted


def test_a_session_bigger_than_the_cap_on_its_own_is_not_kept(
    client, enqueued, django_capture_on_commit_callbacks, settings, empty_cache
):
    settings.MIXREF_RENDER_CACHE_MAX_BYTES = 1024

    _rendered_project(client, "Huge", enqueued, django_capture_on_commit_callbacks)

    assert list(empty_cache) == []

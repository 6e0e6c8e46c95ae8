"""Stale entries in this machine's temporary folder. Standard library only: the worker's prefork parent
runs this at start-up, and it must not import torch (workers.celery)."""
import shutil
import tempfile
import time
from pathlib import Path

#: What the web process, the worker and the decoder put in the temporary folder (webapp.studio.services,
#: webapp.studio.work, mixing.audio.decode), all removed by TemporaryDirectory unless the process was killed.
TEMP_PREFIXES = ("mixref-stems-", "mixref-reference-", "mixref-job-", "mixref-version-", "mixref-decode-")


def temp_files_delete(*, max_age_s: float, folder: Path | None = None) -> int:
    """Deletes our entries in the temporary folder (``folder``, else this process's) last changed more than
    ``max_age_s`` ago; returns how many. Younger ones may belong to a running job."""
    folder = Path(folder or tempfile.gettempdir())
    cutoff_s = time.time() - max_age_s
    deleted = 0
    for entry in folder.iterdir():
        if not entry.name.startswith(TEMP_PREFIXES):
            continue
        try:
            if entry.lstat().st_mtime >= cutoff_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # a sibling worker on this machine or a second run got there first
            continue
        deleted += 1
    return deleted

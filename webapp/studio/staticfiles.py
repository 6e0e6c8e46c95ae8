"""Serves plotly.js from the installed plotly package as the static file ``plotly.min.js``: the
version always matches the Python package that builds the figures, and no CDN is needed."""
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "plotly.min.js"
PLOTLY_DIR = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    """Finds only ``plotly.min.js``; the package folder holds other data that is not ours to publish."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=PLOTLY_DIR)

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if kwargs:  # Django 5.2 still accepts the deprecated ``all``
            find_all = self._check_deprecated_find_param(find_all=find_all, **kwargs)
        if path != PLOTLY_JS:
            return [] if find_all else None
        found = str(PLOTLY_DIR / PLOTLY_JS)
        return [found] if find_all else found

    def list(self, ignore_patterns):
        yield PLOTLY_JS, self.storage

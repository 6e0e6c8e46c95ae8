"""The live preview files of the 16-stem var/real/6.Caesium song: time and size (BENCHMARKS.md, live preview).

Run: PYTHONPATH=. .venv/bin/python bench/preview_files.py
"""
import glob
import os
import tempfile
import time
from pathlib import Path

from mixing.preview import write_preview_zip
from mixing.session import MixSession

paths = sorted(glob.glob("var/real/6.Caesium/*_Stem_*.m4a"))
began = time.perf_counter()
session = MixSession.from_files(paths, None)
params = session.neutral_params()
loaded = time.perf_counter()
session.renderer.render(params)
rendered = time.perf_counter()
with tempfile.TemporaryDirectory() as folder:
    out = write_preview_zip(session, params, Path(folder) / "preview.zip")
    written = time.perf_counter()
    size = os.path.getsize(out)
print(f"stems={len(paths)} rate_hz={session.sample_rate} samples={session.renderer.samples} "
      f"load_s={loaded - began:.1f} render_s={rendered - loaded:.1f} preview_s={written - rendered:.1f} bytes={size}")

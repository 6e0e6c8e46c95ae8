"""Users' audio and what is done with it. For now one AudioFile and a loudness job; the studio adds
projects, stems and mixes with the same layout: models, services (write), selectors (read), views."""

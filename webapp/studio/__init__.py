"""The studio: projects of stems and a reference, automatic mixes and re-renders as numbered versions,
charts, players and downloads. models, services (write), selectors (read), thin views, charts.py."""

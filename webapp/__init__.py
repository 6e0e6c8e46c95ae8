"""Mixref's Django project: config (settings, urls), core (jobs, errors, uploads), projects."""

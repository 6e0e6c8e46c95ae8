"""Plotly figures of a mix version, built from plain data (no database, no audio decoding here).

The worker measures the audio once (:func:`chart_data`) and stores the result with the version;
:func:`figures` turns that and the version's analysis into the four figures of docs/API.md,
``{"spectrograms", "spectra", "features", "levels"}``, as JSON-ready dicts. Paper backgrounds are
transparent and text is light, for the dark studio page.
"""
import json
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Chart resolution: enough for a card in a browser, small enough to store with each version.
SPECTROGRAM_BINS = 128
SPECTROGRAM_FRAMES = 300
SPECTROGRAM_FLOOR_DB = -100.0
LEVELS_RANGE_DB = 60.0
TEXT_COLOUR = "#c9d1db"
COLOURS = {"mix": "#4cc9f0", "reference": "#f7b538", "baseline": "#9aa5b1"}
LABELS = {"mix": "Your mix", "reference": "Reference", "baseline": "Baseline"}


def _rounded(values, digits: int) -> list[float]:
    return [round(float(value), digits) for value in values]


def _spectrogram(audio, sample_rate: int) -> dict:
    from mixing.spectra import spectrogram_data

    data = spectrogram_data(audio, sample_rate, max_frames=SPECTROGRAM_FRAMES, n_bins=SPECTROGRAM_BINS)
    return {
        "db": [_rounded(row, 1) for row in data["db"].clip(SPECTROGRAM_FLOOR_DB, None)],
        "freqs_hz": _rounded(data["freqs_hz"], 1),
        "times_s": _rounded(data["times_s"], 2),
    }


def _spectrum(audio, sample_rate: int) -> dict:
    from mixing.spectra import long_term_spectrum

    data = long_term_spectrum(audio, sample_rate)
    return {"freqs_hz": _rounded(data["freqs_hz"], 1), "db": _rounded(data["db"], 2)}


def comparison_chart_data(reference, baseline, sample_rate: int) -> dict:
    """The parts of :func:`chart_data` that do not depend on the mix: the reference's spectrogram and the
    reference's and baseline's spectra, for a caller that charts many mixes against the same two."""
    return {"spectrograms": {"reference": _spectrogram(reference, sample_rate)},
            "spectra": {"reference": _spectrum(reference, sample_rate), "baseline": _spectrum(baseline, sample_rate)}}


def chart_data(mix, reference, baseline, sample_rate: int, *, comparison: dict | None = None) -> dict:
    """Spectrograms of mix and reference, long-term spectra of all three; each audio (channels, samples).

    Returns JSON-ready lists: ``spectrograms[name] = {"db": [[bins] per frame...], ...}``.
    ``comparison``: :func:`comparison_chart_data` of this reference and baseline, made before.
    """
    comparison = comparison or comparison_chart_data(reference, baseline, sample_rate)
    return {"spectrograms": {"mix": _spectrogram(mix, sample_rate), **comparison["spectrograms"]},
            "spectra": {"mix": _spectrum(mix, sample_rate), **comparison["spectra"]}}


def _layout(figure: go.Figure, **layout) -> dict:
    figure.update_layout(
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(255,255,255,0.02)",
        font={"color": TEXT_COLOUR},
        margin={"l": 56, "r": 16, "t": 36, "b": 44},
        **({"legend": {"orientation": "h", "y": 1.12, "x": 0}} | layout),
    )
    # Through plotly's own encoder: figures hold numpy arrays and plotly objects.
    return json.loads(figure.to_json())


def spectrograms_figure(spectrograms: dict) -> dict:
    """Mix and reference side by side on a log frequency axis, sharing one colour scale."""
    names = [name for name in ("mix", "reference") if name in spectrograms]
    if not names:
        return _layout(go.Figure())
    values = [level for name in names for row in spectrograms[name]["db"] for level in row]
    top_db = max(values, default=0.0)
    figure = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=[LABELS[name] for name in names])
    for column, name in enumerate(names, start=1):
        data = spectrograms[name]
        figure.add_trace(
            go.Heatmap(
                z=data["db"], x=data["times_s"], y=data["freqs_hz"], zmin=max(top_db - 80.0, SPECTROGRAM_FLOOR_DB),
                zmax=top_db, coloraxis="coloraxis", name=LABELS[name],
                hovertemplate="%{x:.1f} s, %{y:.0f} Hz: %{z:.1f} dB<extra>" + LABELS[name] + "</extra>",
            ),
            row=1, col=column,
        )
        figure.update_xaxes(title_text="time (s)", row=1, col=column)
    figure.update_yaxes(type="log", title_text="frequency (Hz)", row=1, col=1)
    for column in range(2, len(names) + 1):
        figure.update_yaxes(type="log", row=1, col=column)
    for annotation in figure.layout.annotations:
        annotation.font = {"color": TEXT_COLOUR}
    return _layout(
        figure,
        coloraxis={"colorscale": "Magma", "cmin": max(top_db - 80.0, SPECTROGRAM_FLOOR_DB), "cmax": top_db,
                   "colorbar": {"title": {"text": "dB"}}},
        height=340,
    )


def spectra_figure(spectra: dict) -> dict:
    """Long-term 1/3-octave spectra of mix, reference and baseline, overlaid."""
    figure = go.Figure()
    for name in ("reference", "baseline", "mix"):
        if name not in spectra:
            continue
        data = spectra[name]
        figure.add_trace(go.Scatter(
            x=data["freqs_hz"], y=data["db"], mode="lines", name=LABELS[name],
            line={"color": COLOURS[name], "width": 3 if name == "mix" else 2,
                  "dash": "dot" if name == "baseline" else None},
            hovertemplate="%{x:.0f} Hz: %{y:.1f} dB<extra>" + LABELS[name] + "</extra>",
        ))
    return _layout(figure, xaxis={"type": "log", "title": {"text": "frequency (Hz)"}},
                   yaxis={"title": {"text": "band level (dB)"}}, height=320)


def _rms_dbfs(rms: float | None) -> float | None:
    return 20.0 * math.log10(rms) if rms is not None and rms > 0 else None


# (label, feature key, conversion) of the bars; RMS is stored linear and shown in dBFS.
_FEATURE_BARS = (
    ("RMS (dBFS)", "rms", _rms_dbfs),
    ("Crest factor (dB)", "crest_factor_db", None),
    ("Stereo width (%)", "stereo_width", lambda value: None if value is None else 100.0 * value),
    ("Imbalance (%)", "stereo_imbalance", lambda value: None if value is None else 100.0 * value),
)


def features_figure(analysis: dict) -> dict:
    """The AF features of mix, reference and baseline as grouped bars, one small panel per feature."""
    features = analysis.get("features") or {}
    # Two by two: four panels side by side leave their titles no room in a half-width card.
    figure = make_subplots(rows=2, cols=2, subplot_titles=[label for label, _, _ in _FEATURE_BARS],
                           horizontal_spacing=0.14, vertical_spacing=0.16)
    for index, (_, key, convert) in enumerate(_FEATURE_BARS):
        row, column = divmod(index, 2)
        row, column = row + 1, column + 1
        for name in ("mix", "reference", "baseline"):
            value = (features.get(name) or {}).get(key)
            if convert is not None:
                value = convert(value)
            figure.add_trace(
                go.Bar(x=[LABELS[name]], y=[value], name=LABELS[name], marker={"color": COLOURS[name]},
                       legendgroup=name, showlegend=index == 0,
                       hovertemplate="%{y:.2f}<extra>" + LABELS[name] + "</extra>"),
                row=row, col=column,
            )
        figure.update_xaxes(showticklabels=False, row=row, col=column)
    for annotation in figure.layout.annotations:
        annotation.font = {"color": TEXT_COLOUR, "size": 12}
    return _layout(figure, barmode="group", height=400, legend={"orientation": "h", "y": -0.05, "x": 0})


# Rows of the track-level heat map, in px: one track per row, readable at 40 tracks.
LEVELS_ROW_PX = 18
LEVELS_MARGIN_PX = 90


def _stretched(envelope: list[float], points: int) -> list[float]:
    """An envelope on ``points`` columns (nearest segment), so tracks of other lengths share one grid."""
    return [envelope[index * len(envelope) // points] for index in range(points)] if envelope else [None] * points


def levels_figure(analysis: dict) -> dict:
    """A heat map of each track's level over the song: tracks down (first on top), time across, dB in colour.

    Lines per track stop being readable past a handful of tracks; one row per track stays readable at 40.
    Levels are after each track's fader; the loudest 60 dB are coloured: silent passages sit at the
    envelope's -120 dB floor.
    """
    tracks = analysis.get("track_levels") or []
    figure = go.Figure()
    if not tracks:
        return _layout(figure, height=LEVELS_MARGIN_PX + LEVELS_ROW_PX)
    points = max(len(track.get("envelope_db") or []) for track in tracks)
    top_db = max((level for track in tracks for level in track.get("envelope_db") or []), default=0.0)
    names = [track["name"] for track in tracks]
    loudness = [("—" if track.get("loudness_lufs") is None else f"{track['loudness_lufs']:.1f} LUFS")
                for track in tracks]
    figure.add_trace(go.Heatmap(
        z=[_stretched(track.get("envelope_db") or [], points) for track in tracks],
        x=[(index + 0.5) / max(points, 1) * 100.0 for index in range(points)], y=names,
        customdata=[[text] * points for text in loudness],
        zmin=top_db - LEVELS_RANGE_DB, zmax=top_db, colorscale="Viridis",
        colorbar={"title": {"text": "dBFS after the fader"}},
        hovertemplate="%{y} (%{customdata}) at %{x:.0f}%: %{z:.1f} dBFS<extra></extra>",
    ))
    return _layout(figure, xaxis={"title": {"text": "position in the song (%)"}, "range": [0, 100]},
                   # No axis title: it would sit on the track names, which say what the rows are.
                   yaxis={"autorange": "reversed", "type": "category", "automargin": True},
                   height=LEVELS_MARGIN_PX + LEVELS_ROW_PX * len(tracks))


def figures(chart_data: dict, analysis: dict) -> dict:
    """The four figures of a version, keyed as docs/API.md names them."""
    return {
        "spectrograms": spectrograms_figure(chart_data.get("spectrograms") or {}),
        "spectra": spectra_figure(chart_data.get("spectra") or {}),
        "features": features_figure(analysis),
        "levels": levels_figure(analysis),
    }

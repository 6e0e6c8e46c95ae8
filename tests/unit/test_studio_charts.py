"""charts.py: figures built from measured data, as the studio page draws them."""
import math

import pytest

from mixing import SAMPLE_RATE
from tests.signals import noise, sine
from webapp.studio.charts import LEVELS_MARGIN_PX, LEVELS_ROW_PX, chart_data, figures


@pytest.fixture(scope="module")
def data() -> dict:
    mix = sine(1000.0, 2.0, channels=2, amplitude=0.5)
    reference = sine(100.0, 2.0, channels=2, amplitude=0.05)
    baseline = noise(2.0, channels=2, rms=0.1)
    return chart_data(mix, reference, baseline, SAMPLE_RATE)


def analysis() -> dict:
    def feature(rms: float) -> dict:
        return {"rms": rms, "crest_factor_db": 3.0, "stereo_width": 0.1, "stereo_imbalance": 0.0,
                "bark_spectrum_db": [-20.0] * 24}

    return {
        "features": {"mix": feature(0.1), "reference": feature(0.2), "baseline": feature(0.05)},
        "track_levels": [{"stem": "a", "name": "Bass", "loudness_lufs": -20.0, "envelope_db": [-30.0, -20.0, -25.0]},
                         {"stem": "b", "name": "Pad", "loudness_lufs": None, "envelope_db": [-120.0, -120.0]}],
    }


def test_spectrograms_share_one_colour_scale_on_a_log_frequency_axis(data):
    figure = figures(data, analysis())["spectrograms"]

    heatmaps = figure["data"]
    assert [trace["type"] for trace in heatmaps] == ["heatmap", "heatmap"]
    assert {trace["coloraxis"] for trace in heatmaps} == {"coloraxis"}
    assert figure["layout"]["yaxis"]["type"] == "log" and figure["layout"]["yaxis2"]["type"] == "log"
    # The louder signal (the mix, 20 dB above the reference) sets the top of the one scale.
    top_db = [max(max(row) for row in trace["z"]) for trace in heatmaps]
    assert top_db[0] > top_db[1] + 15.0
    assert figure["layout"]["coloraxis"]["cmax"] == top_db[0]
    assert figure["layout"]["coloraxis"]["cmin"] == pytest.approx(top_db[0] - 80.0)
    assert len(heatmaps[0]["z"]) == len(heatmaps[0]["y"])


def test_spectra_overlay_puts_each_sine_in_its_band(data):
    traces = {trace["name"]: trace for trace in figures(data, analysis())["spectra"]["data"]}

    def loudest_hz(trace: dict) -> float:
        return trace["x"][max(range(len(trace["y"])), key=trace["y"].__getitem__)]

    assert set(traces) == {"Your mix", "Reference", "Baseline"}
    assert loudest_hz(traces["Your mix"]) == pytest.approx(1000.0, rel=0.01)
    assert loudest_hz(traces["Reference"]) == pytest.approx(100.0, rel=0.01)


def test_feature_bars_show_rms_in_dbfs_for_all_three():
    figure = figures({}, analysis())["features"]

    rms_bars = [trace for trace in figure["data"] if trace["xaxis"] == "x"]
    assert [bar["y"][0] for bar in rms_bars] == pytest.approx([-20.0, 20 * math.log10(0.2), 20 * math.log10(0.05)])


def test_level_overview_is_a_heat_map_of_tracks_over_time_in_dbfs():
    figure = figures({}, analysis())["levels"]

    (heatmap,) = figure["data"]
    assert heatmap["type"] == "heatmap" and heatmap["y"] == ["Bass", "Pad"]
    # Pad's two segments are stretched onto Bass's three columns, at the centre of each third of the song.
    assert heatmap["z"] == [[-30.0, -20.0, -25.0], [-120.0, -120.0, -120.0]]
    assert heatmap["x"] == pytest.approx([100 / 6, 50.0, 500 / 6])
    assert (heatmap["zmin"], heatmap["zmax"]) == (-80.0, -20.0)
    assert heatmap["customdata"][0][0] == "-20.0 LUFS" and heatmap["customdata"][1][0] == "—"
    assert heatmap["colorbar"]["title"]["text"] == "dBFS after the fader"
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"


def test_level_heat_map_grows_a_row_per_track():
    many = {"track_levels": [{"stem": str(i), "name": f"T{i}", "loudness_lufs": -20.0, "envelope_db": [-20.0]}
                             for i in range(40)]}
    assert figures({}, many)["levels"]["layout"]["height"] == LEVELS_MARGIN_PX + 40 * LEVELS_ROW_PX


def test_figures_have_transparent_paper_and_light_text(data):
    for figure in figures(data, analysis()).values():
        assert figure["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"
        assert figure["layout"]["font"]["color"] == "#c9d1db"

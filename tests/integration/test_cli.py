"""``python -m mixing`` on small sessions written to disk.

The main flows run in a subprocess, as a user runs them; the rest call
``main`` in this process, which skips the seconds of starting Python with torch.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mixing import SAMPLE_RATE
from mixing.__main__ import main
from mixing.params import MixParams
from tests.conftest import _SETTINGS_VARIABLE_PREFIXES, _SETTINGS_VARIABLES, REPO_DIR
from tests.signals import noise, sine, write_audio

DURATION_S = 2.0
SAMPLES = round(DURATION_S * SAMPLE_RATE)
STEM_NAMES = ("01_Kick.wav", "02_Bass.flac", "03_Pad.wav")


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    """A folder of three short stems (mono and stereo, WAV and FLAC) and a reference beside it."""
    root = tmp_path_factory.mktemp("cli")
    stems = root / "stems"
    stems.mkdir()
    write_audio(stems / STEM_NAMES[0], sine(55.0, DURATION_S, amplitude=0.5))
    write_audio(stems / STEM_NAMES[1], sine(110.0, DURATION_S, amplitude=0.1) + noise(DURATION_S, rms=0.01, seed=1))
    write_audio(stems / STEM_NAMES[2], noise(DURATION_S, rms=0.03, channels=2, seed=2))
    write_audio(root / "reference.wav", noise(DURATION_S, rms=0.05, channels=2, seed=3)
                + sine(80.0, DURATION_S, amplitude=0.1, channels=2))
    return root


def run(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mixing", *map(str, args)], cwd=REPO_DIR, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def module_env() -> dict[str, str]:
    """The environment of ``clean_env``, for module-scoped fixtures (clean_env is function-scoped)."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith(_SETTINGS_VARIABLE_PREFIXES) and name not in _SETTINGS_VARIABLES}


@pytest.fixture(scope="module")
def fitted_mix(session_dir, module_env):
    """One fitted mix of the stems given as files, with its parameters."""
    out, params = session_dir / "mix.wav", session_dir / "params.json"
    stems = [session_dir / "stems" / name for name in STEM_NAMES]
    result = run("mix", *stems, "--reference", session_dir / "reference.wav", "--out", out, "--params-out", params,
                 "--method", "fit", "--iterations", "2", "--time-budget-s", "600", "--format", "float", env=module_env)
    return result, out, params


def test_mix_writes_a_stereo_wav_of_the_stems_length(fitted_mix):
    result, out, _ = fitted_mix
    assert result.returncode == 0, result.stderr
    info = sf.info(out)
    assert (info.channels, info.frames, info.samplerate, info.subtype) == (2, SAMPLES, SAMPLE_RATE, "FLOAT")
    audio, _ = sf.read(out, dtype="float32")
    assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0
    assert "expert+balance+fit" in result.stdout and "fitting" in result.stderr


def test_params_out_is_a_preset_naming_the_stems(fitted_mix):
    _, _, params_path = fitted_mix
    preset = json.loads(params_path.read_text())
    params = MixParams.from_preset(preset)
    assert [track["name"] for track in preset["tracks"]] == ["Kick", "Bass", "Pad"]
    assert len(params.tracks) == 3


def test_params_in_reproduces_the_same_mix(fitted_mix, session_dir, tmp_path, capsys):
    _, out, params_path = fitted_mix
    again = tmp_path / "again.wav"
    code = main(["mix", str(session_dir / "stems"), "--reference", str(session_dir / "reference.wav"), "--out",
                 str(again), "--params-in", str(params_path), "--format", "float", "--quiet"])
    assert code == 0
    assert capsys.readouterr().err == ""
    first, _ = sf.read(out, dtype="float32")
    second, _ = sf.read(again, dtype="float32")
    assert first.shape == second.shape
    assert np.abs(first - second).max() <= 1e-4


def test_metrics_json_prints_the_report(fitted_mix, session_dir, capsys):
    _, out, _ = fitted_mix
    assert main(["metrics", str(out), "--reference", str(session_dir / "reference.wav"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"features", "af_loss", "readings", "loudness_lufs", "true_peak_dbtp"} <= set(report)
    assert set(report["af_loss"]["mix"]) == {"total", "rms", "crest_factor", "bark_spectrum", "stereo_width",
                                             "stereo_imbalance"}
    assert report["true_peak_dbtp"]["mix"] <= -1.0 + 1e-3


def test_metrics_table_lists_features_loss_terms_and_readings(fitted_mix, session_dir, capsys):
    _, out, _ = fitted_mix
    assert main(["metrics", str(out), "--reference", str(session_dir / "reference.wav")]) == 0
    table = capsys.readouterr().out
    for label in ("crest factor (dB)", "stereo width", "bark spectrum (dB)", "stereo_imbalance", "total", "Readings:"):
        assert label in table


def test_a_zip_of_stems_mixes_at_equal_loudness_into_flac(session_dir, tmp_path, capsys):
    archive = tmp_path / "stems.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in STEM_NAMES:
            handle.write(session_dir / "stems" / name, f"song/{name}")
    out = tmp_path / "mix.flac"
    assert main(["mix", str(archive), "--method", "equal-loudness", "--out", str(out)]) == 0
    info = sf.info(out)
    assert (info.format, info.channels, info.frames) == ("FLAC", 2, SAMPLES)
    captured = capsys.readouterr()
    assert "-14.0 LUFS" in captured.out
    assert "loading" in captured.err and "100%" in captured.err


def test_the_installed_mixref_command_mixes_from_outside_the_repository(session_dir, module_env, tmp_path):
    # ./scripts/test.sh installs the project (scripts/lib.sh, ensure_project); a bare pytest may run without it.
    script = Path(sys.executable).with_name("mixref")
    if not script.is_file():
        pytest.skip(f"the mixref console script is not installed beside {sys.executable} (pip install --no-deps -e .)")
    # No PYTHONPATH: the installed package, not the checkout on the path, must be what runs.
    env = {name: value for name, value in module_env.items() if name != "PYTHONPATH"}
    assert REPO_DIR not in tmp_path.parents
    usage = subprocess.run([str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("usage: mixref ") and "mix" in usage.stdout and "metrics" in usage.stdout
    out = tmp_path / "mix.wav"
    # The controller's method reads the shipped checkpoint, which must be found from any folder.
    result = subprocess.run([str(script), "mix", str(session_dir / "stems"), "--reference",
                             str(session_dir / "reference.wav"), "--method", "controller", "--out", "mix.wav"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    info = sf.info(out)
    assert (info.channels, info.frames) == (2, SAMPLES)


def test_a_corrupt_stem_exits_2_with_one_line_naming_it(session_dir, module_env, tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    (folder / "01_Kick.wav").write_bytes((session_dir / "stems" / STEM_NAMES[0]).read_bytes())
    (folder / "02_Broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    result = run("mix", folder, "--reference", session_dir / "reference.wav", "--out", tmp_path / "mix.wav",
                 "--quiet", env=module_env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "02_Broken.wav" in lines[0]
    assert not (tmp_path / "mix.wav").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["mix", "stems", "--out", "mix.wav"], "needs --reference"),
    (["mix", "stems", "--out", "mix.wav", "--params-in", "p.json", "--method", "fit"], "leave out --method"),
    (["mix", "stems", "--out", "mix.wav", "--method", "equal-loudness", "--params-out", "p.json"], "no parameters"),
    (["mix", "stems", "--out", "mix.wav", "--format", "mp3"], "invalid choice"),
    (["metrics", "mix.wav"], "--reference"),
    (["master"], "invalid choice"),
])
def test_usage_errors_exit_2_with_the_reason(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_preset_file_exits_2_naming_it(session_dir, tmp_path, capsys):
    code = main(["mix", str(session_dir / "stems"), "--out", str(tmp_path / "mix.wav"), "--quiet",
                 "--params-in", str(tmp_path / "nothing.json")])
    assert code == 2
    assert capsys.readouterr().err == "error: nothing.json: cannot be read (No such file or directory).\n"


def test_generate_is_the_session_generator(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0
    assert "--duration-s" in capsys.readouterr().out


def test_a_silent_stem_is_mixed_around_with_a_warning_naming_it(session_dir, tmp_path, capsys):
    folder = tmp_path / "stems"
    folder.mkdir()
    for name in STEM_NAMES[:2]:
        (folder / name).write_bytes((session_dir / "stems" / name).read_bytes())
    write_audio(folder / "04_Empty.wav", torch.zeros(1, SAMPLES))
    out, preset_path = tmp_path / "mix.wav", tmp_path / "mix.json"
    status = main(["mix", str(folder), "--reference", str(session_dir / "reference.wav"), "--out", str(out),
                   "--params-out", str(preset_path), "--method", "fit", "--iterations", "1", "--time-budget-s", "600",
                   "-q"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "warning: 04_Empty.wav is silent (peak below -90 dBFS): it is kept and left out of the mix." in err
    preset = json.loads(preset_path.read_text())
    assert [track["name"] for track in preset["tracks"]] == ["Kick", "Bass", "Empty"]
    assert sf.info(out).frames == SAMPLES


def test_advise_prints_the_gain_move_back_to_the_target_as_json(session_dir, tmp_path, capsys):
    names = [Path(name).stem for name in STEM_NAMES]
    target = MixParams.default(len(names))
    current = MixParams.default(len(names))
    current.tracks[1]["gain_db"] = -5.0
    (tmp_path / "target.json").write_text(json.dumps(target.to_preset(names)))
    (tmp_path / "current.json").write_text(json.dumps(current.to_preset(names)))
    assert main(["advise", str(session_dir / "stems"), "--params", str(tmp_path / "current.json"),
                 "--target", str(tmp_path / "target.json")]) == 0
    advice = json.loads(capsys.readouterr().out)
    gains = [suggestion for suggestion in advice["suggestions"] if suggestion["kind"] == "gain"]
    assert [(change["track"], change["param"]) for change in gains[0]["changes"]] == [(1, "gain_db")]
    assert gains[0]["changes"][0]["value"] == pytest.approx(0.0, abs=0.1)
    assert len(gains) == 1

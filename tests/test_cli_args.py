"""numpro.cli_args: one spelling, one check and one default for each shared flag, in every command."""

from __future__ import annotations

import argparse

import pytest

from numpro import cli_args, preprocess, viz
from numpro.stamp import StampStyle


def preprocessing(key: str):
    return lambda argv: preprocess.build_parser(preprocess.DATASETS[key]).parse_args(argv)


def viz_picture(picture: str, *positional: str):
    def parse(argv):
        parser = argparse.ArgumentParser()
        viz.register(parser.add_subparsers(dest="command", required=True), "viz", "pictures")
        return parser.parse_args(["viz", picture, *positional, "--output", "x.png", *argv])

    return parse


# Every command that stamps frames (the eval scripts join this list when they adopt the groups).
STAMPING = {**{f"preprocess/{key}.py": preprocessing(key) for key in preprocess.DATASETS},
            "viz manga": viz_picture("manga", "v.mp4"), "viz timeline": viz_picture("timeline", "p.jsonl")}


@pytest.mark.parametrize("command", STAMPING)
def test_every_stamping_command_takes_the_same_style_flags(command):
    parse = STAMPING[command]
    args = parse(["--position", "br", "--font-size", "20", "--color", "#00ff00", "--stamp-text", "seconds"])
    assert cli_args.stamp_style(args) == StampStyle(20, "#00ff00", "bottom_right")
    assert args.stamp_text == "seconds"
    defaults = parse([])
    assert cli_args.stamp_style(defaults) == StampStyle() and defaults.stamp_text == "number"
    for spelled in ("--font_size", "--stamp_text"):
        assert parse([spelled, "seconds" if "text" in spelled else "30"])


@pytest.mark.parametrize("command", STAMPING)
@pytest.mark.parametrize("flags", [["--position", "middle"], ["--color", "reddish"], ["--font_size", "0"],
                                   ["--stamp_text", "minutes"], ["--font", "/no/such/font.ttf"], ["--fps", "0"]],
                         ids=lambda flags: " ".join(flags))
def test_bad_values_are_usage_errors(command, flags, capsys):
    with pytest.raises(SystemExit) as exit:
        STAMPING[command](flags)
    assert exit.value.code == cli_args.EXIT_USAGE
    assert f"argument {flags[0]}" in capsys.readouterr().err


def test_position_aliases_and_names():
    assert [cli_args.parse_position(p) for p in ("tl", "tr", "bl", "br", "c", "top_left", "bottom-right")] == [
        "top_left", "top_right", "bottom_left", "bottom_right", "center", "top_left", "bottom_right"]


def test_flag_names_add_the_hyphen_form_once():
    assert cli_args.flag_names("--font_size") == ["--font_size", "--font-size"]
    assert cli_args.flag_names("--input", "--inputs") == ["--input", "--inputs"]
    assert cli_args.flag_names("--only_listed", "--only-listed") == ["--only_listed", "--only-listed"]


def test_sampling_group_takes_each_scripts_defaults_and_can_leave_flags_out():
    parser = argparse.ArgumentParser()
    cli_args.add_sampling(parser, fps=1.0, max_frames=None)
    args = parser.parse_args([])
    assert (args.fps, args.size, args.max_frames) == (1.0, 336, None)
    assert parser.parse_args(["--max-frames", "0"]).max_frames == 0
    parser = argparse.ArgumentParser()
    cli_args.add_sampling(parser, fps=0.5, size=cli_args.OMIT)
    assert vars(parser.parse_args([])) == {"fps": 0.5}


def test_workers_default_to_the_available_cores_under_a_cap():
    cores = cli_args.available_cores()
    assert cli_args.default_workers() == cores >= 1
    assert cli_args.default_workers(cap=1) == 1
    parser = argparse.ArgumentParser()
    cli_args.add_workers(parser, cap=2)
    assert parser.parse_args([]).workers == min(2, cores)
    assert parser.parse_args(["--workers", "0"]).workers == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--workers", "-1"])


def test_int_range():
    crf = cli_args.int_range(0, 51)
    assert crf("0") == 0 and crf("51") == 51
    for bad in ("52", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            crf(bad)

"""Every command the README shows exists and explains itself: each runs with --help."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[list[str]]:
    """The program part of each command in the README's bash blocks (up to its first option or path
    argument): `python eval/x.py`, `python -m numpro data check`, `bash scripts/train.sh`, ..."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = set()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    blocks += re.findall(r"`((?:python|bash|torchrun) [^`\n]+)`", text)  # commands quoted inline in the prose
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if not line:
                continue
            words = shlex.split(line)
            if words[0] in ("torchrun", "deepspeed"):  # the launcher runs a script: check the script
                words = ["python"] + [w for w in words if w.endswith(".py")][:1]
            if words[0] not in ("python", "bash", "sh"):
                continue
            program = words[:2] if words[1] != "-m" else words[:3]
            for word in words[len(program):]:
                if word.startswith("-") or "/" in word or "." in word or word.isupper():
                    break
                program.append(word)  # a sub-command such as `data charades` or `viz manga`
            commands.add(tuple(program))
    return sorted(list(c) for c in commands)


COMMANDS = readme_commands()


def test_the_readme_shows_the_main_commands():
    shown = {" ".join(c) for c in COMMANDS}
    for expected in ["python eval/qwen2_vl_7b_mr.py", "python eval/numpro_ft_mr.py", "python eval/metrics_hd.py",
                     "python -m numpro data check"]:
        assert expected in shown


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_readme_command_has_help(command):
    argv = [sys.executable if word == "python" else word for word in command] + ["--help"]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()

"""The ``memjax`` dispatcher: every command listed with one line, unknown ones refused."""

from __future__ import annotations

import pytest

from memjax import cli


def test_help_lists_every_command_with_one_line(capsys):
    cli.main(["--help"])
    out = capsys.readouterr().out
    for name, (_, summary) in cli.COMMANDS.items():
        assert f"  {name}" in out and summary in out
    assert len(out.strip().splitlines()) == 3 + len(cli.COMMANDS)


def test_unknown_command_names_the_valid_ones(capsys):
    with pytest.raises(SystemExit, match=r"unknown command 'trian'; expected one of \['train'"):
        cli.main(["trian"])

"""Shared options declared once (s3pump.commands.groups): a group is spliced into a verb's signature
where a parameter defaults to it, and its values come back as one Opts under that name."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from s3pump.commands.config import config_from
from s3pump.commands.groups import Opts, spliced
from s3pump.commands.options import ENDPOINT_OPTS, RATE_OPTS


def test_a_group_is_spliced_in_place_and_its_values_come_back_as_one_opts() -> None:
    seen: dict[str, Any] = {}

    def verb(url: Annotated[str, typer.Argument()], endpoint: Opts = ENDPOINT_OPTS,
             quiet: Annotated[bool, typer.Option("--quiet")] = False, rate: Opts = RATE_OPTS) -> None:
        seen.update(url=url, endpoint=endpoint, quiet=quiet, rate=rate)

    app = typer.Typer()
    app.command()(spliced(verb))
    app.command("other")(lambda: None)  # two commands: the verb is a subcommand, as s3pump's
    r = CliRunner().invoke(app, ["verb", "s3://b/k", "--region", "eu-west-1", "--no-verify-ssl", "--bwlimit", "1M",
                                 "--quiet"])
    assert r.exit_code == 0, r.output
    assert seen["url"] == "s3://b/k" and seen["quiet"] is True
    assert dict(seen["endpoint"]) == {"endpoint_url": None, "region": "eu-west-1", "profile": None,
                                      "ca_bundle": None, "no_verify_ssl": True}
    assert seen["rate"].bwlimit == "1M" and seen["rate"].max_rps is None
    config = config_from(seen["endpoint"], seen["rate"])
    assert config.region == "eu-west-1" and config.verify_ssl is False and config.max_bandwidth_bps == 1_000_000


def test_a_name_used_twice_is_refused() -> None:
    def verb(region: Annotated[str, typer.Option()] = "", endpoint: Opts = ENDPOINT_OPTS) -> None:
        pass

    with pytest.raises(TypeError, match="used twice"):  # when Typer first reads the signature
        inspect.signature(spliced(verb))

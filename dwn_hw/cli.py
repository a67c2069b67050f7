"""The ``dwn-hw`` command.

Each subcommand lives in the module that owns its work and is imported only when it
runs, so ``dwn-hw --help`` is fast and hardware commands never import torch.
"""
from __future__ import annotations

import importlib
import sys

import click

from dwn_hw import __version__

# command name -> ("module", "click command object name")
COMMANDS = {
    "train": ("dwn_hw.train.cli", "train"),
    "eval": ("dwn_hw.commands", "eval_cmd"),
    "freeze": ("dwn_hw.commands", "freeze_cmd"),
    "import-torch-dwn": ("dwn_hw.commands", "import_torch_dwn_cmd"),
    "info": ("dwn_hw.commands", "info_cmd"),
    "export": ("dwn_hw.export", "export_cmd"),
    "sim": ("dwn_hw.sim", "sim_cmd"),
    "verify": ("dwn_hw.verify", "verify_cmd"),
    "synth": ("dwn_hw.synth.cli", "synth_cmd"),
    "run": ("dwn_hw.synth.cli", "run_cmd"),
    "report": ("dwn_hw.synth.cli", "report_cmd"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            @click.command(name=name, help="(not available in this installation)")
            def unavailable():
                raise click.ClickException(f"command {name!r} is not available: {exc}")
            return unavailable


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dwn-hw")
def cli():
    """Train Differentiable Weightless Neural Networks and turn them into bit-exact FPGA hardware."""


def run_command(command: click.Command, argv=None, prog_name: str = "dwn-hw"):
    """Run a click command so that bad input ends with one ``error: ...`` line and exit status 2."""
    from dwn_hw.errors import DwnHwError

    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=True)
    except DwnHwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def main(argv=None):
    """The ``dwn-hw`` entry point."""
    run_command(cli, argv)


if __name__ == "__main__":
    main()

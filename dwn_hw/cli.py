"""The ``dwn-hw`` command.

Each subcommand lives in the module that owns its work and is imported only when it
runs, so ``dwn-hw --help`` is fast and hardware commands never import torch.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings

import click

from dwn_hw import __version__

# command name -> ("module", "click command object name")
COMMANDS = {
    "train": ("dwn_hw.train.cli", "train"),
    "eval": ("dwn_hw.describe_cli", "eval_cmd"),
    "freeze": ("dwn_hw.freeze.cli", "freeze_cmd"),
    "import-torch-dwn": ("dwn_hw.freeze.cli", "import_torch_dwn_cmd"),
    "info": ("dwn_hw.describe_cli", "info_cmd"),
    "export": ("dwn_hw.export_cli", "export_cmd"),
    "sim": ("dwn_hw.check.sim", "sim_cmd"),
    "verify": ("dwn_hw.check.verify", "verify_cmd"),
    "synth": ("dwn_hw.synth.cli", "synth_cmd"),
    "run": ("dwn_hw.synth.cli", "run_cmd"),
    "report": ("dwn_hw.synth.cli", "report_cmd"),
    "sweep": ("dwn_hw.sweep.cli", "sweep_cmd"),
}

# Libraries of the torch wing (the `train` extra); any other missing one belongs to `hw`.
TRAIN_LIBRARIES = {"torch", "sklearn", "tqdm"}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            # A library this installation lacks (torch without the train extra, say) makes the
            # command unavailable; a module of our own that fails to import is a bug: traceback.
            if (exc.name or "").split(".")[0] == "dwn_hw":
                raise
            missing = exc.name

            @click.command(name=name, help=f"(not available in this installation: needs {missing})",
                           context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
            def unavailable():
                from dwn_hw.errors import DwnHwError

                extra = "train" if missing in TRAIN_LIBRARIES else "hw"
                raise DwnHwError(f"`dwn-hw {name}` needs {missing}, which is not installed: "
                                 f"pip install \"dwn-hw[{extra}]\"")
            return unavailable


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dwn-hw")
def cli():
    """Train Differentiable Weightless Neural Networks and turn them into bit-exact FPGA hardware."""


def run_command(command: click.Command, argv=None, prog_name: str = "dwn-hw"):
    """Run a click command under the one error policy of every dwn-hw command line.

    - user errors (:class:`~dwn_hw.errors.DwnHwError`, click's usage errors and bad option values, OS
      errors naming a path) end with one ``error: ...`` line on stderr and exit status 2;
    - Ctrl-C ends with one ``interrupted: ...`` line and exit status 130 (a command that leaves something
      worth knowing, such as ``train``'s last checkpoint, says so through :class:`~dwn_hw.errors.Interrupted`);
    - anything else is a programming error and keeps its traceback.

    ``--help``, ``--version`` and shell completion behave as click makes them.
    """
    from dwn_hw.errors import DwnHwError, DwnHwWarning

    args = sys.argv[1:] if argv is None else list(argv)
    complete_var = f"_{prog_name.replace(' ', '_').replace('-', '_').replace('.', '_')}_COMPLETE".upper()
    if complete_var in os.environ:  # shell completion: click's own handling
        command.main(args=args, prog_name=prog_name, complete_var=complete_var)
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DwnHwWarning)
            warnings.showwarning = _show_warning(warnings.showwarning)
            with command.make_context(prog_name, args) as ctx:
                command.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version, ctx.exit()
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # ``dwn-hw`` alone: the help text
        exc.show()
        sys.exit(2)
    except click.UsageError as exc:
        _fail(usage_message(exc))
    except click.ClickException as exc:
        _fail(exc.format_message())
    except DwnHwError as exc:
        _fail(str(exc))
    except (KeyboardInterrupt, click.Abort) as exc:
        _interrupted(exc)
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        _fail(message)
    sys.exit(0)


def _show_warning(fallback):
    """Our warnings as one ``warning: ...`` line each; everyone else's as Python shows them."""
    from dwn_hw.errors import DwnHwWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DwnHwWarning):
            click.echo(f"warning: {_one_line(message)}", err=True)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(message: str) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(2)


def _interrupted(exc: BaseException) -> None:
    from dwn_hw.errors import Interrupted

    if isinstance(exc, Interrupted):
        message = exc.message
    elif isinstance(exc.__context__, Interrupted):  # click.Abort raised while handling ours
        message = exc.__context__.message
    else:
        message = "stopped by Ctrl-C before the command finished; run it again"
    click.echo(f"interrupted: {_one_line(message)}", err=True)
    sys.exit(130)


def usage_message(exc: click.UsageError) -> str:
    """Click's usage error as one line that says what is wrong and where the fix is documented."""
    text = exc.format_message().strip()
    if text:
        text = text[0].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text
    path = exc.ctx.command_path if exc.ctx is not None else "dwn-hw"
    return f"{text.rstrip('.')} (see `{path} --help`)"


_OS_HINTS = {
    FileNotFoundError: "no such file or folder; check the path",
    IsADirectoryError: "it is a folder; give a file",
    NotADirectoryError: "a part of the path is a file, not a folder; check the path",
    PermissionError: "permission denied; check its permissions or choose another path",
}


def os_error_message(exc: OSError) -> str | None:
    """``cannot open PATH: reason`` for an OS error on a path a user named; None for other OS errors."""
    if exc.filename is None:
        return None
    for kind, hint in _OS_HINTS.items():
        if isinstance(exc, kind):
            return f"cannot open {exc.filename}: {hint}"
    return f"cannot open {exc.filename}: {exc.strerror or type(exc).__name__}"


def main(argv=None):
    """The ``dwn-hw`` entry point."""
    run_command(cli, argv)


if __name__ == "__main__":
    main()

"""``python -m dwn_hw.train`` (and ``torchrun --nproc_per_node N -m dwn_hw.train``): ``dwn-hw train``."""
import sys

import click

from dwn_hw.errors import DwnHwError
from dwn_hw.train.cli import train


def main(argv=None):
    try:
        train.main(args=argv, prog_name="python -m dwn_hw.train", standalone_mode=True)
    except DwnHwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

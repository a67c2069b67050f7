"""``python -m dwn_hw.train`` (and ``torchrun --nproc_per_node N -m dwn_hw.train``): ``dwn-hw train``."""
from dwn_hw.cli import run_command
from dwn_hw.train.cli import train


def main(argv=None):
    run_command(train, argv, prog_name="python -m dwn_hw.train")


if __name__ == "__main__":
    main()

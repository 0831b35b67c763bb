"""``facecascade train ...`` subcommands."""

from __future__ import annotations

import argparse


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``facecascade train``."""
    parser = sub.add_parser("train", help="train models")
    parser.add_subparsers(dest="what", required=True)

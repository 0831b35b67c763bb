"""``facecascade eval ...`` subcommands."""

from __future__ import annotations

import argparse


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``facecascade eval``."""
    parser = sub.add_parser("eval", help="evaluate models on annotated data")
    parser.add_subparsers(dest="what", required=True)

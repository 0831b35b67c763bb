"""``facecascade weights list|info NAME``: the registry of named weights (`facecascade.registry`)
on the command line. ``list`` checks every file's SHA-256 and exits 1 if one differs."""

from __future__ import annotations

import argparse
import json
import sys

from .registry import KINDS, WeightsInfo, WeightsIntegrityError, list_weights, verified_files, weights_info


def file_status(name: str) -> str:
    """``ok``, ``missing`` (a file is not there: facenet-pytorch not installed, say) or ``MISMATCH``."""
    try:
        verified_files(name)
    except WeightsIntegrityError:
        return "MISMATCH"
    except FileNotFoundError:
        return "missing"
    return "ok"


def _rows(info: WeightsInfo, status: str) -> list[list[str]]:
    card = str(info.card_path) if info.card_path is not None else "-"
    return [
        [info.name, info.kind, status, file, sha, card] if i == 0 else ["", "", "", file, sha, ""]
        for i, (file, sha) in enumerate(info.sha256.items())
    ]


def cmd_list(args: argparse.Namespace) -> int:
    infos = [weights_info(name) for name in list_weights(args.kind)]
    status = {info.name: file_status(info.name) for info in infos}
    if args.json:
        print(json.dumps([{**info.to_dict(), "status": status[info.name]} for info in infos], indent=2))
    else:
        rows = [["NAME", "KIND", "STATUS", "FILE", "SHA256", "CARD"]]
        rows += [row for info in infos for row in _rows(info, status[info.name])]
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]) - 1)]
        for row in rows:
            print(("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip())
    bad = [name for name, state in status.items() if state == "MISMATCH"]
    if bad:
        print(f"error: SHA-256 mismatch for {', '.join(bad)}: reinstall facecascade", file=sys.stderr)
    return 1 if bad else 0


def describe(info: WeightsInfo, status: str) -> list[str]:
    """``info`` as the lines ``facecascade weights info`` prints."""
    lines = [
        f"name:          {info.name}{' (default ' + info.kind + ')' if info.default else ''}",
        f"kind:          {info.kind}",
        f"architecture:  {info.architecture}",
        f"description:   {info.description}",
        f"training data: {info.training_data}",
        f"licence:       {info.licence}",
        f"model card:    {info.card_path or '-'}",
        f"source:        {info.source} ({status})",
    ]
    lines += [f"file:          {file}  sha256 {sha}" for file, sha in info.sha256.items()]
    lines += [f"metric:        {key} = {value:g}" for key, value in info.metrics.items()]
    if info.metrics_source:
        lines.append(f"metrics from:  {info.metrics_source}")
    return lines


def cmd_info(args: argparse.Namespace) -> int:
    try:
        info = weights_info(args.name)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    status = file_status(info.name)
    if args.json:
        print(json.dumps({**info.to_dict(), "status": status}, indent=2))
    else:
        print("\n".join(describe(info, status)))
    return 1 if status == "MISMATCH" else 0


def add_weights_parser(sub: argparse._SubParsersAction) -> None:
    weights = sub.add_parser(
        "weights", help="list the named weights", description="The named weights facecascade knows (its registry)."
    )
    actions = weights.add_subparsers(dest="weights_command", required=True)
    listing = actions.add_parser("list", help="every registered name with its files' SHA-256 and model card")
    listing.add_argument("--kind", choices=KINDS, help="only the weights of this kind")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(func=cmd_list)
    info = actions.add_parser("info", help="one name: kind, files, training data, licence, metrics")
    info.add_argument("name", metavar="NAME")
    info.add_argument("--json", action="store_true", help="JSON instead of text")
    info.set_defaults(func=cmd_info)

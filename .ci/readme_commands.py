"""Write the README's set-up commands, the ```bash blocks under "## Set up", as OUT/1.sh, OUT/2.sh.

`.ci/run` runs exactly these, so the README cannot drift from what CI proves. Fails (exit 1)
unless there are exactly two: one that installs and runs the main job, one that runs the tests.

    python3 .ci/readme_commands.py README.md OUT
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def setup_commands(readme: str) -> list[str]:
    """The bash blocks of the "## Set up" section, verbatim."""
    section = re.search(r"^## Set up\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if section is None:
        raise SystemExit('README has no "## Set up" section')
    return re.findall(r"^```bash\n(.*?)^```", section.group(1), re.S | re.M)


def main(readme: str, out: str) -> int:
    commands = setup_commands(Path(readme).read_text(encoding="utf-8"))
    if len(commands) != 2:
        print(f"README's Set up section has {len(commands)} bash blocks, not 2", file=sys.stderr)
        return 1
    for number, command in enumerate(commands, 1):
        Path(out, f"{number}.sh").write_text(command, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

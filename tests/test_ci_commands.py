"""`.ci/readme_commands.py`: what CI runs is the README's "Set up" blocks, verbatim."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("readme_commands", ROOT / ".ci" / "readme_commands.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


README = """# x

## Set up

<!-- marker -->
```bash
pip install -e . && \\
  run it
```

```python
not_a_command()
```

```bash
pytest -q
```

## Next

```bash
not this one
```
"""


def test_only_the_set_up_sections_bash_blocks_verbatim(tmp_path: Path):
    readme_commands = _module()
    assert readme_commands.setup_commands(README) == ["pip install -e . && \\\n  run it\n", "pytest -q\n"]
    (tmp_path / "README.md").write_text(README)
    assert readme_commands.main(str(tmp_path / "README.md"), str(tmp_path)) == 0
    assert (tmp_path / "2.sh").read_text() == "pytest -q\n"


def test_not_two_blocks_or_no_section_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    readme_commands = _module()
    (tmp_path / "README.md").write_text(README.replace("```bash\npytest -q\n```", ""))
    assert readme_commands.main(str(tmp_path / "README.md"), str(tmp_path)) == 1
    assert "1 bash blocks, not 2" in capsys.readouterr().err
    with pytest.raises(SystemExit, match='no "## Set up" section'):
        readme_commands.setup_commands("# x\n\n## Install\n")


def test_the_readmes_commands_install_run_and_test():
    first, second = _module().setup_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "pip install" in first and "-e ." in first and "facecascade analyze" in first
    assert '".[test]"' in second and second.rstrip().endswith("python3 -m pytest -q")

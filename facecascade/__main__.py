"""``python -m facecascade ...`` (and ``torchrun -m facecascade train ...``): the command line."""

import sys

from .cli import main

sys.exit(main())

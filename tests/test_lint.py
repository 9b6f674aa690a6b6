"""The code, tests, benchmarks and notebooks pass the linter configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


#: The layers mypy keeps clean (the goal is data, evaluation and models; models is not there yet).
TYPED = ["recnb/errors.py", "recnb/config.py", "recnb/files.py", "recnb/films.py", "recnb/data", "recnb/evaluation",
         "recnb/models", "recnb/serve.py"]


def test_mypy_is_clean_on_the_typed_layers():
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *TYPED],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

"""Writing a benchmark's results: print them, and append them to its results file."""

from __future__ import annotations

import argparse
from pathlib import Path


def publish(results: Path, title: str, module: str, text: str, *, write: bool = True) -> None:
    """Print ``text``; append it to ``results`` (made with a heading on first use)."""
    print(text)
    if not write:
        return
    if not results.exists():
        results.write_text(f"# {title}\n\n`python -m {module}` appends a section per run.\n")
    with results.open("a") as file:
        file.write("\n" + text)


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0 (a count, seconds, a rate)."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value

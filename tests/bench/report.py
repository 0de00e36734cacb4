"""Writing a benchmark's results: print them, and append them to its results file."""

from __future__ import annotations

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

#!/usr/bin/env python3
"""Regenerate the supported-models tables in README.md from edge_assistant/catalog.toml."""

from pathlib import Path

from edge_assistant.catalog import load_catalog
from edge_assistant.docs import update_readme

if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.md"
    print("README.md updated" if update_readme(readme, load_catalog()) else "README.md already up to date")

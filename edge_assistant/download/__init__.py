"""Downloads: hub metadata (hub), resumable fetching (fetch), archives (archive), pulls into the store (pull)."""

from .fetch import PullOptions
from .pull import NotInstalledFromPackage, pull_asset, pull_llm

__all__ = ["NotInstalledFromPackage", "PullOptions", "pull_asset", "pull_llm"]

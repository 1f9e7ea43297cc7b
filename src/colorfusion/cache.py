"""Where colorfusion keeps what it can recompute: embeddings, sample photos."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$COLORFUSION_CACHE, else $XDG_CACHE_HOME/colorfusion, else ~/.cache/colorfusion."""
    if os.environ.get("COLORFUSION_CACHE"):
        return Path(os.environ["COLORFUSION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "colorfusion"

"""NumPro: temporal grounding for video LLMs by stamping frame numbers on frames.

Submodules are imported on demand; nothing heavy (torch, models) loads at import time.
"""

__version__ = "0.1.0"

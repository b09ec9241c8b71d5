"""The paper's protocol numbers, in one place (SPEC 2-5): every default elsewhere reads them here."""

from __future__ import annotations

# Sampling and numbering (SPEC 2)
NUMPRO_FT_FPS = 0.5  # NumPro-FT training and evaluation, highlight detection, upstream's result files
TRAINING_FREE_MR_FPS = 1.0  # training-free moment retrieval (paper, Supp. sec. 6)
FRAME_SIZE = 336  # frames are resized to FRAME_SIZE x FRAME_SIZE before the number is drawn
MAX_FRAMES = 240  # LongVA's frame cap: linspace(0, K-1, 240), each frame keeping its number
CLIP_SECONDS = 2.0  # QVHighlights clip length: at 0.5 FPS frame k is clip k

# Stamping (SPEC 3)
FONT_SIZE = 40
COLOR = "red"
POSITION = "bottom_right"

# Generation (SPEC 4/5): new tokens per answer
MR_MAX_NEW_TOKENS = 128  # training-free moment retrieval
HD_MAX_NEW_TOKENS = 512  # training-free highlight detection
NUMPRO_FT_MAX_NEW_TOKENS = 1024  # LongVA scripts

# Training (SPEC 5)
MODEL_MAX_LENGTH = 4096  # token cap after the visual tokens are spliced in
TOKENS_PER_FRAME = 144  # LongVA: 576 CLIP features pooled 2x2

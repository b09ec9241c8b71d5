"""Video language models behind one small interface (numpro.models.base).

Nothing here imports torch or transformers at package import time.
"""

"""Readers and converters for the annotation files NumPro uses (SPEC 6).

- charades, anet, didemo: official annotations -> NumPro moment-retrieval test records
- qvhighlights: read and validate the official highlight-detection jsonl
- vtimellm: VTimeLLM stage-2/3 data -> NumPro-FT training samples (0.5-FPS frame numbers)
- training: read and validate NumPro-FT training files (what can train: numpro.training.eligibility)
- check: missing or unreadable videos and annotation anomalies (`python -m numpro data check`)
- records, videofolder: what they share (errors, anomaly tallies, finding and probing videos)
"""

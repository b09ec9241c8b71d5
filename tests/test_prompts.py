"""One prompt builder (SPEC 4): the tasks use prompts.py's functions, with or without numbers."""

from __future__ import annotations

from numpro import prompts
from numpro.evaluation.tasks import HighlightDetection, MomentRetrieval, Query

QUERY = Query("1", "v.mp4", "a man throws a ball")


def test_moment_prompt_is_upstreams_string():
    assert MomentRetrieval().prompt(QUERY) == (
        "The red numbers on each frame represent the frame number.During which frames can we see a man throws a "
        "ball? Answer in the format: 'From Frame x to Frame y'.")  # SPEC 4: no space between the two
    assert MomentRetrieval(instruction=None).prompt(QUERY) == prompts.MR_QUESTION.format(QUERY.text)


# SPEC 4, to the character
SPEC_HD_QWEN2_VL = (
    'The red numbers on each frame represent the frame number. Please find the highlight contents in the '
    'video described by the query {}. Determine the highlight frames and its saliency score on a scale '
    'from 1 to 5. If the video content more related to the query, the saliency score should be higher. '
    "The output format should be like: 'The highlight frames are in the 80, 81, 82, 83, 84, 85, 86, 87, "
    "88, 89 frames. Their saliency scores are 1.3, 1.5, 2.6, 3.0, 2.9, 4.0, 3.7, 3.2, 2.1, 2.3'."
)
SPEC_HD_NUMPRO_FT = (
    'The red numbers on each frame represent the frame number. Please find the highlight contents in the '
    'video described by a sentence query, determining the highlight frames and its saliency score on a '
    'scale from 1 to 5. If the video content more related to the query, the saliency score should be '
    "higher. The output format should be like: 'The highlight frames are in the 80, 81, 82, 83, 84, 85, "
    "86, 87, 88, 89 frames. Their saliency scores are 1.3, 1.5, 2.6, 3.0, 2.9, 4.0, 3.7, 3.2, 2.1, 2.3'. "
    'Now I will give you the sentence query: {}. Please return the query-based highlight frames and '
    'salient scores.'
)


def test_highlight_prompts_are_upstreams_strings():
    assert prompts.HD_PROMPT_QWEN2_VL == SPEC_HD_QWEN2_VL
    assert prompts.HD_PROMPT_NUMPRO_FT == SPEC_HD_NUMPRO_FT
    for style in ("qwen2_vl", "numpro_ft"):
        task = HighlightDetection(style=style)
        assert task.prompt(QUERY) == prompts.HD_PROMPTS[style].format(QUERY.text)


def test_without_numbers_the_instruction_goes_even_from_a_given_template():
    plain = HighlightDetection(numbers=False).prompt(QUERY)
    assert plain.startswith("Please find the highlight contents") and prompts.INSTRUCTION not in plain
    template = prompts.INSTRUCTION + " Where is {}? Give frames and scores."
    assert HighlightDetection(template, numbers=False).prompt(QUERY) == f"Where is {QUERY.text}? Give frames and scores."
    assert HighlightDetection(template).prompt(QUERY) == template.format(QUERY.text)

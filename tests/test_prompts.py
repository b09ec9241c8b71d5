"""One prompt builder (SPEC 4): the tasks use prompts.py's functions, with or without numbers."""

from __future__ import annotations

from numpro import prompts
from numpro.evaluation.tasks import HighlightDetection, MomentRetrieval, Query

QUERY = Query("1", "v.mp4", "a man throws a ball")


def test_moment_prompt_is_the_builders():
    assert MomentRetrieval().prompt(QUERY) == prompts.mr_prompt(QUERY.text)
    assert MomentRetrieval().prompt(QUERY) == prompts.INSTRUCTION + prompts.MR_QUESTION.format(QUERY.text)
    assert MomentRetrieval(instruction=None).prompt(QUERY) == prompts.MR_QUESTION.format(QUERY.text)


def test_highlight_prompts_are_upstreams_strings():
    assert prompts.HD_PROMPT_QWEN2_VL.startswith(prompts.INSTRUCTION + " Please find the highlight contents in "
                                                 "the video described by the query {}.")
    assert prompts.HD_PROMPT_NUMPRO_FT.endswith("Now I will give you the sentence query: {}. Please return the "
                                                "query-based highlight frames and salient scores.")
    for style in ("qwen2_vl", "numpro_ft"):
        task = HighlightDetection(style=style)
        assert task.prompt(QUERY) == prompts.HD_PROMPTS[style].format(QUERY.text)


def test_without_numbers_the_instruction_goes_even_from_a_given_template():
    plain = HighlightDetection(numbers=False).prompt(QUERY)
    assert plain.startswith("Please find the highlight contents") and prompts.INSTRUCTION not in plain
    template = prompts.INSTRUCTION + " Where is {}? Give frames and scores."
    assert HighlightDetection(template, numbers=False).prompt(QUERY) == f"Where is {QUERY.text}? Give frames and scores."
    assert HighlightDetection(template).prompt(QUERY) == template.format(QUERY.text)

"""The exact prompt strings of NumPro (SPEC 4). Reproduce them to the character."""

from __future__ import annotations

INSTRUCTION = "The red numbers on each frame represent the frame number."

MR_QUESTION = "During which frames can we see {}? Answer in the format: 'From Frame x to Frame y'."

_HD_EXAMPLE = (
    "The output format should be like: 'The highlight frames are in the 80, 81, 82, 83, 84, 85, 86, 87, 88, 89 "
    "frames. Their saliency scores are 1.3, 1.5, 2.6, 3.0, 2.9, 4.0, 3.7, 3.2, 2.1, 2.3'."
)

# The highlight prompts after their instruction sentence ({} is the query); upstream's scripts
# write INSTRUCTION + " " + body as one string.
_HD_BODIES = {
    # eval/qwen2_vl_7b_hd.py upstream
    "qwen2_vl": (
        "Please find the highlight contents in the video described by the query {}. Determine the highlight frames "
        "and its saliency score on a scale from 1 to 5. If the video content more related to the query, the saliency "
        "score should be higher. " + _HD_EXAMPLE
    ),
    # eval/numpro_ft_hd.py upstream
    "numpro_ft": (
        "Please find the highlight contents in the video described by a sentence query, determining the highlight "
        "frames and its saliency score on a scale from 1 to 5. If the video content more related to the query, the "
        "saliency score should be higher. " + _HD_EXAMPLE + " Now I will give you the sentence query: {}. "
        "Please return the query-based highlight frames and salient scores."
    ),
}
HD_PROMPTS = {style: INSTRUCTION + " " + body for style, body in _HD_BODIES.items()}
HD_PROMPT_QWEN2_VL = HD_PROMPTS["qwen2_vl"]
HD_PROMPT_NUMPRO_FT = HD_PROMPTS["numpro_ft"]

# Timestamps instead of frame numbers (paper Tab. 9, --stamp_text seconds). The paper does not print
# its wording; ours mirrors the frame-number prompt sentence by sentence.
INSTRUCTION_SECONDS = "The red numbers on each frame represent the time in seconds."
MR_QUESTION_SECONDS = "During which seconds can we see {}? Answer in the format: 'From x seconds to y seconds'."


def mr_prompt(query: str, instruction: str | None = INSTRUCTION, question: str = MR_QUESTION) -> str:
    """Instruction and question joined with NO space between them, as upstream does.

    `instruction=None` (or "") gives the baseline prompt: the question alone.
    """
    return (instruction or "") + question.format(query)


def hd_prompt(query: str, style: str = "qwen2_vl", numbers: bool = True, template: str | None = None) -> str:
    """The highlight-detection prompt: the family's (or `template`, a full prompt with {} for the
    query); without numbers the instruction sentence is left out, wherever the template has it."""
    text = (HD_PROMPTS[style] if template is None else template).format(query)
    if not numbers:
        text = text.replace(INSTRUCTION + " ", "").replace(INSTRUCTION, "")
    return text

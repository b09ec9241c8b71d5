"""Answer parsing: upstream's moment-retrieval regex, its fallbacks, and highlight answers."""

import pytest

from numpro.parsing import UPSTREAM_SPAN_PATTERN, parse_highlight, parse_span


def test_upstream_pattern_is_the_spec_string():
    assert UPSTREAM_SPAN_PATTERN == r"from\s*(?:frame\s*)?(\d+)\s*to\s*(?:frame\s*)?(\d+)"


@pytest.mark.parametrize(
    "answer, span",
    [
        ("From Frame 3 to Frame 7", (3, 7)),
        ("from frame 3 to frame 7.", (3, 7)),
        ("FROM 12 TO 30", (12, 30)),
        ("The event happens from frame3to frame5 in the video", (3, 5)),
        # first match wins
        ("From 1 to 2, or maybe from 5 to 9.", (1, 2)),
        # upstream's regex reads the integer part of a decimal end, as upstream did
        ("from 3 to 7.5", (3, 7)),
    ],
)
def test_upstream_rule(answer, span):
    parsed = parse_span(answer)
    assert parsed.ok and parsed.span == span and parsed.rule == "upstream"
    assert parsed.raw == answer


@pytest.mark.parametrize(
    "answer, span, rule",
    [
        ("Frames 3-7", (3, 7), "frames_range"),
        ("frame 4 to frame 9", (4, 9), "frames_range"),
        ("From 3.5 to 7", (3.5, 7), "from_to"),
        ("from frame 2 until frame 6", (2, 6), "from_to"),
        ("It is between frame 4 and frame 9.", (4, 9), "between"),
        ("3 to 7", (3, 7), "bare_range"),
        ("3.5 to 7", (3.5, 7), "bare_range"),
        ("Answer: 10 - 14", (10, 14), "bare_range"),
    ],
)
def test_fallback_rules(answer, span, rule):
    parsed = parse_span(answer)
    assert parsed.ok and parsed.span == span and parsed.rule == rule
    # upstream's regex alone does not read them
    assert not parse_span(answer, strict=True).ok


def test_numbers_keep_their_type():
    parsed = parse_span("From 3.5 to 7")
    assert isinstance(parsed.start, float) and isinstance(parsed.end, int)


def test_reversed_span_is_kept_unless_asked():
    kept = parse_span("From Frame 9 to Frame 4")
    assert kept.span == (9, 4) and kept.reversed and not kept.swapped
    swapped = parse_span("From Frame 9 to Frame 4", swap_reversed=True)
    assert swapped.span == (4, 9) and swapped.reversed and swapped.swapped


def test_zero_length_span_is_not_reversed():
    parsed = parse_span("From 5 to 5")
    assert parsed.span == (5, 5) and not parsed.reversed


@pytest.mark.parametrize("answer", ["I cannot tell.", "", None, "frame seven to frame nine"])
def test_unparsable_answers(answer):
    parsed = parse_span(answer)
    assert not parsed.ok and parsed.span is None and parsed.rule is None
    assert parsed.raw == ("" if answer is None else answer)


def test_list_answer_is_joined():
    assert parse_span(["From 1 to 4"]).span == (1, 4)


# Highlight answers ------------------------------------------------------------------------


SPEC_EXAMPLE = (
    "The highlight frames are in the 80, 81, 82, 83, 84, 85, 86, 87, 88, 89 frames. "
    "Their saliency scores are 1.3, 1.5, 2.6, 3.0, 2.9, 4.0, 3.7, 3.2, 2.1, 2.3"
)


def test_highlight_spec_format():
    parsed = parse_highlight(SPEC_EXAMPLE)
    assert parsed.ok and not parsed.mismatch
    assert parsed.frames == tuple(range(80, 90))
    assert parsed.scores == (1.3, 1.5, 2.6, 3.0, 2.9, 4.0, 3.7, 3.2, 2.1, 2.3)
    assert parsed.raw == SPEC_EXAMPLE


def test_highlight_range_paired_by_position():
    parsed = parse_highlight(
        "The highlight frames are in the 80-85 frames. Their saliency scores are 1, 2, 3, 4, 5, 6."
    )
    assert parsed.frames == (80, 81, 82, 83, 84, 85)
    assert parsed.scores == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert not parsed.mismatch


def test_highlight_one_score_per_range_item():
    # two items (a range and a single frame), two scores: each range takes its item's score
    parsed = parse_highlight("The highlight frames are 10 to 12, 20. Their saliency scores are 4, 2.")
    assert parsed.frames == (10, 11, 12, 20)
    assert parsed.scores == (4.0, 4.0, 4.0, 2.0)
    assert parsed.unpaired == 0


def test_highlight_integer_scores_and_extra_text():
    parsed = parse_highlight(
        "Sure! The highlight frames are in the 5, 6 frames. Their saliency scores are 3, 4.5. "
        "The man jumps at 12 seconds, frame 13."
    )
    assert parsed.frames == (5, 6) and parsed.scores == (3.0, 4.5)
    assert all(isinstance(s, float) for s in parsed.scores)


def test_highlight_frame_words_and_and_separators():
    parsed = parse_highlight("Highlight frames: frame 7, frame 8 and frame 9. Scores: 1, 2 and 3")
    assert parsed.frames == (7, 8, 9) and parsed.scores == (1.0, 2.0, 3.0)


def test_highlight_more_frames_than_scores():
    parsed = parse_highlight("The highlight frames are in the 1, 2, 3 frames. Their saliency scores are 4.0, 5.0")
    assert parsed.ok and parsed.frames == (1, 2) and parsed.scores == (4.0, 5.0)
    assert parsed.n_frames_listed == 3 and parsed.n_scores_listed == 2
    assert parsed.unpaired == 1 and parsed.mismatch


def test_highlight_more_scores_than_frames():
    parsed = parse_highlight("The highlight frames are in the 4 frames. Their saliency scores are 2.0, 3.0, 1.0")
    assert parsed.frames == (4,) and parsed.scores == (2.0,)
    assert parsed.unpaired == 2 and parsed.mismatch


def test_highlight_reversed_range_is_two_frames():
    parsed = parse_highlight("The highlight frames are 9-7. Their saliency scores are 1, 2")
    assert parsed.frames == (9, 7) and parsed.scores == (1.0, 2.0)


def test_highlight_without_scores_fails():
    parsed = parse_highlight("The highlight frames are in the 1, 2 frames.")
    assert not parsed.ok and parsed.frames == () and "scores" in parsed.error
    assert parsed.n_frames_listed == 2


@pytest.mark.parametrize("answer", ["No highlight in this video.", "", None])
def test_highlight_without_frames_fails(answer):
    parsed = parse_highlight(answer)
    assert not parsed.ok and parsed.frames == () and parsed.scores == ()
    assert parsed.error == "no frame numbers found"


def test_highlight_upstream_list_answer():
    assert parse_highlight([SPEC_EXAMPLE]).frames == tuple(range(80, 90))

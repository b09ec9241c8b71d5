"""The two evaluation tasks: what a query is, its prompt, its output record and its metrics.

Moment retrieval (Charades-STA, ActivityNet): records carry upstream's fields plus ours
(DESIGN 2). Highlight detection (QVHighlights): one record per query with the parsed frames,
scores and per-clip saliency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import prompts, timeline
from ..datasets import qvhighlights
from ..datasets.records import read_moments
from ..metrics import report
from ..metrics.hd import evaluate_hd_records, saliency_from_frames
from ..metrics.mr import score_mr_records
from ..parsing import parse_highlight, parse_span


@dataclass
class Query:
    key: str  # the record id as a string (resume and merge compare these)
    video: str  # file name relative to the video folder
    text: str  # the query sentence
    source: dict = field(default_factory=dict)  # the annotation record as read


class MomentRetrieval:
    name = "mr"
    id_field = "id"

    def __init__(self, question: str = prompts.MR_QUESTION, instruction: str | None = prompts.INSTRUCTION,
                 units: str = "frames"):
        self.question = question
        self.instruction = instruction
        self.units = units  # what the answer's numbers are: frame numbers, or seconds (--stamp_text seconds)

    def load(self, path: str | Path) -> list[Query]:
        """The test file, validated (fields, types, unique ids: resuming relies on them)."""
        return [Query(str(r["id"]), str(r["video"]), str(r["query"]), r) for r in read_moments(path)]

    def prompt(self, query: Query) -> str:
        return prompts.mr_prompt(query.text, self.instruction, self.question)

    def prompt_template(self) -> str:
        """The prompt with `{query}` where the query goes (for the run record)."""
        return self.prompt(Query("", "", "{query}"))

    def same_question(self, record: dict, query: Query) -> bool:
        """An answer stays valid while the query's video and text are unchanged."""
        return record.get("video") == query.video and record.get("query") == query.text

    def refresh_truth(self, record: dict, query: Query) -> dict:
        """The record with the ground truth of the annotations given now."""
        source = query.source
        return dict(record, gt_start=source["start_time"], gt_end=source["end_time"], duration=source["duration"])

    def record(self, query: Query, response: str | None, fps: float, status: str) -> dict:
        answer = parse_span(response, units=self.units)
        start_sec, end_sec = (timeline.answer_to_seconds(answer.start, answer.end, fps, self.units) if answer.ok
                              else (None, None))
        source = query.source
        units = {"answer_units": "seconds"} if self.units == "seconds" else {}
        return {
            "id": source["id"],
            "response": response if response is not None else "",
            "gt_start": source["start_time"],
            "gt_end": source["end_time"],
            "pred_start": answer.start,
            "pred_end": answer.end,
            "duration": source["duration"],
            "video": query.video,
            "query": query.text,
            "fps": fps,
            "parsed": answer.ok,
            "parse_rule": answer.rule,
            "pred_start_sec": start_sec,
            "pred_end_sec": end_sec,
            "status": status,
            **units,
        }

    def score(self, records: list[dict], queries: list[Query], pred_path: Path, gt_path: Path) -> tuple[str, dict]:
        """The printed summary and the metrics JSON, as eval/metrics_mr.py gives them."""
        scored = score_mr_records(records, source=str(pred_path))
        return report.mr_summary(scored, str(pred_path)), report.mr_payload(scored, pred_path)


class HighlightDetection:
    name = "hd"
    id_field = "qid"

    def __init__(self, prompt_template: str | None = None, numbers: bool = True, style: str = "qwen2_vl"):
        self.template = prompt_template  # None: the model family's upstream prompt
        self.numbers = numbers
        self.style = style  # which upstream prompt (prompts.HD_PROMPTS) the family's script uses

    def load(self, path: str | Path) -> list[Query]:
        """The QVHighlights file, validated (unique qids)."""
        records = qvhighlights.read(path).records
        return [Query(str(r["qid"]), qvhighlights.video_name(r), str(r["query"]), r) for r in records]

    def prompt(self, query: Query) -> str:
        return prompts.hd_prompt(query.text, self.style, numbers=self.numbers, template=self.template)

    def prompt_template(self) -> str:
        return self.prompt(Query("", "", "{query}"))

    def same_question(self, record: dict, query: Query) -> bool:
        return str(record.get("vid")) == str(query.source["vid"]) and record.get("query") == query.text

    def refresh_truth(self, record: dict, query: Query) -> dict:
        # saliency is scored against the annotations' clips at scoring time; keep the duration current
        return dict(record, duration=query.source["duration"])

    def record(self, query: Query, response: str | None, fps: float, status: str) -> dict:
        answer = parse_highlight(response)
        n_clips = timeline.num_clips(query.source["duration"])
        saliency = saliency_from_frames(list(answer.frames), list(answer.scores), n_clips, fps)
        return {
            "qid": query.source["qid"],
            "vid": query.source["vid"],
            "query": query.text,
            "response": response if response is not None else "",
            "pred_frames": list(answer.frames),
            "pred_scores": list(answer.scores),
            "pred_saliency_scores": [float(s) for s in saliency],
            "duration": query.source["duration"],
            "fps": fps,
            "parsed": answer.ok,
            "status": status,
        }

    def score(self, records: list[dict], queries: list[Query], pred_path: Path, gt_path: Path) -> tuple[str, dict]:
        """The printed summary and the metrics JSON, as eval/metrics_hd.py gives them."""
        scored = evaluate_hd_records(records, [q.source for q in queries], pred_source=str(pred_path),
                                     gt_source=str(gt_path))
        return report.hd_summary(scored, str(pred_path)), report.hd_payload(scored, pred_path, gt_path)


TASKS: dict[str, Any] = {"mr": MomentRetrieval, "hd": HighlightDetection}

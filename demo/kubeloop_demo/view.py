"""The live view: a compact board of the three kinds and the traffic, refreshed in place (rich), with each
transition printed above it as a log line. `PlainView` prints only the log lines (no terminal, CI, tests).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kubeloop_demo.lineage import trigger_annotation
from kubeloop_demo.observe import RUN_CONDITIONS, Transition, condition, rollout_label, status
from kubeloop_demo.story import Board, View

MARK = {"True": ("✔", "green"), "False": ("✘", "red"), "Unknown": ("…", "yellow")}


def _mark(obj: dict[str, Any], type_: str) -> Text:
    c = condition(obj, type_)
    if c is None:
        return Text("·", style="dim")
    symbol, style = MARK.get(c.get("status", ""), ("?", "yellow"))
    return Text(symbol, style=style)


def trigger_text(run: dict[str, Any]) -> str:
    trigger = trigger_annotation(run)
    if trigger is None:
        return "manual"
    window = f" w{trigger['window']}" if trigger.get("window") is not None else ""
    return f"{trigger.get('reason', '?')}{window}"


def runs_table(board: Board) -> Table:
    table = Table(title="TrainingRuns", title_justify="left", expand=False, box=None, header_style="bold")
    runs = list(board.observer.items("TrainingRun"))
    table.add_column(
        "name", no_wrap=True, min_width=max((len(r["metadata"]["name"]) for r in runs), default=4)
    )
    for column in ("trigger", "data", "trained", "gate", "reg", "done", "version"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        marks = [_mark(run, type_) for type_ in RUN_CONDITIONS]
        version = status(run).get("modelVersion") or ""
        table.add_row(run["metadata"]["name"], trigger_text(run), *marks, version)
    return table


SHORT = {
    "requests": "req",
    "errorRate": "err",
    "p99LatencyMilliseconds": "p99 ms",
    "predictionShift": "shift",
    "onlineAccuracy": "acc",
}


def analysis_text(analysis: dict[str, Any] | None) -> Text:
    """`step 2: Pass  req 54 err 0 p99 ms 169 shift 0.08 acc 0.98`: the verdict and its numbers, compact."""
    if not analysis:
        return Text("")
    style = {"Pass": "green", "Fail": "red"}.get(analysis.get("verdict"), "yellow")
    text = Text(f"step {int(analysis.get('step', 0)) + 1}: {analysis.get('verdict')}", style=style)
    for m in analysis.get("measurements") or []:
        value = m.get("value")
        shown = f"{value:.3g}" if isinstance(value, int | float) else "n/a"
        text.append(
            f" {SHORT.get(m.get('metric'), m.get('metric'))} {shown}",
            style="red" if m.get("passed") is False else "dim",
        )
    return text


def versions_table(board: Board) -> Table:
    table = Table(title="ModelVersions", title_justify="left", expand=False, box=None, header_style="bold")
    versions = list(board.observer.items("ModelVersion"))
    table.add_column(
        "name", no_wrap=True, min_width=max((len(v["metadata"]["name"]) for v in versions), default=4)
    )
    for column in ("desired", "stage", "rollout", "ready"):
        table.add_column(column, no_wrap=True)
    for version in versions:
        st = status(version)
        rolled_back = condition(version, "RolledBack")
        stage = st.get("stage") or "-"
        if rolled_back and rolled_back.get("status") == "True":
            stage += " (rolled back)"
        table.add_row(
            version["metadata"]["name"],
            version["spec"].get("stage", "None"),
            stage,
            rollout_label(st.get("rollout")) or "-",
            str(st.get("readyReplicas", 0)),
        )
    return table


def analyses_lines(board: Board) -> Text:
    """The last canary analysis of each version in a rollout, one line each, below the table."""
    text = Text()
    for version in board.observer.items("ModelVersion"):
        analyses = (status(version).get("rollout") or {}).get("analyses") or []
        if analyses and status(version).get("stage") != "Archived":
            if text:
                text.append("\n")
            text.append(f" {version['metadata']['name']} ", style="bold")
            text.append_text(analysis_text(analyses[-1]))
    return text


def _feature_scores(monitor: dict[str, Any]) -> Text:
    """The drifted features with their p-values, then one summary of the rest (the board stays narrow)."""
    features = status(monitor).get("features") or []
    text = Text()
    for f in features:
        if f.get("drifted"):
            p = f.get("pValue")
            value = f"p={p:.2g}" if isinstance(p, int | float) else f"score {f.get('score', 0):.3g}"
            text.append(f"{f['name']} {value}  ", style="bold red")
    calm = [f for f in features if not f.get("drifted")]
    p_values = [f["pValue"] for f in calm if isinstance(f.get("pValue"), int | float)]
    if calm:
        lowest = f", lowest p={min(p_values):.2g}" if p_values else ""
        text.append(f"{len(calm)} not drifted{lowest}", style="dim" if text else "")
    return text


def monitor_table(board: Board) -> Table:
    table = Table(title="DriftMonitor", title_justify="left", expand=False, box=None, header_style="bold")
    for column in ("name", "watching", "window", "verdict", "drifted", "online acc"):
        table.add_column(column, no_wrap=True)
    for monitor in board.observer.items("DriftMonitor"):
        st = status(monitor)
        performance = st.get("performance") or {}
        accuracy = performance.get("value")
        verdict = st.get("verdict") or "-"
        style = {"Drift": "bold red", "NoDrift": "green"}.get(verdict, "yellow")
        table.add_row(
            monitor["metadata"]["name"],
            st.get("modelVersion") or "-",
            f"#{st.get('window', 0)} ({st.get('sampleCount', 0)} rows)",
            Text(verdict, style=style),
            _mark(monitor, "Drifted"),
            f"{accuracy:.2f}" if isinstance(accuracy, int | float) else "-",
        )
    return table


def features_lines(board: Board) -> Text:
    text = Text()
    for monitor in board.observer.items("DriftMonitor"):
        if status(monitor).get("features"):
            if text:
                text.append("\n")
            text.append(f" {monitor['metadata']['name']} last window: ", style="bold")
            text.append_text(_feature_scores(monitor))
    return text


def traffic_line(board: Board) -> Text:
    summary = board.traffic
    if summary is None:
        return Text("traffic: not started", style="dim")
    text = Text("traffic: ", style="bold")
    text.append(f"{summary.rate:.1f} req/s to {summary.endpoints} endpoints, ")
    if summary.accuracy is not None:
        style = "green" if summary.accuracy >= 0.9 else "red"
        text.append(f"online accuracy {summary.accuracy:.2f}", style=style)
    shares = ", ".join(f"v{version} {share:.0%}" for version, share in summary.share.items())
    text.append(
        f" (last 10 s; {shares or 'no answers'}), {summary.requests} requests, {summary.errors} errors"
    )
    text.append(f"\n         world: {summary.world}", style="dim")
    return text


def board_renderable(board: Board) -> Group:
    header = Text(f"kubeloop demo  {board.elapsed:5.0f}s  ", style="bold")
    header.append(board.stage, style="bold cyan")
    header.append(f"  ({board.stage_elapsed:.0f}s of at most {board.stage_deadline:.0f}s)", style="dim")
    return Group(
        header,
        runs_table(board),
        versions_table(board),
        analyses_lines(board),
        monitor_table(board),
        features_lines(board),
        traffic_line(board),
    )


class PlainView(View):
    """Timestamped log lines only."""

    def __init__(self, out: TextIO | None = None, t0: float | None = None):
        """`t0`: the time.monotonic() the timestamps count from (the story's)."""
        self.out = out or sys.stdout
        self.t0 = time.monotonic() if t0 is None else t0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _print(self, text: str) -> None:
        try:
            print(f"[{self.elapsed:6.1f}s] {text}", file=self.out, flush=True)
        except OSError:  # the terminal went away; the demo goes on to its teardown
            pass

    def stage(self, title: str, deadline: float) -> None:
        self._print(f"== {title} (deadline {deadline:.0f}s)")

    def transition(self, transition: Transition) -> None:
        self._print(transition.line())

    def note(self, text: str) -> None:
        self._print(text)

    def render(self, board: Board) -> None:
        pass


class LiveView(PlainView):
    """The board refreshed in place at the bottom of the terminal; log lines scroll above it."""

    def __init__(self, console: Console | None = None, t0: float | None = None):
        super().__init__(t0=t0)
        self.console = console or Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)

    def __enter__(self) -> LiveView:
        self.live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.live.stop()

    def _print(self, text: str) -> None:
        try:
            self.console.print(Text(f"[{self.elapsed:6.1f}s] ", style="dim") + Text(text), soft_wrap=True)
        except OSError:
            pass

    def stage(self, title: str, deadline: float) -> None:
        try:
            self.console.rule(f"{title}  (deadline {deadline:.0f}s)", style="cyan")
        except OSError:
            pass

    def render(self, board: Board) -> None:
        try:
            self.live.update(board_renderable(board), refresh=True)
        except OSError:
            pass

"""`kubeloop-demo` (`make demo`): the closed loop on a local cluster of its own, with a live view.

Exit codes: 0 the whole story happened; 1 a stage did not happen within its deadline (the message names
it); 2 the cluster or the operator could not start; 130 interrupted (Ctrl-C, SIGTERM). Whatever happens,
everything the demo started is stopped before it exits, and what it recorded is in the output directory.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType

from kubeloop_cluster.errors import SetupError

from kubeloop_demo.config import DemoConfig
from kubeloop_demo.lineage import lineage_lines
from kubeloop_demo.plot import write_plot
from kubeloop_demo.stack import Stack, StackError
from kubeloop_demo.story import StageFailed, Story, StoryResult
from kubeloop_demo.view import LiveView, PlainView

PLOT = "closed-loop.png"


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def write_outputs(result: StoryResult, config: DemoConfig) -> tuple[Path, Path, list[str]]:
    """The plot, the lineage and a JSON record of the run, into the output directory."""
    out = config.output
    out.mkdir(parents=True, exist_ok=True)
    plot = write_plot(
        out / PLOT,
        result.windows,
        result.requests,
        result.milestones,
        f"kubeloop closed loop: {config.model}, {config.shift_feature} shifted by {config.shift_delta:+g}",
    )
    lines = lineage_lines(result.versions, result.runs, result.monitor, result.registry)
    (out / "lineage.txt").write_text("\n".join(lines) + "\n")
    record = {
        "milestones": result.milestones,
        "stages": result.stages,
        "duration": result.duration,
        "transitions": [asdict(t) for t in result.transitions],
        "windows": [asdict(w) for w in result.windows],
        "requests": len(result.requests),
        "failedRequests": sum(not r.ok for r in result.requests),
        "failures": [f"{r.time:.1f}s {r.error}" for r in result.requests if not r.ok][:20],
        "registry": result.registry,
    }
    (out / "record.json").write_text(json.dumps(record, indent=1, default=str))
    return plot, out / "lineage.txt", lines


def _say_safely(print_line: Callable[[str], None]) -> Callable[[str], None]:
    """A terminal that went away (SIGHUP, a closed pipe) must not stop the teardown half way."""

    def say(text: str) -> None:
        try:
            print_line(text)
        except OSError:
            pass

    return say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeloop-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", default="demo", help="name of the demo's own local cluster")
    parser.add_argument("--output", default="demo-output", help="where the plot, lineage and logs go")
    parser.add_argument("--plain", action="store_true", help="log lines only, no live board")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    args = parser.parse_args(argv)
    config = replace(DemoConfig(), cluster=args.cluster, output=Path(args.output))
    live = sys.stdout.isatty() and not args.plain
    started = time.monotonic()
    view = LiveView(t0=started) if live else PlainView(t0=started)
    say = _say_safely(view.note)
    echo = _say_safely(print)

    # SIGINT too, explicitly: a shell that starts the demo in the background may have set it to be ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    stack = Stack(config, say, keep=args.keep)
    story: Story | None = None
    code, failure = 0, ""
    outputs = None
    try:
        if live:
            view.__enter__()
        stack.up()
        story = Story(stack, view, t0=started)
        story.run()
    except StageFailed as e:
        code, failure = 1, str(e)
    except (SetupError, StackError) as e:
        code, failure = 2, f"setup failed: {e}"
    except KeyboardInterrupt:
        code, failure = 130, "interrupted"
    except Exception as e:  # a bug: still stop everything, then say what it was
        code, failure = 1, f"internal error: {type(e).__name__}: {e}"
        traceback.print_exc()
    finally:
        # Teardown must finish: a second Ctrl-C (or a terminal that hung up) would leave processes behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        if live:
            try:
                view.__exit__()
            except Exception:
                pass
        if story is not None:
            try:
                outputs = write_outputs(story.result, config)
            except Exception as e:  # the outputs must never keep the cluster running
                echo(f"kubeloop-demo: could not write the outputs: {e}")
        say("stopping the operator and the cluster ...")
        stack.down()
    wall = time.monotonic() - started
    if outputs is not None:
        plot, lineage_file, lines = outputs
        if code == 0:
            echo("\nLineage (read back from the cluster):\n")
            echo("\n".join(lines))
        echo(f"\nplot: {plot}\nlineage: {lineage_file}\noperator log: {config.output / 'operator.log'}")
        echo(f"pod logs: {config.output / 'pods'}/<pod>/<container>.log")
    if code == 0 and story is not None:
        stages = ", ".join(f"{title.split(':')[0]} {seconds:.0f}s" for title, seconds in story.result.stages)
        echo(f"\nkubeloop-demo: the loop closed in {wall:.0f}s ({stages})")
    else:
        _say_safely(lambda text: print(text, file=sys.stderr))(
            f"\nkubeloop-demo: {failure} (after {wall:.0f}s)"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())

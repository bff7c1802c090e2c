"""`tagflow`: one root command, one group per model family, plus the registry commands.

    tagflow thesaurus fetch|build          the thesaurus dump and its concept table
    tagflow tagger synth|validate|train|evaluate|register|pairs|ipo|pref-evaluate|ipo-register|tag|backends
    tagflow topics fetch|build|validate|train|evaluate|register|predict
    tagflow edu fetch|data|validate|embed|train|evaluate|register|predict|annotate
    tagflow models | promote | rollback    any family's registered model (--model NAME)
    tagflow profile smoke|cpu|gpu          switch the parameter set in params.yaml
    tagflow mlflow-server                  MLflow UI + tracking server on 127.0.0.1
    tagflow deploy                         the scheduled retrain of every family, on a Prefect server

Each dvc.yaml stage runs one command, which runs one Prefect flow (flows/<family>.py) over one
family module. Problems the user can fix (tagflow.core.errors.TagflowError) print one line and
exit with status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys

import click

from ..core.errors import TagflowError


class Failed(Exception):
    def __init__(self, where: str, error: TagflowError):
        super().__init__(str(error))
        self.where, self.error = where, error


class Command(click.Command):
    """Turns a TagflowError into a one-line message naming the command that failed."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TagflowError as exc:
            raise Failed(ctx.command_path, exc) from exc


class Group(click.Group):
    command_class = Command
    group_class = type  # sub-groups are Groups too


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--params", default="params.yaml", show_default=True, help="parameters file")
@click.pass_context
def cli(ctx: click.Context, params: str) -> None:
    """tagflow: thesaurus-based document tagging and classification, from data to served model."""
    ctx.obj = {"params": params}


def _register_groups() -> None:
    from . import models, project, tagger, thesaurus  # noqa: F401 (each adds its commands)
    from . import topics  # noqa: F401
    from . import edu  # noqa: F401
    from . import deploy  # noqa: F401


def traceback_file(exc: BaseException, argv: list[str]) -> str:
    """Write the full traceback to logs/ (TAGFLOW_LOG_DIR) and return the file's path: the
    terminal gets one line, the log keeps everything needed to debug or report it."""
    import os
    import time
    import traceback
    from pathlib import Path

    folder = Path(os.environ.get("TAGFLOW_LOG_DIR") or "logs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"tagflow-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(f"tagflow {' '.join(argv)}\n\n" + "".join(traceback.format_exception(exc)))
        return str(path)
    except OSError:                      # read-only checkout: the terminal gets it after all
        traceback.print_exception(exc)
        return "(could not write a log file; traceback above)"


INTERRUPTED = "tagflow: interrupted; finished outputs are kept, rerun to resume"
_interrupted: list[bool] = []   # set by the first Ctrl-C


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C: raise KeyboardInterrupt as Python does (the stage closes its MLflow run FAILED on
    the way out), and make sure the process ends soon after. The terminal sends SIGINT to the
    whole process group, so Prefect's ephemeral API server stops too, and Prefect would then spend
    minutes retrying it (recording the crash, draining logs) and end in an unrelated connection
    error. The flow run it could not record is marked CRASHED by the next start (core.reaper)."""
    if not _interrupted:
        _interrupted.append(True)
        _exit_soon(130, grace=5.0)
    raise KeyboardInterrupt


def _exit_soon(code: int, grace: float) -> None:
    import os
    import threading

    def leave() -> None:
        print(INTERRUPTED, file=sys.stderr, flush=True)
        os._exit(code)

    timer = threading.Timer(grace, leave)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    """`tagflow ...`: the exit status (0 done, 1 bug, 2 user-fixable error, 130 interrupted)."""
    import signal
    import threading

    # Not where SIGINT is ignored (a background job) or where signals cannot be set (a thread).
    own = (threading.current_thread() is threading.main_thread()
           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if own:
        signal.signal(signal.SIGINT, _on_interrupt)
    try:
        return _main(argv)
    finally:
        if own:  # a caller in the same process (tests) gets Python's own Ctrl-C back
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _main(argv: list[str] | None) -> int:
    from ..core.contracts import ContractError
    from ..core.log import configure

    configure()
    _register_groups()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=argv, prog_name="tagflow", standalone_mode=False)
    except Failed as failed:
        if isinstance(failed.error, ContractError):  # the failed expectations were logged above
            report = getattr(failed.error.report, "html_path", None) or "the log above"
            print(f"{failed.where}: data contract violated; see {report}", file=sys.stderr)
        else:
            print(f"{failed.where}: error: {failed.error} (details: {traceback_file(failed, argv)})",
                  file=sys.stderr)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # a bug, or a failure nobody anticipated: one line, the rest logged
        if _interrupted:  # a consequence of Ctrl-C (e.g. Prefect's API server stopped with it)
            print(INTERRUPTED, file=sys.stderr)
            return 130
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"tagflow {' '.join(argv[:2])}: unexpected {type(exc).__name__}: {first} "
              f"(full traceback: {traceback_file(exc, argv)}; please report it)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

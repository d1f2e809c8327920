"""Thin typer layer: parse, call one library function, render, exit code.

Commands live in ``atrous_advisor.commands.<name>``; each module has ``register(app)``. Command modules must
not import torch at module level: ``rate``, ``ppm`` and ``lint`` run in hook environments without it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional, Sequence

import typer
from typer import _click as click
from typer.core import TyperArgument, TyperGroup

from atrous_advisor import __version__
from atrous_advisor.errors import AdvisorError

COMMAND_MODULES = ("rate", "ppm", "lint", "rule", "inspect", "erf", "validate", "synth", "plan")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _one_placeholder_style(params: Sequence[Any]) -> None:
    """One ``--help`` style for every command: flags show no placeholder, a value an UPPERCASE name.

    typer prints the Python type where a command gives no metavar (``<bool>`` on flags, ``<str>``,
    ``<list[Path]>``); commands name their values (CROP, PX, N) and everything else gets its own name here.
    """
    for param in params:
        if param is None:
            continue
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper()
            # the name says it; no "<str>" beside it (typer has no setting for this, so the instance's method)
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        elif param.metavar is None:
            param.metavar = "" if getattr(param, "is_flag", False) else param.name.upper().replace("_", "-")


def _out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError (CUDA) and its CPU allocator's RuntimeError."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
    )


class AdvisorGroup(TyperGroup):
    """Maps every failure to one line on stderr and an exit code: 2 for bad input, never a traceback."""

    def get_params(self, ctx: click.Context) -> list:
        params = super().get_params(ctx)
        _one_placeholder_style(params)
        return params

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _one_placeholder_style([*command.params, command.get_help_option(ctx)])
        return command

    def main(  # type: ignore[override]  # standalone_mode is always False: errors are mapped here
        self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None, **extra: Any
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        # --debug is accepted anywhere on the line, not only before the command name.
        debug = "--debug" in argv
        if debug:
            argv = ["--debug"] + [a for a in argv if a != "--debug"]
        prog = prog_name or "atrous-advisor"
        try:
            result = super().main(args=argv, prog_name=prog, standalone_mode=False, **extra)
        except typer.Exit as exc:
            sys.exit(exc.exit_code)
        except typer.TyperException as exc:  # usage errors: bad option, missing argument
            if debug:
                raise
            message = _one_line(exc.format_message())
            if not message:  # no arguments at all: the help was shown, nothing went wrong
                sys.exit(0)
            typer.echo(f"{prog}: error: {message}", err=True)
            sys.exit(2)
        except AdvisorError as exc:
            if debug:
                raise
            typer.echo(f"{prog}: error: {_one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            typer.echo(f"{prog}: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug, or an input no check anticipated: still one line, not a traceback
            if debug:
                raise
            if _out_of_memory(exc):  # a crop or batch too big for this machine is a bad input, not a bug
                typer.echo(f"{prog}: error: out of memory ({_one_line(str(exc))[:160] or type(exc).__name__}); "
                           "try a smaller --crop or --batch-size", err=True)
                sys.exit(2)
            typer.echo(
                f"{prog}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                "(rerun with --debug for the traceback and please report it)",
                err=True,
            )
            sys.exit(3)
        # A command returns its exit code (0 fine, 1 findings); help and no-op paths return None.
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=AdvisorGroup,
    name="atrous-advisor",
    help="Resolution-aware atrous rates and pooling scales for DeepLab- and PSPNet-style segmentation heads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"atrous-advisor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
    version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Resolution-aware atrous rates and pooling scales for DeepLab- and PSPNet-style segmentation heads."""


_registered: set[str] = set()


def load_commands(names: Optional[Sequence[str]] = None) -> typer.Typer:
    """Register the named command modules (all by default) on ``app``; each is imported once."""
    for name in COMMAND_MODULES if names is None else names:
        if name not in _registered:
            importlib.import_module(f"atrous_advisor.commands.{name}").register(app)
            _registered.add(name)
    return app


def main() -> None:
    # Import only the command being run: `rate` in a hook should not pay for lint's or inspect's imports.
    # Root options (--debug, --help) take no value, so the first bare word is the command name.
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    load_commands([command] if command in COMMAND_MODULES else None)
    app()


if __name__ == "__main__":
    main()

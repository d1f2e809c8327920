"""What the fuzz suite (tests/test_fuzz.py) and the longer run (benchmarks/fuzz.py) share: hostile values, config
generators and mutators, and the one check of the promise about bad input.

The promise (docs/reliability.md): whatever the input, the CLI exits 0, 1 or 2; on stderr at most a few lines,
never a traceback or "internal error"; with ``--json`` stdout is one JSON document; no file outside the
output it was asked to write is created, changed or removed; and it answers within seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "configs"
TINY_MODEL = ROOT / "examples" / "tiny_aspp.py"
MAX_STDERR_LINES = 4
SECONDS = 30  # per invocation: far above any real answer on a loaded 2-core machine, far below a hang

# --- hostile values -------------------------------------------------------------------------------------------

_UNICODE_DIGITS = ["²", "٣", "３", "๕", "½", "Ⅻ", "𝟠"]
_SPECIAL = ["", " ", "-", "+", "0", "-0", "00", "-1", "+8", "1e3", "8.0", ".5", "inf", "-inf", "nan", "NaN",
            "0x10", "1_000", "８", "8 16", "8,16", "8,,16", ",", "512x", "x512", "512x1024x3", "512×1024",
            "512X1024", "2**64", "10**400", str(2**63), str(2**64), str(10**20), "9" * 4301, "1" * 5000,
            "-" + "9" * 5000, "null", "[]", "{}", "\x00", "8\n16", "\u200b8", "８,１６"]


def number_text() -> st.SearchStrategy[str]:
    """Text a user might type where a number is expected: valid, edge, huge, Unicode, lists, junk."""
    small = st.integers(min_value=-5, max_value=2048).map(str)
    wide = st.integers(min_value=-(10**30), max_value=10**30).map(str)
    long_digits = st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n)
    unicode = st.sampled_from(_UNICODE_DIGITS).flatmap(lambda d: st.sampled_from([d, "5" + d, d * 3]))
    lists = st.lists(st.integers(min_value=-3, max_value=100), min_size=0, max_size=8).map(
        lambda xs: ",".join(map(str, xs)))
    long_list = st.integers(min_value=60, max_value=30_000).map(lambda n: ",".join(["6"] * n))
    pairs = st.tuples(st.integers(-2, 5000), st.integers(-2, 5000)).map(lambda p: f"{p[0]}x{p[1]}")
    floats = st.floats(allow_nan=True, allow_infinity=True).map(repr)
    junk = st.text(max_size=12)
    valid = st.integers(min_value=1, max_value=1024).map(str)
    return st.one_of(valid, valid, valid, small, small, wide, long_digits, unicode, lists, long_list, pairs, floats, junk,
                     st.sampled_from(_SPECIAL))


# Options that set how much work a valid run does: a valid draw is kept small (a long training run is a correct
# answer, not a hang); every hostile value is still tried.
WORK = {"--steps": (1, 2), "--repeats": (1, 2), "--images": (1, 2), "--batch-size": (1, 2), "--workers": (0, 1),
        "--crop": (33, 96), "--batch": (1, 2), "--crops": (64, 96), "--train": (1, 2), "--val": (1, 2), "--size": (32, 64), "--checkpoint-every": (0, 2)}


def option_text(option: str) -> st.SearchStrategy[str]:
    """A value for ``option``: hostile ones from :func:`number_text`, valid ones bounded for work options."""
    if option not in WORK:
        return number_text()
    low, high = WORK[option]
    return number_text().map(lambda text: _small_if_valid(text, low, high)) | st.integers(low, high).map(str)


def _small_if_valid(text: str, low: int, high: int) -> str:
    pair = re.fullmatch(r"\s*(\d{1,30})\s*[x×X,]\s*(\d{1,30})\s*", text, re.ASCII)
    if pair and max(int(pair[1]), int(pair[2])) > high:
        return f"{high}x{high}"  # a valid large crop pair: the run would only be longer
    stripped = text.strip()
    if stripped.isascii() and stripped.lstrip("+").isdigit() and len(stripped) < 30 and int(stripped) > high:
        return str(high)  # a valid large value: the run would only be longer
    return text


def json_text() -> st.SearchStrategy[str]:
    """``--kwargs`` values: objects, wrong types, deep nesting, huge integers, broken JSON."""
    leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=5))
    objects = st.dictionaries(st.sampled_from(["num_classes", "rates", "x"]), leaf, max_size=2).map(json.dumps)
    deep = st.integers(min_value=50, max_value=200_000).map(lambda n: "[" * n + "]" * n)
    unclosed = st.integers(min_value=50, max_value=200_000).map(lambda n: "[" * n)
    huge = st.integers(min_value=4000, max_value=6000).map(lambda n: '{"num_classes": ' + "9" * n + "}")
    return st.one_of(objects, deep, unclosed, huge, st.sampled_from(["", "[]", "1", "null", "{", '{"a":}', "{'a': 1}"]),
                     st.text(max_size=10))


# --- configs ---------------------------------------------------------------------------------------------------

_EXPRESSIONS = ["10**64**64", "9**9**9", "2**4096", "-(2**70)", "(1, 2, 3)[::0]", "(1, 2)[5]", "[0] * 10**9",
                "[[0] * 10000] * 10000", "'a' * 10**8", "1 / 0", "0 ** -1", "10.0 ** 400", "float('nan')",
                "__import__('os').system('false')", "open('/etc/passwd').read()", "x", "_base_.nothing",
                "(" * 60 + "1" + ")" * 60, "-" * 300 + "1", "lambda: 1", "{**1}", "dict(**[])", "{1: 2}[3]",
                "sum(range(10**12))"]


def config_value() -> st.SearchStrategy[str]:
    ints = st.integers(min_value=-(2**70), max_value=2**70).map(str)
    small = st.integers(min_value=-3, max_value=64).map(str)
    tuples = st.lists(small, min_size=0, max_size=5).map(lambda xs: "(" + ", ".join(xs) + ("," if len(xs) == 1 else "") + ")")
    pairs = st.tuples(st.integers(-2, 100_000), st.integers(-2, 100_000)).map(lambda p: f"({p[0]}, {p[1]})")
    return st.one_of(small, small, ints, tuples, tuples, pairs, st.sampled_from(_EXPRESSIONS),
                     st.sampled_from(["None", "True", "'512'", "[]", "{}", "dict()", "1.5", "-0.0"]))


@st.composite
def mmseg_config(draw) -> str:
    """A valid-looking MMSegmentation config whose values are drawn from :func:`config_value`."""
    v = lambda: draw(config_value())  # noqa: E731
    head = draw(st.sampled_from(["ASPPHead", "PSPHead", "FCNHead", "DepthwiseSeparableASPPHead", "UPerHead", "Nope"]))
    backbone = draw(st.sampled_from(["ResNetV1c", "UNet", "MobileNetV2", "Mystery"]))
    lines = [
        f"crop_size = {v()}",
        f"model = dict(type='EncoderDecoder', backbone=dict(type='{backbone}', strides={v()}, dilations={v()}, "
        f"out_indices={v()}, num_stages={v()}, downsamples={v()}), "
        f"decode_head=dict(type='{head}', in_index={v()}, dilations={v()}, pool_scales={v()}, dilation={v()}, "
        f"kernel_size={v()}))",
        "train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomCrop', crop_size=crop_size)]",
        "train_dataloader = dict(dataset=dict(type='X', pipeline=train_pipeline))",
    ]
    extra = draw(st.lists(st.sampled_from([
        f"x = {v()}", "x = 2**64\n" + "x = x * x\n" * 12, "model['decode_head']['dilations'] = (1, 2)",
        "crop_size = crop_size * 2", "del model", "if True:\n    crop_size = 1", "import os",
        "model = dict(decode_head=dict(_delete_=True, type='ASPPHead'))", f"_base_ = {v()}",
    ]), max_size=3))
    order = draw(st.permutations(lines + extra))
    return "\n".join(order) + "\n"


@st.composite
def detectron2_config(draw) -> str:
    v = lambda: draw(st.one_of(config_value().map(lambda s: s.replace("(", "[").replace(")", "]")),  # noqa: E731
                               st.sampled_from(["!!python/object/apply:eval ['1+1']", "*a", "&a 1", "'x'", "~",
                                                "9" * 5000, "[" * 200])))
    return (
        "MODEL:\n  META_ARCHITECTURE: SemanticSegmentor\n"
        f"  RESNETS:\n    RES5_DILATION: {v()}\n    RES4_DILATION: {v()}\n"
        f"  SEM_SEG_HEAD:\n    NAME: DeepLabV3Head\n    ASPP_DILATIONS: {v()}\n    COMMON_STRIDE: {v()}\n"
        f"INPUT:\n  CROP:\n    ENABLED: true\n    SIZE: {v()}\n"
    )


@st.composite
def paddleseg_config(draw) -> str:
    v = lambda: draw(st.one_of(config_value().map(lambda s: s.replace("(", "[").replace(")", "]")),  # noqa: E731
                               st.sampled_from(["9" * 5000, "[" * 200, "!!python/name:os.system", "~", "-1"])))
    model = draw(st.sampled_from(["DeepLabV3P", "DeepLabV3", "PSPNet", "Mystery"]))
    return (
        f"model:\n  type: {model}\n  backbone:\n    type: ResNet50_vd\n    output_stride: {v()}\n"
        f"    multi_grid: {v()}\n  aspp_ratios: {v()}\n  bin_sizes: {v()}\n"
        f"train_dataset:\n  type: Cityscapes\n  transforms:\n    - type: RandomPaddingCrop\n      crop_size: {v()}\n"
    )


def config_file(draw_text: str) -> str:
    """The file name a generated config is linted under."""
    if draw_text.startswith("MODEL:"):
        return "gen.yaml"
    if draw_text.startswith("model:\n  type:"):
        return "gen.yml"
    return "gen.py"


def any_config() -> st.SearchStrategy[str]:
    return st.one_of(mmseg_config(), detectron2_config(), paddleseg_config())


CONFIG_SUFFIXES = (".py", ".yaml", ".yml", ".json")


_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")


@st.composite
def mutated_fixture(draw, sources: Sequence[Path]) -> tuple[Path, str]:
    """A real fixture config with a few edits: numbers replaced, lines deleted or repeated, cut short, garbled."""
    path = draw(st.sampled_from(list(sources)))
    text = path.read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["number", "number", "number", "delete", "repeat", "truncate", "insert"]))
        lines = text.splitlines(keepends=True)
        if kind == "number":
            spots = list(_NUMBER.finditer(text))
            if spots:
                m = draw(st.sampled_from(spots))
                replacement = draw(config_value()) if path.suffix == ".py" else draw(st.one_of(
                    st.integers(-(10**9), 10**9).map(str), st.sampled_from(["-1", "0", "9" * 5000, "1e999", "x"])))
                text = text[: m.start()] + replacement + text[m.end():]
        elif kind in ("delete", "repeat") and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [] if kind == "delete" else [lines[i]] * draw(st.integers(2, 50))
            text = "".join(lines)
        elif kind == "truncate" and text:
            text = text[: draw(st.integers(0, len(text) - 1))]
        else:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(["(", ")", "[", "'", "\x00", "\t", "é", "{{", "}}", ":", "\n  -"])) + text[at:]
    return path, text


# --- the check -------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    args: list[str]
    exit_code: Optional[int]
    stderr: str
    stdout: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


class _TooSlow(BaseException):
    """Not an Exception, so the CLI's own handlers do not turn it into an "internal error" line."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """A hang fails the run instead of stalling it (SIGALRM: main thread only, which pytest is)."""

    def expire(signum, frame):
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(*roots: Path) -> dict[str, str]:
    """Path → content hash of every file (and symlink target) under ``roots``."""
    seen: dict[str, str] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    seen[path] = "link:" + os.readlink(path)
                    continue
                if not os.path.isfile(path):  # a FIFO would block the open
                    seen[path] = "special"
                    continue
                try:
                    with open(path, "rb") as handle:
                        seen[path] = hashlib.blake2b(handle.read(), digest_size=16).hexdigest()
                except OSError:
                    seen[path] = "unreadable"
    return seen


def invoke(runner, app, args: list[str], json_mode: bool = False, watch: Sequence[Path] = (),
           allowed: Sequence[Path] = (), seconds: float = SECONDS) -> Outcome:
    """Run the CLI in-process and list every way the outcome breaks the promise."""
    before = snapshot(*watch) if watch else {}
    start = time.perf_counter()
    try:
        with time_limit(seconds):
            result = runner.invoke(app, args)
    except _TooSlow:
        return Outcome(args, None, "", "", time.perf_counter() - start, [f"no answer within {seconds} s"])
    elapsed = time.perf_counter() - start
    out = Outcome(args, result.exit_code, result.stderr, result.stdout, elapsed)
    if isinstance(result.exception, _TooSlow) or "_TooSlow" in result.stderr:  # caught on its way out
        out.problems.append(f"no answer within {seconds} s")
        return out
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        out.problems.append(f"escaped exception {type(result.exception).__name__}: {result.exception}")
    if result.exit_code not in (0, 1, 2):
        out.problems.append(f"exit {result.exit_code}")
    text = result.stderr + result.stdout
    if "Traceback" in text:
        out.problems.append("traceback")
    if "internal error" in text:
        out.problems.append("internal error")
    lines = result.stderr.strip().splitlines()
    progress = result.exit_code == 0 and args[:1] in (["validate"], ["erf"])  # a run's progress log is not an error
    if len(lines) > MAX_STDERR_LINES and not progress:
        out.problems.append(f"{len(lines)} stderr lines")
    if json_mode and result.exit_code in (0, 1):
        try:
            json.loads(result.stdout)
        except ValueError:
            out.problems.append("stdout is not JSON")
    if watch:
        after = snapshot(*watch)
        allowed_text = [str(a) for a in allowed]
        changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
        outside = sorted(p for p in changed if not any(p == a or p.startswith(a + os.sep) or
                                                       os.path.basename(p).startswith("." + Path(a).stem)
                                                       for a in allowed_text))
        if outside:
            out.problems.append(f"touched {outside[:3]}")
    return out


def describe(outcome: Outcome) -> str:
    shown = [a if len(a) <= 40 else a[:37] + "…" for a in outcome.args]
    return f"{' '.join(shown)} → exit {outcome.exit_code}: {'; '.join(outcome.problems)} | {outcome.stderr.strip()[:300]!r}"

"""Every case of the bad-input corpus (tests/bad_inputs.py) through the real ``dcvae`` command line.

One parametrized test. Each case's files are generated into its own temporary folder, then the command
runs in-process through Typer's CliRunner with ``HF_HUB_OFFLINE=1`` (a handful run as real
``python -m dcvae_tools.cli`` processes instead, started together in the background, to show that no
traceback reaches a real stderr). A bad input must end with exit status 1 or 2, exactly one ``error:``
line naming the offending file, no traceback, and the case folder exactly as it was (no output, no
temporary file); a valid-but-unusual input must exit 0, write its outputs inside the output folder and
print the note that documents its conversion.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bad_inputs import Case, Invocation, corpus
from typer.testing import CliRunner

from dcvae_tools.cli import app

CASES = corpus()
MIN_CASES = 200
MAX_GROWTH_MB = 512  # peak memory a single case may add: an absurd config must be refused, not allocated
ENV = {"HF_HUB_OFFLINE": "1", "DCVAE_DEBUG": None, "COLUMNS": "200"}

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def _params() -> list:
    marks = {c.id: [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [] for c in CASES}
    return [pytest.param(c, id=c.id, marks=marks[c.id]) for c in CASES]


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> content hash (or "dir"/"link") of everything under ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass
class Outcome:
    """What a run gave: exit status, the two streams, and an exception that escaped the app (in-process)."""

    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None


@dataclass
class Prepared:
    root: Path
    invocation: Invocation
    before: dict[str, str]
    process: subprocess.Popen[str] | None = None


def _prepare(case: Case, root: Path) -> Prepared:
    invocation = case.build(root)
    return Prepared(root, invocation, _snapshot(root))


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DCVAE_DEBUG"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="200")
    return env


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Prepared]]:
    """The subprocess cases, all started at once when the first case runs; each test waits for its own."""
    started: dict[str, Prepared] = {}
    for case in CASES:
        if case.subprocess:
            prepared = _prepare(case, tmp_path_factory.mktemp("subprocess-case"))
            prepared.process = subprocess.Popen(
                [sys.executable, "-m", "dcvae_tools.cli", *prepared.invocation.args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_subprocess_env(),
            )
            started[case.id] = prepared
    yield started
    for prepared in started.values():
        assert prepared.process is not None
        if prepared.process.poll() is None:
            prepared.process.kill()
            prepared.process.communicate()


def _run_in_process(invocation: Invocation) -> Outcome:
    result = runner.invoke(app, invocation.args, env=ENV)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.stdout, result.stderr, escaped)


def _describe(case: Case, invocation: Invocation, outcome: Outcome) -> str:
    return (
        f"case {case.id}: dcvae {' '.join(invocation.args)}\nexit {outcome.code}\n"
        f"stdout:\n{outcome.stdout}\nstderr:\n{outcome.stderr}\nescaped: {outcome.exception!r}"
    )


def _check_bad(case: Case, prepared: Prepared, outcome: Outcome) -> None:
    invocation = prepared.invocation
    info = _describe(case, invocation, outcome)
    assert outcome.exception is None, info
    assert outcome.code in (1, 2), info
    assert "Traceback" not in outcome.stdout + outcome.stderr, info
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    others = [line for line in lines if not line.startswith(("error: ", "note: ", "warning: "))]
    assert len(errors) == 1 and not others and lines[-1] == errors[0], info
    for name in invocation.names:
        assert name in errors[0], f"the error line does not name {name!r}\n{info}"
    after = _snapshot(prepared.root)
    added = sorted(set(after) - set(prepared.before))
    changed = sorted(k for k in prepared.before if after.get(k) != prepared.before[k])
    assert not added and not changed, f"left behind {added}, changed {changed}\n{info}"


def _check_valid(case: Case, prepared: Prepared, outcome: Outcome) -> None:
    invocation = prepared.invocation
    info = _describe(case, invocation, outcome)
    assert outcome.exception is None, info
    assert outcome.code == 0, info
    assert "Traceback" not in outcome.stdout + outcome.stderr, info
    assert "error:" not in outcome.stderr, info
    for output in invocation.outputs:
        assert output.exists(), f"{output} was not written\n{info}"
        if output.is_dir():
            assert any(output.iterdir()), f"{output} is empty\n{info}"
    after = _snapshot(prepared.root)
    added = sorted(set(after) - set(prepared.before))
    outside = [k for k in added if not k.startswith("out/")]
    hidden = [k for k in added if any(part.startswith(".") for part in Path(k).parts)]
    changed = sorted(k for k in prepared.before if after.get(k) != prepared.before[k])
    assert not outside and not hidden and not changed, f"outside {outside}, hidden {hidden}, changed {changed}\n{info}"
    if invocation.note is not None:
        assert invocation.note in outcome.stderr, f"no note saying {invocation.note!r}\n{info}"


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, tmp_path: Path, background: dict[str, Prepared]) -> None:
    """Run one corpus case the way a user would and check how the command ends (see the module docstring)."""
    assert len(CASES) >= MIN_CASES, f"the corpus has {len(CASES)} cases; it should have at least {MIN_CASES}"
    if case.subprocess:
        prepared = background[case.id]
        assert prepared.process is not None
        stdout, stderr = prepared.process.communicate(timeout=300)
        outcome = Outcome(prepared.process.returncode, stdout, stderr)
    else:
        prepared = _prepare(case, tmp_path)
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcome = _run_in_process(prepared.invocation)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
        assert grown_mb < MAX_GROWTH_MB, f"case {case.id} raised the peak memory by {grown_mb:.0f} MB"
    (_check_valid if case.valid else _check_bad)(case, prepared, outcome)

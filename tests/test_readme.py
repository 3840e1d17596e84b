"""README's quick-start commands stay true: CI runs the exact test command the README gives."""

from __future__ import annotations

import re
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _section_commands(title: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", text, re.S | re.M)
    assert match, f"README.md has no '{title}' section"
    return re.findall(r"```(?:bash|sh)\n(.*?)```", match.group(1), re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    (command,) = [c.strip() for c in _section_commands("Run the tests")]
    ci = (REPO / ".ci" / "run").read_text()
    assert command in ci.splitlines(), "the README's test command and .ci/run differ"


def test_quick_start_uses_the_bundled_model_offline():
    commands = "\n".join(_section_commands("Quick start"))
    assert "HF_HUB_OFFLINE=1" in commands and "dcvae " in commands
    for path in re.findall(r"docs/examples/\S+\.png", commands):
        assert (REPO / path).is_file(), f"the quick start names {path}, which does not exist"


def test_the_python_example_runs_and_draws_a_sensible_image(tmp_path: Path, monkeypatch) -> None:
    """The README's Python block, run as written on the bundled model: every line works and the edited image is
    neither black nor white (an edit strength that sends it out of the data's range would show here)."""
    import os

    text = (REPO / "README.md").read_text()
    (block,) = re.findall(r"^## Python\n\n```python\n(.*?)```", text, re.S | re.M)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {}
    outputs = ("edited.png", "attrs.safetensors", "samples.png")  # written under tmp_path, not into the checkout
    for name in outputs:
        assert f'"{name}"' in block, f"the README's Python block no longer writes {name}"
        block = block.replace(f'"{name}"', repr(os.fspath(tmp_path / name)))
    exec(compile(block, "README.md", "exec"), namespace)
    edited = namespace["edited"]
    unedited = namespace["model"].decode(namespace["z"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(outputs)
    assert torch.equal(namespace["sleeves"].direction, namespace["model"].attribute_vector(
        ["docs/examples/fashion-mnist/coat.png"], ["docs/examples/fashion-mnist/tshirt.png"]).direction)
    assert len(namespace["z_all"]) == len(list((REPO / "docs/examples/fashion-mnist").glob("*.png")))
    assert -0.8 < float(edited.mean()) < 0.8, "the README's edit gives an almost black or white image"
    assert abs(float(edited.mean()) - float(unedited.mean())) < 0.5

"""The README and the book's pages say what the kit does: their Python examples run as written, their error
messages are the real ones, and the README stays a front door."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def test_the_readme_is_a_front_door():
    """At most 15 KB, with what a newcomer needs in the first minute, and a link to every page of the book."""
    text = README.read_text()
    assert len(text.encode()) <= 15 * 1024, f"the README is {len(text.encode())} bytes"
    sections = re.findall(r"(?m)^## (.+)$", text)
    assert sections == ["Two commands", "The notebooks", "Results on mnist-LT", "The methods", "The book"]
    for page in sorted(DOCS.glob("*.md")):
        if page.stem != "index":
            assert f"](docs/{page.name})" in text, f"the README does not link to docs/{page.name}"
    for link in re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)\)", text):
        assert (ROOT / link).exists(), link


def test_python_examples_run():
    """Every ``python`` block of the library page runs, in order, in one namespace."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "library.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("steps=300", "steps=30"), "docs/library.md", "exec"), namespace)
    assert 0 <= namespace["result"].final["accuracy"] <= 1
    assert namespace["result"].method == "my_fixmatch"


def test_the_error_messages_shown_are_the_real_ones(tmp_path, monkeypatch, capsys):
    """Each ``$ cissl-kit …`` line of the console block prints exactly the line below it."""
    from cissl_kit._entry import main  # what the cissl-kit command runs: the quick typo check, then the CLI

    block = re.search(r"```console\n(.*?)```", (DOCS / "errors.md").read_text(), flags=re.S).group(1)
    lines = block.strip().splitlines()
    pairs = [(lines[i][2:], lines[i + 1]) for i in range(0, len(lines), 2)]
    assert len(pairs) >= 6 and all(cmd.startswith("cissl-kit ") for cmd, _ in pairs)
    monkeypatch.chdir(tmp_path)
    for command, expected in pairs:
        code = main(command.split()[1:] + ["--no-progress"])
        err = capsys.readouterr().err.strip()
        assert err == expected, f"{command}: docs/errors.md says\n{expected}\nbut it prints\n{err}"
        assert code == (1 if "non-finite" in expected else 2)


def test_the_book_says_what_an_interrupt_does_in_a_notebook():
    import inspect

    from cissl_kit import engine, registry

    section = (DOCS / "checkpoints.md").read_text()
    paragraph = " ".join(section[section.index("In a notebook"):].split())
    # the cell stops (no later fit starts), and the names it gives for the partial result exist
    assert "stops the whole cell" in paragraph and "no later `.fit()` in that cell starts" in paragraph
    assert "returns the result so far" not in section
    assert callable(engine.last_interrupted) and issubclass(engine.TrainingInterrupted, KeyboardInterrupt)
    assert "keep_partial" in inspect.signature(registry.train).parameters
    assert "keep_partial" in inspect.signature(engine.Trainer.fit).parameters

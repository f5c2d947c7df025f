"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace("steps=300", "steps=30"), str(README), "exec"), namespace)
    assert 0 <= namespace["result"].final["accuracy"] <= 1
    assert namespace["result"].method == "my_fixmatch"


def test_readme_error_messages_are_the_real_ones(tmp_path, monkeypatch, capsys):
    """Each ``$ cissl-kit …`` line of the console block prints exactly the line below it."""
    from cissl_kit._entry import main  # what the cissl-kit command runs: the quick typo check, then the CLI

    block = re.search(r"## When something is wrong.*?```console\n(.*?)```", README.read_text(), flags=re.S).group(1)
    lines = block.strip().splitlines()
    pairs = [(lines[i][2:], lines[i + 1]) for i in range(0, len(lines), 2)]
    assert len(pairs) >= 6 and all(cmd.startswith("cissl-kit ") for cmd, _ in pairs)
    monkeypatch.chdir(tmp_path)
    for command, expected in pairs:
        code = main(command.split()[1:] + ["--no-progress"])
        err = capsys.readouterr().err.strip()
        assert err == expected, f"{command}: the README says\n{expected}\nbut it prints\n{err}"
        assert code == (1 if "non-finite" in expected else 2)


def test_readme_says_what_an_interrupt_does_in_a_notebook():
    import inspect

    from cissl_kit import engine, registry

    section = re.search(r"## Checkpoints and resuming(.*?)\n## ", README.read_text(), flags=re.S).group(1)
    paragraph = " ".join(section[section.index("In a notebook"):].split())
    # the cell stops (no later fit starts), and the names it gives for the partial result exist
    assert "stops the whole cell" in paragraph and "no later `.fit()` in that cell starts" in paragraph
    assert "returns the result so far" not in section
    assert callable(engine.last_interrupted) and issubclass(engine.TrainingInterrupted, KeyboardInterrupt)
    assert "keep_partial" in inspect.signature(registry.train).parameters
    assert "keep_partial" in inspect.signature(engine.Trainer.fit).parameters

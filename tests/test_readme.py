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
    from cissl_kit.cli import main

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

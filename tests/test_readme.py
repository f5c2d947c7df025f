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

"""The README's Python examples run as written."""
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    ns: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), ns)
    assert ns["trace"][("out", "r")].shape == (50, 3)
    assert ns["pc"].population("error0").n == 10
    assert ns["rec"][("E", "v")].shape == (1000, 3) and len(ns["rec"][("E", "spikes")])
    assert len(ns["i"]) == len(ns["delays"]) > 0
    assert ns["latent"].shape == (100, 2) and ns["reconstruction"].shape == (100, 64)

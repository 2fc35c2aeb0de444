"""The documentation site builds without warnings: `mkdocs build --strict` (skipped when mkdocs is not installed;
install it with `pip install -e ".[docs]"`).

Strict mode fails on broken links between pages, nav entries without a file, and API-reference entries
(mkdocstrings) that do not resolve, so renaming a public function or a page without updating the docs fails here.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

needs_mkdocs = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")),
    reason="mkdocs, mkdocs-material and mkdocstrings[python] are not installed (the `docs` extra)")


@needs_mkdocs
def test_mkdocs_build_strict(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "site" / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    import diffprog
    missing = [name for name in diffprog.__all__ if name not in api]
    assert not missing, f"public names missing from the API reference: {missing}"
    # mkdocstrings formats signatures with ruff or black (the docs extra has ruff); without one, a signature is one
    # line that runs off the page.
    import html
    import re
    signatures = [html.unescape(re.sub(r"<[^>]+>", "", block))
                  for block in re.findall(r'<div class="doc-signature highlight"><pre>(.*?)</pre>', api, re.S)]
    assert signatures, "no signatures found in the API reference"
    long = [line for text in signatures for line in text.splitlines() if len(line) > 100]
    assert not long, f"signatures not formatted (is ruff installed?): {long[:3]}"


def test_every_public_name_has_a_reference_entry():
    """docs/api.md names every entry of diffprog.__all__ (by a mkdocstrings directive or a section of its own)."""
    import diffprog
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [name for name in diffprog.__all__ if f"::: diffprog.{name}" not in text and f"`{name}`" not in text]
    assert not missing, missing


def test_diagnostics_page_is_the_generated_one():
    """The site includes docs/diagnostics.md, which is generated from the catalogue `diffprog explain` uses; the
    nav must point at that file (never a second copy)."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "diagnostics.md" in config
    assert not any(p.name != "diagnostics.md" and "DP201" in p.read_text(encoding="utf-8")
                   and "## DP201" in p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    from diffprog.cli.catalogue import markdown
    assert (ROOT / "docs" / "diagnostics.md").read_text(encoding="utf-8") == markdown()


def test_custom_types_examples_run(tmp_path):
    """docs/custom_types.md's examples, every ```python block in order as one file, and the values it states."""
    import re
    import subprocess

    text = (ROOT / "docs" / "custom_types.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    checks = """
import math as _m
_q = Quaternion(0.9, 0.1, -0.3, 0.2)
assert _m.isclose(misfit(_q, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0), 1.3025)
assert np.allclose(tangent_vector(_q, g), [2.62, 1.58, -1.54, -2.84])
assert dp.tangent_type(Particles).__name__ == "ParticlesTangent" and dp.tangent_type(Quaternion) is Quaternion
_t = dp.grad(energy)(p)
assert np.allclose(_t.positions, [2 / 3, -4 / 3, 1 / 3]) and _m.isclose(_t.mass, 0.875)
assert repr(dp.grad(dist2)(Point(1.0, 2.0))) == "PointTangent(x=2.0, y=4.0)"
assert _m.isclose(q.w, _m.sqrt(0.5)) and _m.isclose(q.z, _m.sqrt(0.5)) and abs(q.x) + abs(q.y) < 1e-9
assert _m.isclose(dp.move(Direction(1.0, 0.0), Direction(0.0, 1.0)).y, _m.sqrt(0.5))
assert dp.grad(model)(0.0) == 3.0  # compiled with the rule, compiled again once it was removed
def _fresh(x):
    return softplus(3.0 * x)
assert dp.grad(_fresh)(0.0) == 3.0  # the rule was removed: a subgradient from abs and max
print("checked")
"""
    path = tmp_path / "custom_types_examples.py"
    path.write_text("\n\n".join(blocks) + checks)
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("checked")

"""bench/ stands alone: nothing from tests/, no module hiding a real one, no sys.path surgery.

A bench script runs by path (``python bench/match.py``), so bench/ is first on sys.path and
every bench/*.py is importable by its bare name: a module named like one of the standard
library would stand in for it in everything the script imports, directly or not. The one
such name, bench/email.py (the scale issue's name for the email bench), hands the import
over to the real package, and a test below checks that it does. With nothing imported from
tests/ (which is not installed), a script needs no sys.path changes: ``bot`` and
``handlers`` come from the editable install, its siblings from bench/. The other direction
is allowed: tests import the shared sample data from bench/_corpus.py and
bench/_messages.py.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
MODULES = sorted(p for p in BENCH.glob("*.py") if p.name != "__init__.py")
HANDS_OVER = {"email"}  # named like the standard library's, and loads it in its place


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported(tree: ast.Module) -> set[str]:
    """Every absolute module name the file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _shadowed(name: str) -> str | None:
    """What a bench module called ``name`` would hide when bench/ is first on sys.path."""
    if name in sys.stdlib_module_names:
        return f"the standard library's {name!r}"
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    where = spec.origin or ", ".join(spec.submodule_search_locations or ())
    if where and Path(where).resolve().parent == BENCH:
        return None  # bench/ itself on sys.path: found the bench module, not another
    return f"the module at {where}"


def test_bench_modules_are_found() -> None:
    # Guards the parametrised tests below against passing over an empty list.
    assert len(MODULES) >= 4, f"expected the bench scripts in {BENCH}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bench_imports_nothing_from_tests(path: Path) -> None:
    from_tests = sorted(n for n in _imported(_tree(path)) if n.split(".")[0] == "tests")
    assert not from_tests, (
        f"bench/{path.name} imports {from_tests}; bench/ must run without tests/. "
        "Move what both need into bench/ (tests may import it from there)."
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bench_module_name_shadows_nothing(path: Path) -> None:
    hidden = None if path.stem in HANDS_OVER else _shadowed(path.stem)
    assert hidden is None, (
        f"bench/{path.name} hides {hidden} from every bench script run by path; rename it"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bench_leaves_sys_path_alone(path: Path) -> None:
    touches = sorted(
        {
            node.lineno
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        }
    )
    assert not touches, f"bench/{path.name} uses sys.path (lines {touches}); it need not"


def test_bench_email_hands_the_import_over_to_the_standard_library() -> None:
    # As a script in bench/ sees it: bench/ first on the import path.
    probe = (
        "import email.message, email.policy; "
        "msg = email.message.EmailMessage(policy=email.policy.SMTP); msg['To'] = 'a@b.example'; "
        "print(email.__file__); print(email.message.__file__); print(msg['To'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCH)!r}); {probe}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    stdlib = Path(sysconfig.get_path("stdlib")) / "email"
    assert [Path(out[0]).parent, Path(out[1]).parent] == [stdlib, stdlib]
    assert out[2] == "a@b.example"


def test_bench_email_runs_the_email_bench() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "email.py"), "--n", "5", "--json"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n"] == 5
    assert report["sink_received"] > 0
    assert {"render_ms_per_digest", "vs_bare_1_conn"} <= set(report["targets"])

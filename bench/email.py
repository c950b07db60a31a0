"""``python bench/email.py [--n 1000] [--repeat 3] [--json]``: the email bench, under the
name the scale issue gives it. The bench itself is bench/email_send.py (see there).

A script runs with its own folder first on the import path, so every script in bench/
that imports the standard library's ``email`` (aiosmtplib does, and so does aiohttp)
finds this file first. Imported under that name, it hands over to the real package: it
loads the standard library's ``email`` in its own place in ``sys.modules``, which is what
the import statement then returns, and ``email.message`` and the rest load from there.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path

if __name__ == "email":
    _real = Path(sysconfig.get_path("stdlib")) / "email"
    _spec = importlib.util.spec_from_file_location(
        "email", _real / "__init__.py", submodule_search_locations=[str(_real)]
    )
    if _spec is None or _spec.loader is None:  # pragma: no cover - a Python without email
        raise ImportError(f"the standard library's email package is not at {_real}")
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["email"] = _module
    _spec.loader.exec_module(_module)
elif __name__ == "__main__":
    import email_send

    raise SystemExit(email_send.main())

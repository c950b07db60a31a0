"""The README's offline loop, word for word: it must end with an alert in data/outbox/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def offline_loop() -> str:
    """The first ``sh`` block after "No network?" in the README."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    after = readme[readme.index("No network?") :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match, "the README lost its offline loop"
    return match.group(1)


def _body(mail: Message) -> str:
    parts = mail.walk() if mail.is_multipart() else [mail]
    texts = [p.get_payload(decode=True) for p in parts if p.get_content_type() == "text/plain"]
    return "\n".join(t.decode() for t in texts if isinstance(t, bytes))


def test_offline_loop_ends_with_an_alert(tmp_path: Path) -> None:
    trial = tmp_path / "clone"
    shutil.copytree(PROJECT_ROOT / "examples", trial / "examples")
    # `paperbell` as installed: this interpreter running this source tree.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "paperbell"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bot "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBELL_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(PROJECT_ROOT))
    result = subprocess.run(
        ["bash", "-e", "-c", offline_loop()],
        cwd=trial,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    alerts = sorted((trial / "data" / "outbox").glob("alert*.eml"))
    assert alerts, f"no alert in data/outbox/: {result.stderr}"
    mail = message_from_bytes(alerts[0].read_bytes())
    assert mail["To"] == "you@example.org"
    body = _body(mail)
    assert "4 new papers for your subscriptions" in body  # 3 say LLM, 1 "state space"
    assert "MUSCLE: A Model Update Strategy" in body

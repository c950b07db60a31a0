"""deploy/: the systemd unit, the Dockerfile, compose.yaml and .dockerignore, checked.

No Docker daemon is assumed where tests run, so the Dockerfile, the build context and the
compose file are checked by reading them; the unit also goes through
``systemd-analyze verify`` when that tool is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.exitcodes import ExitCode
from bot.settings import Settings, WebSettings
from bot.settings_doc import iter_settings
from tests.support_deploy import (
    IgnoreRules,
    as_strings,
    block_yaml,
    dockerfile_instructions,
    ignore_rules,
    in_build_context,
    seconds,
    unit_directives,
)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "paperbell.service"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
EXEC_START = "/opt/paperbell/venv/bin/paperbell"
GRACE = float(Settings.model_fields["shutdown_grace"].default)

Stage = list[tuple[str, str]]  # the Dockerfile instructions of one build stage


# --- systemd ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> dict[str, list[str]]:
    return unit_directives(UNIT.read_text(encoding="utf-8"))["Service"]


REQUIRED = {
    "Type": "exec",
    "ExecStart": f"{EXEC_START} run",
    "StateDirectory": "paperbell",
    "WorkingDirectory": "/var/lib/paperbell",
    "Environment": "PAPERBELL_DATA_DIR=/var/lib/paperbell",
    "EnvironmentFile": "-/etc/paperbell/paperbell.env",
    "Restart": "on-failure",
    "KillSignal": "SIGTERM",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


@pytest.mark.parametrize(("name", "value"), REQUIRED.items())
def test_unit_sets_directive(service: dict[str, list[str]], name: str, value: str) -> None:
    assert service.get(name) == [value], f"{name}={value} expected, found {service.get(name)}"


def test_unit_runs_as_an_unprivileged_user(service: dict[str, list[str]]) -> None:
    dynamic = service.get("DynamicUser") == ["yes"]
    user = service.get("User", ["root"])[-1]
    assert dynamic or user not in ("root", "0"), "run as a dedicated user or DynamicUser"


def test_unit_filters_system_calls(service: dict[str, list[str]]) -> None:
    assert "@system-service" in service.get("SystemCallFilter", [])


def test_unit_does_not_restart_after_a_configuration_error(
    service: dict[str, list[str]],
) -> None:
    codes = " ".join(service.get("RestartPreventExitStatus", [])).split()
    assert str(int(ExitCode.CONFIG)) in codes


def test_unit_stop_timeout_outlasts_the_shutdown_grace(service: dict[str, list[str]]) -> None:
    timeout = seconds(service["TimeoutStopSec"][-1])
    # After the grace, channels still close (SMTP QUIT, Discord logout): leave them room.
    assert timeout >= GRACE + 10, f"TimeoutStopSec={timeout}s vs a {GRACE}s grace"


def systemd_complaints(unit: Path) -> list[str]:
    """What ``systemd-analyze verify`` says about this unit (it exits 0 on mere warnings)."""
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = (result.stdout + result.stderr).splitlines()
    said = [line for line in lines if unit.name in line or str(unit.parent) in line]
    if result.returncode != 0:
        said.append(f"exit status {result.returncode}: {' | '.join(lines)}")
    return said


def unit_with_fake_binary(tmp_path: Path, text: str) -> Path:
    """The unit with ExecStart on an executable that exists (verify checks it does)."""
    fake = tmp_path / "bin" / "paperbell"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    fake.chmod(0o755)
    assert text.count(EXEC_START) == 1
    unit = tmp_path / "paperbell.service"
    unit.write_text(text.replace(EXEC_START, str(fake)), encoding="utf-8")
    return unit


NO_PYYAML = "PyYAML is not installed (pip package PyYAML, in .[test])"
needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (apt-get install systemd), unit not verified",
)


@needs_systemd
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = unit_with_fake_binary(tmp_path, UNIT.read_text(encoding="utf-8"))
    assert systemd_complaints(unit) == []


@needs_systemd
def test_systemd_analyze_check_reports_a_bad_directive(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8").replace("[Service]\n", "[Service]\nNoSuchThing=1\n")
    complaints = systemd_complaints(unit_with_fake_binary(tmp_path, text))
    assert any("NoSuchThing" in line for line in complaints), complaints


# --- Dockerfile and build context -------------------------------------------------------


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    """Instructions per stage; the first list holds the ARGs before the first FROM."""
    result: list[Stage] = [[]]
    for keyword, args in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, args))
    assert len(result) > 1, "no FROM in the Dockerfile"
    return result


def last(stage: Stage, keyword: str) -> str:
    values = [args for kw, args in stage if kw == keyword]
    assert values, f"no {keyword} in the runtime stage"
    return values[-1]


def env_of(stage: Stage) -> dict[str, str]:
    pairs = [p for kw, args in stage if kw == "ENV" for p in shlex.split(args)]
    assert all("=" in p for p in pairs), f"use ENV NAME=value: {pairs}"
    return dict(p.split("=", 1) for p in pairs)


def test_every_stage_starts_from_the_same_slim_python(stages: list[Stage]) -> None:
    args = dict(a.split("=", 1) for kw, a in stages[0] if kw == "ARG" and "=" in a)
    images = set()
    for stage in stages[1:]:
        image = stage[0][1].split()[0]
        images.add(re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], image))
    (image,) = images  # one base: the venv copied across links to the base's python
    assert re.fullmatch(r"python:3\.(1[1-9])-slim(-\w+)?", image), image


def test_runtime_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    user = last(stages[-1], "USER").split(":")[0]
    assert user not in ("root", "0"), user


def test_entrypoint_and_cmd_are_exec_form(stages: list[Stage]) -> None:
    # Exec form: no shell as PID 1 in between, so SIGTERM reaches paperbell itself.
    assert json.loads(last(stages[-1], "ENTRYPOINT")) == ["paperbell"]
    assert json.loads(last(stages[-1], "CMD")) == ["run"]
    assert last(stages[-1], "STOPSIGNAL") == "SIGTERM"


def test_healthcheck_runs_paperbell_check(stages: list[Stage]) -> None:
    options, _, command = last(stages[-1], "HEALTHCHECK").partition("CMD ")
    assert json.loads(command) == ["paperbell", "check"]
    assert "--start-period=" in options, "the first cycle needs time before it is judged"


def test_data_lives_on_a_volume(stages: list[Stage]) -> None:
    env = env_of(stages[-1])
    assert env["PAPERBELL_DATA_DIR"] in json.loads(last(stages[-1], "VOLUME"))


def test_web_endpoint_is_reachable_from_outside_the_container(stages: list[Stage]) -> None:
    env = env_of(stages[-1])
    assert env["PAPERBELL_WEB__HOST"] == "0.0.0.0"
    assert env["PYTHONUNBUFFERED"] == "1"
    port = env.get("PAPERBELL_WEB__PORT", str(WebSettings.model_fields["port"].default))
    assert port in last(stages[-1], "EXPOSE").split()


@pytest.fixture(scope="module")
def rules() -> IgnoreRules:
    return ignore_rules(DOCKERIGNORE.read_text(encoding="utf-8"))


def copied_sources(stages: list[Stage]) -> list[str]:
    sources = []
    for stage in stages[1:]:
        for keyword, args in stage:
            words = args.split()
            if keyword in ("COPY", "ADD") and not any(w.startswith("--from") for w in words):
                sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def test_build_copies_what_the_package_is_built_from(stages: list[Stage]) -> None:
    sources = {s.strip("/") for s in copied_sources(stages)}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {p.rstrip("*") for p in packages}
    assert needed <= sources, f"not copied into the image: {needed - sources}"


def test_build_context_holds_every_copied_file(stages: list[Stage], rules: IgnoreRules) -> None:
    for source in copied_sources(stages):
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert in_build_context(rel, rules), f"{rel} is excluded by .dockerignore"


LEFT_OUT = [
    ".env",
    ".git/config",
    "data/paperbell.db",
    ".venv/bin/python",
    "tests/test_cli.py",
    "bot/__pycache__/cli.cpython-311.pyc",
    "handlers/web/__pycache__/app.cpython-311.pyc",
]


@pytest.mark.parametrize("path", LEFT_OUT)
def test_build_context_leaves_out(path: str, rules: IgnoreRules) -> None:
    assert not in_build_context(path, rules)


# --- compose -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> Any:
    return block_yaml(COMPOSE.read_text(encoding="utf-8"))


def test_compose_runs_paperbell_and_a_mail_catcher(compose: Any) -> None:
    assert set(compose["services"]) == {"paperbell", "mailpit"}
    assert compose["services"]["mailpit"]["image"].startswith("axllent/mailpit:")
    build = compose["services"]["paperbell"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_gives_the_grace_time_to_finish(compose: Any) -> None:
    assert seconds(compose["services"]["paperbell"]["stop_grace_period"]) > GRACE


def test_compose_sends_mail_to_the_catcher(compose: Any) -> None:
    env = compose["services"]["paperbell"]["environment"]
    assert env["PAPERBELL_SMTP__HOST"] == "mailpit"
    assert env["PAPERBELL_SMTP__PORT"] == "1025"
    assert env["PAPERBELL_SMTP__SECURITY"] == "none"
    assert env["PAPERBELL_PUBLIC_URL"] == "http://localhost:8080"
    assert env["PAPERBELL_WEB__HOST"] == "0.0.0.0"


def test_compose_keeps_data_on_a_named_volume(compose: Any) -> None:
    paperbell = compose["services"]["paperbell"]
    mounts = {}
    for volume in paperbell["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert mounts[paperbell["environment"]["PAPERBELL_DATA_DIR"]] in compose["volumes"]
    assert paperbell["env_file"] == [{"path": "../.env", "required": "false"}]


def test_compose_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml", reason=NO_PYYAML)
    text = COMPOSE.read_text(encoding="utf-8")
    assert block_yaml(text) == as_strings(yaml.safe_load(text))


# --- documentation and names -------------------------------------------------------------


@pytest.mark.parametrize("path", [UNIT, DOCKERFILE, COMPOSE, DEPLOY_DOC], ids=lambda p: p.name)
def test_every_setting_named_exists(path: Path) -> None:
    known = {s.env for s in iter_settings()}
    for name in set(re.findall(r"PAPERBELL_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8"))):
        group = any(k.startswith(f"{name}__") for k in known)  # PAPERBELL_SMTP__*
        assert name in known or group, f"{path.name} names {name}, which is no setting"


def test_deploy_doc_invite_url_asks_for_the_documented_permissions() -> None:
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    (url,) = re.findall(r"https://discord\.com/oauth2/authorize\?\S+", doc)
    assert "scope=bot+applications.commands" in url
    wanted = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
    assert f"permissions={wanted.value}" in url


def test_deploy_doc_matches_the_unit() -> None:
    doc = DEPLOY_DOC.read_text(encoding="utf-8")
    for fact in (EXEC_START, "/etc/paperbell/paperbell.env", "/var/lib/paperbell"):
        assert fact in doc, f"docs/deploy.md does not mention {fact}"


# --- compose.postgres.yaml ----------------------------------------------------------------

COMPOSE_PG = DEPLOY / "compose.postgres.yaml"


@pytest.fixture(scope="module")
def compose_pg() -> Any:
    return block_yaml(COMPOSE_PG.read_text(encoding="utf-8"))


def test_compose_postgres_runs_two_processes_on_one_database(compose_pg: Any) -> None:
    services = compose_pg["services"]
    assert set(services) == {"postgres", "paperbell-a", "paperbell-b", "mailpit"}
    urls = {
        services[n]["environment"]["PAPERBELL_DATABASE_URL"] for n in ("paperbell-a", "paperbell-b")
    }
    assert urls == {"postgresql://paperbell:paperbell@postgres:5432/paperbell"}
    for name in ("paperbell-a", "paperbell-b"):
        service = services[name]
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert seconds(service["stop_grace_period"]) > GRACE
        build = service["build"]
        assert (COMPOSE_PG.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_postgres_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml", reason=NO_PYYAML)
    text = COMPOSE_PG.read_text(encoding="utf-8")
    assert block_yaml(text) == as_strings(yaml.safe_load(text))

"""Every setting as an environment variable, for ``.env.example`` and the README table.

``python -m bot.settings_doc > .env.example`` regenerates the file; a test keeps it in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from bot.settings import ENV_PREFIX, Settings


@dataclass(frozen=True)
class SettingDoc:
    env: str
    default: str
    description: str
    secret: bool


def iter_settings() -> list[SettingDoc]:
    return list(_walk(Settings.model_fields, ENV_PREFIX))


def _walk(fields: dict[str, FieldInfo], prefix: str) -> Any:
    for name, info in fields.items():
        env = prefix + name.upper()
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation.model_fields, env + "__")
            continue
        yield SettingDoc(env, _default(info), info.description or "", _is_secret(annotation))


def _is_secret(annotation: Any) -> bool:
    return SecretStr in (annotation, *getattr(annotation, "__args__", ()))


def _default(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "example" in extra:
        return str(extra["example"])
    value = info.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def render_env_example() -> str:
    lines = [
        "# paperbell configuration. Every variable is optional; the values shown are the",
        "# defaults. Copy to .env (read from the working directory) or set in the environment.",
        "# Regenerate with: python -m bot.settings_doc > .env.example",
    ]
    for doc in iter_settings():
        lines += ["", f"# {doc.description}" + (" (secret)" if doc.secret else "")]
        lines.append(f"# {doc.env}={doc.default}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_env_example(), end="")

"""The Dockerfile read as BuildKit reads it for one set of build arguments: its stages, each instruction with
the variables in force there. The image check reads the runtime stage's environment from it, and
tests/deploy/test_images.py replays the build stage with it."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The instructions BuildKit substitutes variables in (RUN's are the shell's; CMD and HEALTHCHECK are kept as written).
_EXPANDED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"})
# $NAME, ${NAME}, ${NAME:-default}, ${NAME:+alternative}: the forms BuildKit substitutes (and more than this recipe uses).
_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Step:
    """One instruction: its keyword, its arguments (variables substituted, except RUN's, which the shell
    expands), and the variables (build arguments and ENV) in force when it runs."""

    keyword: str
    arguments: str
    variables: dict[str, str]


@dataclass
class Stage:
    name: str
    # What it starts from: an image, or an earlier stage's name (build arguments substituted).
    base: str = ""
    steps: list[Step] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment the stage's ENV instructions leave in the image."""
        out: dict[str, str] = {}
        for step in self.steps:
            if step.keyword == "ENV":
                out.update(env_pairs(step.arguments))
        return out


def expand(text: str, variables: Mapping[str, str]) -> str:
    """BuildKit's substitution of build arguments and ENV values; an unset variable (the base image's too) is empty."""

    def one(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name, "")
        if match.group("op") == "-":
            return value or expand(match.group("word"), variables)
        if match.group("op") == "+":
            return expand(match.group("word"), variables) if value else ""
        return value

    return _VARIABLE.sub(one, text)


def env_pairs(arguments: str) -> dict[str, str]:
    """`A=1 B="two words"` as {name: value}."""
    return dict(pair.split("=", 1) for pair in shlex.split(arguments))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(keyword, arguments) of every instruction, comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        keyword, _, rest = (pending + raw).strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        pending = ""
    return out


def stages(path: Path, build_args: Mapping[str, str]) -> dict[str, Stage]:
    """Every stage by name (`FROM ... AS name`), resolved for these build arguments."""
    global_args: dict[str, str] = {}
    found: dict[str, Stage] = {}
    stage: Stage | None = None
    variables: dict[str, str] = {}
    for keyword, arguments in instructions(path):
        if keyword == "FROM":
            name = arguments.split()[-1] if " AS " in arguments.upper() else str(len(found))
            stage = found[name] = Stage(name, expand(arguments.split()[0], global_args))
            variables = {}
            continue
        if keyword == "ARG":
            name, has_default, default = arguments.partition("=")
            scope = global_args if stage is None else variables
            if name in build_args:
                scope[name] = build_args[name]
            elif has_default:
                scope[name] = expand(default, scope)
            else:
                scope[name] = global_args.get(name, "")
        elif stage is None:
            raise ValueError(f"{path}: {keyword} before the first FROM")
        elif keyword == "ENV":
            pairs = {expand(k, variables): expand(v, variables) for k, v in env_pairs(arguments).items()}
            arguments = " ".join(shlex.quote(f"{k}={v}") for k, v in pairs.items())
            variables.update(pairs)
        elif keyword in _EXPANDED:
            arguments = expand(arguments, variables)
        if stage is not None:
            stage.steps.append(Step(keyword, arguments, dict(variables)))
    return found


def _pattern(text: str) -> re.Pattern[str]:
    """A .dockerignore or COPY pattern as a regex: `*`, `?` and `[...]` stay within one path segment, `**`
    spans any number."""
    out = ""
    for part in re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", text.strip("/")):
        if part.startswith("["):
            out += part
        elif part.startswith("**"):
            out += "(?:.*/)?" if part.endswith("/") else ".*"
        elif part == "*":
            out += "[^/]*"
        elif part == "?":
            out += "[^/]"
        else:
            out += re.escape(part)
    return re.compile(out)


def build_context(root: Path) -> list[str]:
    """The files `docker build` sends from root (paths relative to it), as its .dockerignore decides: the last
    pattern matching a file or one of its folders wins; `!` sends it after all."""
    lines = [line.strip() for line in (root / ".dockerignore").read_text().splitlines()]
    rules = [(_pattern(line.removeprefix("!")), line.startswith("!")) for line in lines if line and line[0] != "#"]
    # What each exception starts with before its first wildcard: a folder outside all of them is not walked.
    reopened = [re.split(r"[*?\[]", line[1:].strip("/"), maxsplit=1)[0] for line in lines if line.startswith("!")]

    def sent(relative: str) -> bool:
        parents = relative.split("/")
        prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
        keep = True
        for pattern, negated in rules:
            if any(pattern.fullmatch(prefix) for prefix in prefixes):
                keep = negated
        return keep

    files = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else f"{here}/"
        dirs[:] = [d for d in dirs if sent(prefix + d) or any(_within(f"{prefix}{d}/", r) for r in reopened)]
        files += [prefix + name for name in names if sent(prefix + name)]
    return sorted(files)


def _within(folder: str, literal: str) -> bool:
    """Whether a pattern starting with `literal` may name something inside `folder` (which ends in /)."""
    return f"{literal}/".startswith(folder) or folder.startswith(literal)


def matching(pattern: str, files: list[str]) -> list[str]:
    """The context files a COPY source names: the file itself, everything under a folder, or a pattern's matches
    (a folder a pattern matches: everything under it)."""
    return [f for f in files if named_by(pattern, f) is not None]


def named_by(pattern: str, file: str) -> str | None:
    """The path a COPY source names that holds `file`: the file itself, or the folder it is copied from."""
    regex = _pattern(pattern)
    parts = file.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if regex.fullmatch(prefix) or prefix == pattern.rstrip("/"):
            return prefix
    return None

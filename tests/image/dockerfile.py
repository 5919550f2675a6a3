"""The Dockerfile's stages and the build context that .dockerignore lets through, read as an image
builder reads them (used by the static tests and as the cache key of the built test image)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"

Rule = tuple[bool, re.Pattern[str], str]  # (re-includes, regex, pattern)


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())
    result: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            result.append(Stage(base.strip(), name.strip(), []))
        elif result:
            result[-1].instructions.append((instruction, args.strip()))
    return result


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match with ``**``) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[Rule]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((include, _pattern_regex(pattern), pattern))
    return rules


def excluded(relative: str, rules: list[Rule]) -> bool:
    """Whether the build context leaves ``relative`` out: the last rule matching it or a parent wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for include, regex, _ in rules:
        if any(regex.fullmatch(c) for c in candidates):
            verdict = not include
    return verdict


def context_files(root: Path = PROJECT_ROOT) -> Iterator[str]:
    """The files a build of ``root`` sends, as docker does after applying .dockerignore."""
    rules = dockerignore_rules(root / ".dockerignore")
    reincluded_roots = {pattern.split("/")[0] for include, _, pattern in rules if include}
    for directory, subdirs, files in os.walk(root):
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        subdirs[:] = [
            d
            for d in subdirs
            if not excluded(prefix + d, rules) or (prefix + d).split("/")[0] in reincluded_roots
        ]
        for name in files:
            if not excluded(prefix + name, rules):
                yield prefix + name


def digest(root: Path = PROJECT_ROOT, extra: Iterable[str | bytes] = ()) -> str:
    """A hash of everything a build of ``root`` depends on in the repository: the Dockerfile,
    .dockerignore and every file of the build context (names and contents), and ``extra``."""
    h = hashlib.sha256()
    for relative in ["Dockerfile", ".dockerignore", *sorted(context_files(root))]:
        h.update(relative.encode() + b"\0" + (root / relative).read_bytes() + b"\0")
    for item in extra:
        h.update((item.encode() if isinstance(item, str) else item) + b"\0")
    return h.hexdigest()

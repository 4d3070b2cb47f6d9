"""What a simulated container "prints" and how it exits: the documented kubesim convention.

No image is ever pulled or run. A container's behaviour is read from its `command` + `args`:

* `["sh", "-c", SCRIPT]` (also `bash`, `/bin/sh`, `/bin/bash`): SCRIPT is split on newlines, `;`
  and `&&` into simple commands; `echo WORDS` prints WORDS, `printf TEXT` prints TEXT, `sleep N` waits
  N real seconds before the next line, `exit N` ends with code N, `true`/`false` succeed/fail (and
  stop an `&&` chain); anything else prints nothing and succeeds.
* `["echo", ...]`, `["sleep", N]`, `["true"]`, `["false"]` directly work the same way.
* no command and no args: the container prints one line,
  `kubesim: container <name> started (image <image>)`.

Image tags change the outcome (see docs/kubesim.md): `:crashloop` exits 1 after its output every
time; `:fail-once` exits 1 in the first pod its owner creates.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"}


@dataclass
class Program:
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds after start, text)
    duration: float = 0.0
    exit_code: int = 0


def image_tag(image: str) -> str:
    tail = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return tail.split(":", 1)[1] if ":" in tail else "latest"


def _statements(script: str) -> list[tuple[str, str]]:
    """Split a script into (connector, command) pairs; connector is ';' or '&&'."""
    out: list[tuple[str, str]] = []
    for line in script.splitlines():
        connector = ";"
        for chunk in line.split(";"):
            parts = chunk.split("&&")
            for i, part in enumerate(parts):
                if part.strip():
                    out.append(("&&" if i > 0 else connector, part.strip()))
            connector = ";"
    return out


def _run_words(words: list[str], program: Program, clock: float) -> tuple[float, int | None, bool]:
    """Run one simple command; returns (new clock, exit code if it exits, succeeded)."""
    if not words:
        return clock, None, True
    name, rest = words[0].rsplit("/", 1)[-1], words[1:]
    if name == "echo":
        if rest and rest[0] == "-n":
            rest = rest[1:]
        program.lines.append((clock, " ".join(rest)))
    elif name == "printf" and rest:
        text = rest[0].replace("\\n", "\n") % tuple(rest[1:]) if "%" in rest[0] else rest[0].replace("\\n", "\n")
        for piece in text.rstrip("\n").split("\n"):
            program.lines.append((clock, piece))
    elif name == "sleep":
        with contextlib.suppress(ValueError):
            clock += float(rest[0]) if rest else 0.0
    elif name == "exit":
        try:
            return clock, int(rest[0]) if rest else 0, True
        except ValueError:
            return clock, 2, False
    elif name == "false":
        return clock, None, False
    return clock, None, True


def program_for(container: Obj) -> Program:
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    program = Program()
    if not argv:
        line = f"kubesim: container {container.get('name')} started (image {container.get('image')})"
        program.lines.append((0.0, line))
        return program
    if argv[0] in SHELLS and len(argv) >= 3 and argv[1] in ("-c", "-ec", "-ce"):
        statements = _statements(argv[2])
    else:
        statements = [(";", shlex.join(argv))]
    clock = 0.0
    last_ok = True
    for connector, text in statements:
        if connector == "&&" and not last_ok:
            continue
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        clock, code, last_ok = _run_words(words, program, clock)
        if code is not None:
            program.exit_code = code
            break
        program.exit_code = 0 if last_ok else 1
    program.duration = clock
    return program

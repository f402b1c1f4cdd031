"""The story's phases: their order (defined once, in PHASES) and which of them a run selects.

Pure code (no twin, no network): the CLI validates ``--only``/``--from``/``--until`` here before
anything starts. The twin is fresh on every run, so a selected phase brings the phases it stands
on (``REQUIRES``) into the run as prerequisites: ``--only patch`` provisions, bakes and deploys
first, because a patch run needs a fleet that serves.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The story, in order. Every other list of phases derives from this one.
PHASES: tuple[str, ...] = (
    "estate",
    "provision",
    "bake",
    "deploy",
    "move",
    "cutover",
    "patch",
    "restore_drill",
    "report",
)

#: What a phase stands on when the twin starts empty (direct needs; the closure is computed).
REQUIRES: dict[str, tuple[str, ...]] = {
    "estate": (),
    "provision": (),
    "bake": ("provision",),
    "deploy": ("bake",),
    "move": ("estate", "provision"),
    "cutover": ("move",),
    "patch": ("deploy",),
    "restore_drill": ("estate", "provision"),
    "report": (),
}


class SelectionError(ValueError):
    """A bad --only/--from/--until: the message names the problem and the valid phases."""


@dataclass(frozen=True)
class Plan:
    """The phases a run executes, in story order; ``prerequisites`` ran only because a selected phase needs them."""

    phases: tuple[str, ...]
    selected: tuple[str, ...]
    prerequisites: tuple[str, ...]

    def skipped(self) -> tuple[str, ...]:
        return tuple(p for p in PHASES if p not in self.phases)


def _name(value: str, option: str) -> str:
    name = value.strip().lower().replace("-", "_")
    if name not in PHASES:
        raise SelectionError(f"{option}: unknown phase {value.strip()!r}; the phases are {', '.join(PHASES)}")
    return name


def _closure(names: set[str]) -> set[str]:
    todo = list(names)
    out = set(names)
    while todo:
        for need in REQUIRES[todo.pop()]:
            if need not in out:
                out.add(need)
                todo.append(need)
    return out


def select(only: str | None = None, start: str | None = None, until: str | None = None) -> Plan:
    """The phases of a run for ``--only A[,B]``, ``--from A``, ``--until B`` (SelectionError on bad input)."""
    if only is not None and (start is not None or until is not None):
        raise SelectionError("--only cannot be combined with --from or --until")
    if only is not None:
        parts = [p for p in only.split(",") if p.strip()]
        if not parts:
            raise SelectionError(f"--only: no phase given; the phases are {', '.join(PHASES)}")
        chosen = {_name(p, "--only") for p in parts}
    else:
        first = PHASES.index(_name(start, "--from")) if start is not None else 0
        last = PHASES.index(_name(until, "--until")) if until is not None else len(PHASES) - 1
        if first > last:
            raise SelectionError(f"--from {PHASES[first]} comes after --until {PHASES[last]} in the story")
        chosen = set(PHASES[first : last + 1])
    needed = _closure(chosen)
    return Plan(
        phases=tuple(p for p in PHASES if p in needed),
        selected=tuple(p for p in PHASES if p in chosen),
        prerequisites=tuple(p for p in PHASES if p in needed - chosen),
    )

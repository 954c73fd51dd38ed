"""The course notes the errata refer to, by title (the notes themselves are not shipped).

REFERENCES.md at the repository root lists the notes with the section headings cited here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Location", "ADVANCED_PG", "PG_CHAPTER", "CS285_LEC9", "PG_SURVEY", "PG_FUNDAMENTALS", "NOTES"]

#: "Advanced Policy Gradients": policy gradient as policy iteration, the distribution-mismatch
#: bound, TRPO and the natural gradient in one page.
ADVANCED_PG = "Advanced Policy Gradients"
#: "Policy Gradients": a textbook chapter (finite-horizon, undiscounted) on gradient ascent,
#: REINFORCE, baselines, parametrizations, TRPO, NPG and PPO.
PG_CHAPTER = "Policy Gradients (textbook chapter)"
#: "Lecture 9: Advanced Policy Gradient": notes on CS285 (Levine), lecture 9.
CS285_LEC9 = "CS285 Lecture 9: Advanced Policy Gradient"
#: "Policy Gradient": the long survey notes, from the policy gradient theorem to SAC.
PG_SURVEY = "Policy Gradient (survey notes, REINFORCE to SAC)"
#: "Policy Gradient Fundamentals": the foundation note for TRPO and PPO.
PG_FUNDAMENTALS = "Policy Gradient Fundamentals"

NOTES = (ADVANCED_PG, PG_CHAPTER, CS285_LEC9, PG_SURVEY, PG_FUNDAMENTALS)


@dataclass(frozen=True)
class Location:
    """Where a claim is printed: the note's title, the section heading, and optionally what in it.

    Attributes
    ----------
    note : str
        Title of the note (one of :data:`NOTES`).
    section : str
        The section heading as printed in the note (formatting removed).
    detail : str
        Optional pointer inside the section ("proof", "definition 'PG with baseline'", ...).
    """

    note: str
    section: str
    detail: str = ""

    def __post_init__(self) -> None:
        for name in ("note", "section", "detail"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if self.note not in NOTES:
            raise ValueError(f"note must be one of {NOTES}, got {self.note!r}")

    def __str__(self) -> str:
        where = f'{self.note}, § "{self.section}"'
        return f"{where} ({self.detail})" if self.detail else where

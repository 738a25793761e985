"""Task families: the kinds of question kgreason asks (multiple choice, free form), one module each.

    from kgreason.families import get_family
    family = get_family(task.family)           # "multiple_choice" for files written before families
    line = family.find_answer_line(text)       # the answer reader and the samplers' stop rule
    family.is_correct(family.answer_of(line), task, chosen)

A new family is one module that subclasses `TaskFamily` and calls `register_family` (a plugin
module works the same way, through the `kgreason.plugins` entry points or $KGREASON_PLUGINS).
Torch-free.
"""

from kgreason.families import free_form, multiple_choice  # noqa: F401  (they register themselves)
from kgreason.families.base import (
    DEFAULT_FAMILY,
    FAMILIES,
    AnswerLine,
    TaskFamily,
    family_of_tasks,
    get_family,
    register_family,
)

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "AnswerLine", "TaskFamily", "family_of_tasks", "get_family", "register_family"]

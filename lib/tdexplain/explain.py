"""The entry points to explaining that the design names (DESIGN.md's public API:
`explain.Explainer`, `explain.frame_importance`, `explain.DEFAULT_METHOD`), in one place for
outside code that relies on them. Each is imported from its home, where the library and the
notebooks import it: `engine.explainer`, `methods`, `methods.frames`."""

from .engine.explainer import Explainer, Explanation
from .methods import DEFAULT_METHOD, METHODS
from .methods.frames import frame_importance

__all__ = ["Explainer", "Explanation", "DEFAULT_METHOD", "METHODS", "frame_importance"]

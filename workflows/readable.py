"""`ReadableText`: words for the Temporal UI that the payload codec leaves in clear (see core/codec.py).

A module of its own, with no imports, because workflow code uses it inside the sandbox.
"""

from __future__ import annotations


class ReadableText(str):
    """Text for the Temporal UI (an activity's or timer's summary) that is stored in clear.

    Build it only from stage names, types, accounts and object names, never from parameters,
    expressions' values or anything a trigger brought: whoever reads the history reads it."""

    # Checked by attribute, not isinstance: workflow code imports this module inside the sandbox,
    # which makes a class of its own, while the converter runs outside it.
    gennaker_readable = True

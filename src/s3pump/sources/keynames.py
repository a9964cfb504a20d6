"""A file name's text in its key (``--normalize-keys``): its bytes as they are, or Unicode NFC.

macOS writes names in NFD (``e`` + U+0301), Linux keeps what it is given, usually NFC (U+00E9):
the same name, other bytes, so other keys. :class:`KeyNames` maps each name the walk finds
(:mod:`s3pump.sources.walk`) to its key text: ``nfc`` normalizes it, ``none`` keeps it and warns once
when a name is not in NFC (logging, on stderr; Python's ``unicodedata``, Unicode Standard Annex #15).
"""

from __future__ import annotations

import logging
import os
import unicodedata

__all__ = ["AS_IS", "KeyNames"]

log = logging.getLogger("s3pump.walk")


class KeyNames:
    """A file name's text in its key (``--normalize-keys``): ``form`` ``"nfc"``, the name in Unicode
    NFC; ``"none"``, the name as it is, and the first name not in NFC (a macOS tree's NFD names) is
    warned about once (logging, on stderr), with the flag that maps it to the NFC key."""

    __slots__ = ("nfc", "warned")

    def __init__(self, form: str = "none") -> None:
        self.nfc = form == "nfc"
        self.warned = False

    def __call__(self, name: str, path: str) -> str:
        """``name``'s text in the key (``path``: the file's, for the warning)."""
        if name.isascii():
            return name
        if self.nfc:
            return unicodedata.normalize("NFC", name)
        if not self.warned and not unicodedata.is_normalized("NFC", name):
            self.warned = True
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            log.warning("%s: its name is not in Unicode NFC (NFD, as macOS writes names); keys keep the names' "
                        "bytes, so the same files from a Linux tree (NFC) get other keys; --normalize-keys nfc "
                        "writes NFC keys", shown)
        return name


#: Names as they are (a shared instance: it warns once per process).
AS_IS = KeyNames()

"""``sync --delete --max-delete N|P%``: the guard against the one tool mistake that loses data (a
sync from an empty or unmounted directory, a wrong prefix). As rclone's ``--max-delete``, a plan
that deletes more than the limit deletes nothing; a share (``P%``) is of the objects under the
destination prefix."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeleteLimitError, UsageError
from ..urls import S3Url

__all__ = ["DeleteLimit"]


@dataclass(frozen=True, slots=True)
class DeleteLimit:
    """At most ``count`` deletes, or at most ``percent`` % of the objects under the prefix; neither:
    no limit."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: int | str | None) -> DeleteLimit:
        """``10`` or ``"10"`` (a count), ``"5%"`` (a share), or None (no limit).

        Raises:
            UsageError: anything else (exit 2).
        """
        if value is None:
            return cls()
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(count=value)
        text = str(value).strip()
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if 0 <= percent <= 100:
                    return cls(percent=percent)
            elif text.isdigit():
                return cls(count=int(text))
        except ValueError:
            pass
        raise UsageError(f"--max-delete {value!r}: give a count (10) or a share of the objects (5%)")

    def check(self, deletes: int, objects: int, dest: S3Url) -> None:
        """Raise when ``deletes`` of the ``objects`` under ``dest`` are over the limit.

        Raises:
            DeleteLimitError: over the limit (exit 2; the caller has deleted nothing).
        """
        if self.count is not None and deletes > self.count:
            limit = f"--max-delete {self.count}"
        elif self.percent is not None and deletes > objects * self.percent / 100:
            limit = f"--max-delete {self.percent:g}% ({objects * self.percent / 100:g} of {objects} objects)"
        else:
            return
        share = f"{100 * deletes / objects:.0f}%" if objects else "all"
        raise DeleteLimitError(
            f"sync --delete would delete {deletes} objects under {dest} ({share} of {objects}), over {limit}: "
            "nothing was deleted; check the source directory (empty, or not mounted?) and the prefix, or raise "
            "--max-delete")

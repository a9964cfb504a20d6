"""The public names of ``s3pump`` (issue 27): the whole error tree is importable from the package."""

from __future__ import annotations

import inspect

import s3pump
import s3pump.errors


def test_every_error_class_is_exported_from_the_package() -> None:
    tree = [cls for _, cls in inspect.getmembers(s3pump.errors, inspect.isclass)
            if issubclass(cls, s3pump.errors.S3PumpError) and cls.__module__ == "s3pump.errors"]
    assert len(tree) > 30  # the tree of errors.py's docstring, not an empty scan
    missing = [cls.__name__ for cls in tree if cls.__name__ not in s3pump.__all__]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from s3pump import {', '.join(cls.__name__ for cls in tree)}", namespace)
    assert all(namespace[cls.__name__] is cls for cls in tree)

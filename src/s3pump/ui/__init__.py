"""All presentation: progress (bar and plain), ``--json`` lines, summaries, Prometheus metrics.

Views consume events only (:mod:`s3pump.events`) and reports; nothing below this package and
``cli.py`` imports rich or writes to stdout/stderr. Modules: :mod:`.console` (the stderr console),
:mod:`.progress` (the one progress view), :mod:`.jsonlines` (``--json``), :mod:`.summary` (the
end-of-run lines), :mod:`.metrics` (``--metrics-port``/``--metrics-file``), :mod:`.views` (the set
of views of one command).
"""

"""All presentation: progress (bar and plain), ``--json`` lines, summaries, listings, Prometheus metrics.

Views consume events only (:mod:`s3pump.events`) and reports; nothing below this package and the
command line (``cli.py``, ``commands/``) imports rich or writes to stdout/stderr. Modules:
:mod:`.console` (the stderr console), :mod:`.progress` (the one progress view), :mod:`.jsonlines`
(``--json``), :mod:`.summary` (the end-of-run lines), :mod:`.metrics`
(``--metrics-port``/``--metrics-file``), :mod:`.views` (the set of views of one command),
:mod:`.walk_lines` (skipped entries, an upload dry run's lines), :mod:`.listing` (``ls``, ``verify``),
:mod:`.buckets_view` (``lifecycle``, ``versioning``, ``mb``, ``rb``), :mod:`.server_view` (``serve``).
"""

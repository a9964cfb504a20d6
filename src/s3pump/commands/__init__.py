"""The command line's verbs, one module each (as s5cmd's ``command/`` and rclone's ``cmd/``).

A verb's module holds its ``HELP`` and its function: its own flags as Typer parameters, the shared
ones as groups (:mod:`.options`, :mod:`.groups`); its body builds the config (:mod:`.config`), calls
its job in :mod:`s3pump.jobs` (imported when the verb runs, not before) and hands the result to
:mod:`s3pump.ui`. :mod:`.base` runs the body (errors to one line and an exit code).
:mod:`s3pump.cli` registers the verbs on the app.
"""

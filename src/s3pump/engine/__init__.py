"""The one transfer engine every job uses: bounded concurrency, retries, multipart, cancellation.

Import what you need from its modules (``engine.scheduler.Engine``, ``engine.uploads.OpenUploads``,
``engine.multipart``, ``engine.limits``); this package imports nothing, so that importing one of
them does not load the others.
"""

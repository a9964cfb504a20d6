"""Planning a sync: bounded-memory sorting (:mod:`.extsort`) and the merge-join of the local
files with the remote objects (:mod:`.syncplan`)."""

"""Sources: where the engine's upload items come from (a directory walk, stdin, table rows)."""

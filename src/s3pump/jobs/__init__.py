"""Jobs: each reads top to bottom (parse, plan, hand to the engine, report)."""

"""Training model packs: recipes and the ultralytics run (needs the `[train]` extra)."""

"""verify's Hydra configs (a package: Hydra's pkg:// search path entries expect an __init__.py)."""

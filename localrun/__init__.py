"""Running wapipe on one machine: ``wapipe up`` (up.py) and ``wapipe demo`` (demo.py)."""

"""What the benchmark scripts share; ``bench/__init__.py`` names it for them (``from bench import …``)."""

"""``python -m procmem``: the ``procmem`` command line (:data:`procmem.cli.main`).

The one module entry point; the ``procmem`` console script runs the same group.
"""

from .cli import main

if __name__ == "__main__":
    main()

"""``python -m lshlib.bench [--device cuda]``: the accelerator grid of :mod:`lshlib.bench.gpu`
(``make bench-gpu``); the CPU grid's command line is ``benchmarks/attention.py`` (``make
bench``). Imports neither ``datasets`` nor ``transformers`` until the training step needs the
latter."""

from lshlib.bench.gpu import main

if __name__ == "__main__":
    main()

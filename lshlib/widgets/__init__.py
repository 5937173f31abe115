"""ipywidgets explorers, one submodule per notebook topic (``lshlib.widgets.hashing``,
``lshlib.widgets.attention``). Each returns a widget and also works without a browser: building
it runs the update once, so a notebook executes top to bottom headless."""

"""ipywidgets explorers, one submodule per notebook topic (``lshlib.widgets.hashing``,
``lshlib.widgets.attention``), on the shared :class:`Explorer` base.

Each explorer works without a browser: building it draws the first frame, so a notebook runs
top to bottom headless. It also leaves a static picture: its display bundle carries the first
frame as ``image/png`` beside the live widget view, so a reader on GitHub, nbviewer or a static
HTML export sees what the widget shows, while JupyterLab and Voila (``make app``) show the
live widget.
"""

from __future__ import annotations

import base64
import io

import IPython.display
import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["Explorer"]


class Explorer(widgets.VBox):
    """Controls above a caption (the current setting, in words) and an Output with the frame.

    Subclasses set ``controls`` (name -> widget) and implement :meth:`frame` (the figure for
    the current values) and :meth:`caption`; ``frames_drawn`` counts redraws."""

    controls: dict[str, widgets.Widget]

    def _build(self, rows: list[list[widgets.Widget]]) -> None:
        """Lay out the control ``rows``, wire every control to :meth:`update`, draw once."""
        self.caption_label = widgets.HTML()
        self.output = widgets.Output()
        self.frames_drawn = 0
        self.first_frame_png: bytes | None = None
        for control in self.controls.values():
            control.observe(lambda _change: self.update(), names="value")
        super().__init__([*(widgets.HBox(r) for r in rows), self.caption_label, self.output])
        self.add_class("lshlib-explorer")
        self.update()

    def frame(self) -> Figure:
        raise NotImplementedError

    def caption(self) -> str:
        raise NotImplementedError

    def update(self) -> None:
        """Redraw the frame and the caption for the current control values."""
        fig = self.frame()
        if self.first_frame_png is None:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
            self.first_frame_png = buffer.getvalue()
        self.caption_label.value = f"<b class='lshlib-caption'>{self.caption()}</b>"
        with self.output:
            self.output.clear_output(wait=True)
            IPython.display.display(fig)
        plt.close(fig)
        self.frames_drawn += 1

    def _repr_mimebundle_(self, **kwargs):
        """The widget view plus its first frame as a PNG (what static renderers show)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.first_frame_png is not None:
            bundle["image/png"] = base64.b64encode(self.first_frame_png).decode("ascii")
        return bundle

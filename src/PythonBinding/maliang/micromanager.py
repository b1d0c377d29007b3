"""Live localization during a Micro-Manager acquisition through pycro-manager's ``image_process_fn`` hook.

    from pycromanager import Acquisition, multi_d_acquisition_events
    import maliang.micromanager

    hook = maliang.micromanager.live_hook(offset=100, pixel_size=107)
    with Acquisition(directory="data", name="storm", image_process_fn=hook) as acq:
        acq.acquire(multi_d_acquisition_events(num_time_points=1000))
    locs = hook.localizations          # everything so far (also while acquiring, from another thread)
    preview = hook.preview()           # rendered super-resolution image

pycro-manager is not needed to import this module: the hook is a plain callable ``hook(image, metadata)`` that
localizes the image and returns ``(image, metadata)`` unchanged (pass ``annotate=True`` to add the count of
localizations of that frame to the metadata as ``"MaLiangLocalizations"``).
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np

from ._core import Localizer
from ._native import LOCALIZATION_DTYPE, engine
from .render import render


class LiveHook:
    """The callable :func:`live_hook` returns. Thread-safe: pycro-manager calls it from its image-processing thread
    while a GUI may read :attr:`localizations` or :meth:`preview` from another."""

    def __init__(self, *, accept: Optional[Callable[[dict], bool]] = None, annotate: bool = False,
                 on_frame: Optional[Callable[[np.ndarray, dict], None]] = None, magnification: float = 10,
                 **settings):
        self._localizer = Localizer(**settings)
        #: one line naming the engine this hook runs on (maliang.engine()), for the acquisition log
        self.engine = engine()
        self.settings = dict(settings)
        self.accept = accept
        self.annotate = annotate
        self.on_frame = on_frame
        self.magnification = magnification
        self._lock = threading.Lock()
        #: metadata of each localized frame, by MaLiang frame number (0-based): e.g. its "Axes" or "ElapsedTime-ms".
        self.frame_metadata: list[dict] = []
        self._shape = None
        self.errors: list[str] = []

    def __call__(self, image, metadata):
        if image is None:  # nothing to localize (pycro-manager passes None at the end in some versions)
            return image, metadata
        if self.accept is not None and not self.accept(metadata):
            return image, metadata
        frame = np.asarray(image)
        if frame.ndim != 2:
            raise ValueError(f"maliang.micromanager: expected a 2-D camera image, got shape {frame.shape}")
        with self._lock:
            new = self._localizer.push(frame)
            self._shape = frame.shape
            self.frame_metadata.append(dict(metadata) if metadata is not None else {})
        if self.annotate and isinstance(metadata, dict):
            metadata["MaLiangLocalizations"] = int(len(new))
        if self.on_frame is not None:
            self.on_frame(new, metadata)
        return image, metadata

    @property
    def localizer(self) -> Localizer:
        return self._localizer

    @property
    def localizations(self) -> np.ndarray:
        """All localizations so far (LOCALIZATION_DTYPE; frame = order of arrival, see :attr:`frame_metadata`)."""
        with self._lock:
            if self._localizer.closed:
                return np.empty(0, dtype=LOCALIZATION_DTYPE)
            return self._localizer.results()

    @property
    def frames(self) -> int:
        return len(self.frame_metadata)

    def preview(self, magnification: float | None = None, method: str = "gaussian", **kw) -> np.ndarray:
        """The super-resolution image of everything so far (2-D float32), camera-frame sized x magnification."""
        locs = self.localizations
        if self._shape is None:
            return np.zeros((1, 1), dtype=np.float32)
        h, w = self._shape
        return render(locs, magnification or self.magnification, method, width=w, height=h, **kw)

    def summary(self) -> dict:
        with self._lock:
            return self._localizer.summary()

    def close(self) -> None:
        with self._lock:
            self._localizer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def live_hook(**settings) -> LiveHook:
    """Returns an ``image_process_fn(image, metadata)`` for pycro-manager's ``Acquisition`` that localizes each frame
    as it arrives and passes the image on (returns ``(image, metadata)``).

    Keywords are :func:`maliang.localize`'s settings, plus ``accept`` (``callable(metadata) -> bool``, e.g. to keep
    one channel), ``annotate`` (add ``"MaLiangLocalizations"`` to each frame's metadata), ``on_frame``
    (``callable(new_locs, metadata)`` after each frame, e.g. to update a display) and ``magnification`` (preview).
    The hook has ``.localizations``, ``.preview()``, ``.frame_metadata``, ``.summary()`` and ``.close()``."""
    return LiveHook(**settings)

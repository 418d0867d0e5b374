"""ImageChecker: checks images and decodes their thumbnails on worker threads.

:func:`app.core.vision.check_image` decodes the whole image to catch a truncated file,
about 0.2 s for a 12-megapixel photo, so the image panel must not run it on the GUI
thread. Each submitted path becomes a job run on one of a few ``threading.Thread`` workers;
the result comes back through one queued signal and is re-emitted on the GUI thread as
:attr:`ImageChecker.checked`. Workers exist only while there is work: an idle checker has
no threads, and :meth:`ImageChecker.shutdown` drops queued jobs and joins the running ones.

Thumbnails are decoded into a ``QImage`` (safe off the GUI thread); the widget turns it
into a ``QPixmap`` on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

from app.core import vision
from app.core.errors import HerdError

logger = logging.getLogger(__name__)

WORKERS = 2  # a check is CPU-bound in Pillow's decoder (which releases the GIL)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a check found: ``info`` and ``thumbnail`` when it passed, else the reason."""

    job: int
    path: str
    info: vision.ImageInfo | None
    thumbnail: QImage
    message: str = ""
    hint: str = ""


def decode_thumbnail(path: str, side: int) -> QImage:
    """A scaled, EXIF-rotated preview, decoded at thumbnail size (fast for large photos).

    Args:
        path: The image file.
        side: Longest side of the result, in device pixels.

    Returns:
        The preview; a null image when neither Qt nor Pillow can decode the file.
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > side:
        reader.setScaledSize(size.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():  # a format Qt lacks (AVIF, HEIC): decode with Pillow instead
        image = _pillow_thumbnail(path, side)
    return image


def _pillow_thumbnail(path: str, side: int) -> QImage:
    try:
        img = vision.load_rgb(path, max_side=side)
    except HerdError:
        return QImage()
    data = img.tobytes()
    return QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888).copy()


def check(job: int, path: str, side: int) -> CheckResult:
    """Run the checks and decode the thumbnail (on a worker thread)."""
    try:
        info = vision.check_image(path)
    except HerdError as exc:
        return CheckResult(job, path, None, QImage(), exc.user_message, exc.hint)
    return CheckResult(job, path, info, decode_thumbnail(path, side))


class ImageChecker(QObject):
    """Checks images on worker threads; results arrive as :attr:`checked`, in the GUI thread.

    Jobs may finish in any order; the caller keeps its own order by job id.
    """

    checked = Signal(object)  # CheckResult, for a job that was not cancelled

    # emitted on worker threads, delivered (queued) on the GUI thread
    _result_posted = Signal(object)

    def __init__(self, parent: QObject | None = None, *, workers: int = WORKERS) -> None:
        super().__init__(parent)
        self._workers = max(1, workers)
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, str, int]] = deque()
        self._threads: list[threading.Thread] = []
        self._active = 0  # workers that have not yet decided to exit
        self._live: set[int] = set()  # submitted, not yet delivered nor cancelled
        self._next_job = 1
        self._closed = False
        self._result_posted.connect(
            self._on_worker_result_posted, Qt.ConnectionType.QueuedConnection
        )

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet delivered or cancelled."""
        return len(self._live)

    def submit(self, path: str, side: int) -> int:
        """Queue a check of ``path`` with a ``side``-pixel thumbnail; returns the job id."""
        if self._closed:
            raise RuntimeError("the image checker was shut down")
        job = self._next_job
        self._next_job += 1
        self._live.add(job)
        with self._lock:
            self._queue.append((job, path, side))
            start = self._active < self._workers
            if start:
                self._active += 1
                self._threads = [t for t in self._threads if t.is_alive()]
                thread = threading.Thread(target=self._work, name=f"image-check-{job}", daemon=True)
                self._threads.append(thread)
        if start:
            thread.start()
        return job

    def cancel(self, job: int) -> None:
        """Forget a job: dropped if still queued, its result ignored if already running."""
        self._live.discard(job)
        with self._lock:
            self._queue = deque(item for item in self._queue if item[0] != job)

    def cancel_all(self) -> None:
        """Forget every job."""
        self._live.clear()
        with self._lock:
            self._queue.clear()

    def shutdown(self) -> None:
        """Drop queued jobs and join the workers (a running check ends within ~0.5 s)."""
        self._closed = True
        self.cancel_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        with self._lock:
            self._threads.clear()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._queue:
                    self._active -= 1
                    return
                job, path, side = self._queue.popleft()
            try:
                result = check(job, path, side)
            except Exception:  # a bug must not kill the worker nor hang the panel
                logger.exception("checking %s failed", path)
                result = CheckResult(job, path, None, QImage(), "The image could not be read.")
            if self._closed:
                continue  # the loop ends at its next look at the queue
            try:
                self._result_posted.emit(result)
            except RuntimeError:  # the checker was deleted without a shutdown
                return

    @Slot(object)
    def _on_worker_result_posted(self, result: CheckResult) -> None:
        if self._closed or result.job not in self._live:
            return  # cancelled meanwhile
        self._live.discard(result.job)
        self.checked.emit(result)

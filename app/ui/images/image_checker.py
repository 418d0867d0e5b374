"""ImageChecker: checks images and decodes their thumbnails on worker threads.

:func:`app.core.vision.check_image` decodes the whole image to catch a truncated file,
about 0.2 s for a 12-megapixel photo, so the image panel must not run it on the GUI
thread. Each submitted path becomes a job of the window's one worker pattern
(:class:`~app.ui.worker.JobRunner`, two at a time); the result is re-emitted on the GUI
thread as :attr:`ImageChecker.checked`. Workers exist only while there is work, and
:meth:`ImageChecker.shutdown` drops queued jobs and joins the running ones.

Thumbnails are decoded into a ``QImage`` (safe off the GUI thread); the widget turns it
into a ``QPixmap`` on the GUI thread.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

from app.core import vision
from app.core.errors import HerdError
from app.core.jobs import CancelToken
from app.ui.worker import JobFailed, JobRunner

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

    Jobs may finish in any order; the caller keeps its own order by job id. The threads
    are the window's one worker pattern (:class:`~app.ui.worker.JobRunner`).
    """

    checked = Signal(object)  # CheckResult, for a job that was not cancelled

    def __init__(self, parent: QObject | None = None, *, workers: int = WORKERS) -> None:
        super().__init__(parent)
        self._runner = JobRunner(self, workers=workers, name="image-check")
        self._runner.delivered.connect(self._on_runner_event)
        self._live: set[int] = set()  # submitted, not yet delivered nor cancelled
        self._closed = False

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet delivered or cancelled."""
        return len(self._live)

    def submit(self, path: str, side: int) -> int:
        """Queue a check of ``path`` with a ``side``-pixel thumbnail; returns the job id."""
        if self._closed:
            raise RuntimeError("the image checker was shut down")

        def job(_cancel: CancelToken) -> Iterator[CheckResult]:
            yield check(0, path, side)  # the job id is set on delivery

        job_id = self._runner.start(job)
        self._live.add(job_id)
        return job_id

    def cancel(self, job: int) -> None:
        """Forget a job: dropped if still queued, its result ignored if already running."""
        self._live.discard(job)
        self._runner.cancel(job)

    def cancel_all(self) -> None:
        """Forget every job."""
        self._live.clear()
        self._runner.cancel_all()

    def shutdown(self) -> None:
        """Drop queued jobs and join the workers (a running check ends within ~0.5 s)."""
        self._closed = True
        self.cancel_all()
        self._runner.shutdown(timeout=30.0)

    @Slot(int, object)
    def _on_runner_event(self, job: int, event: object) -> None:
        if self._closed or job not in self._live:
            return  # cancelled meanwhile
        if isinstance(event, JobFailed):  # a bug must not hang the panel
            event = CheckResult(job, "", None, QImage(), "The image could not be read.")
        if isinstance(event, CheckResult):
            self._live.discard(job)
            self.checked.emit(dataclasses.replace(event, job=job))

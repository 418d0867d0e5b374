"""The engine process: the only place llama.cpp runs.

Started by :class:`app.core.engine.client.EngineClient` as ``python -m app.core.engine.worker
LOGFILE``. Requests arrive as JSON lines on stdin; events leave on the pipe that was stdout,
while fds 1 and 2 are pointed at the log file so llama.cpp (and any assert or crash message)
never reaches the terminal. A reader thread watches stdin so a ``stop`` lands mid-job.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import IO, Any

from app.core import events as ev
from app.core.engine import generation, prompt_tokens
from app.core.engine import protocol as proto
from app.core.engine.engine_config import EngineConfig
from app.core.engine.generation import EMIT_EVERY_S
from app.core.errors import ContextFullError, HerdError
from app.core.settings import LoadSettings, SamplingSettings

logger = logging.getLogger(__name__)

__all__ = ["EMIT_EVERY_S", "PROGRESS_STEP", "Worker", "main"]

PROGRESS_STEP = 0.01  # report load progress in 1% steps


class Worker:
    """Serves requests one at a time; ``stop`` requests are handled out of band."""

    def __init__(
        self,
        out: IO[bytes],
        inp: IO[bytes],
        *,
        log_path: str = "",
        crash_repacked_decode: bool = False,
    ) -> None:
        self._out = out
        self._log_path = log_path
        # Tests only: emulate llama.cpp's AMX crash (SIGSEGV at the first decode of weights
        # in extra buffer types) on machines without AMX, to exercise the recovery path.
        self._crash_repacked_decode = crash_repacked_decode
        self._config = EngineConfig()
        self._inp = inp
        self._write_lock = threading.Lock()
        self._requests: queue.Queue[proto.Request | None] = queue.Queue()
        self._stop_upto = 0  # every request with id <= this is to stop now
        self._current = 0
        self._llm: Any = None
        self._projector: Any = None  # llama_vision.Projector when the model has one loaded
        self._image_counter: Any = None
        self._cached_before = 0  # prompt positions found cached (for the prompt speed)

    # -- plumbing ---------------------------------------------------------------
    def emit(self, request_id: int, event: ev.EngineEvent) -> None:
        """Send one event to the app."""
        data = proto.encode_event(request_id, event)
        with self._write_lock:
            self._out.write(data)
            self._out.flush()

    def _read_requests(self) -> None:
        for line in self._inp:
            if not line.strip():
                continue
            req = proto.Request.decode(line)
            if req.op == proto.OP_STOP:
                self._stop_upto = max(self._stop_upto, int(req.args.get("target", req.id)))
            else:
                self._requests.put(req)
        self._stop_upto = 1 << 62  # the app is gone: stop whatever runs, then exit
        self._requests.put(None)

    def _should_stop(self) -> bool:
        return self._current <= self._stop_upto

    def run(self) -> None:
        """Serve until shutdown or until stdin closes."""
        threading.Thread(target=self._read_requests, name="requests", daemon=True).start()
        handlers = {
            proto.OP_LOAD: self._load,
            proto.OP_GENERATE: self._generate,
            proto.OP_TOKENIZE: self._tokenize,
            proto.OP_UNLOAD: self._unload,
            proto.OP_DEVICES: self._devices,
        }
        while True:
            req = self._requests.get()
            if req is None or req.op == proto.OP_SHUTDOWN:
                break
            self._current = req.id
            handler = handlers.get(req.op)
            if handler is None:
                self.emit(req.id, ev.Failed(f"The engine does not know the request {req.op!r}."))
                continue
            try:
                handler(req)
            except Exception as exc:  # report, keep serving: one bad request is not a crash
                logger.exception("request %s failed", req.op)
                self.emit(req.id, ev.Failed(f"The engine failed: {exc}", "See the engine log."))
        self._release()

    # -- requests ---------------------------------------------------------------
    def _load(self, req: proto.Request) -> None:

        from app.core.engine import llama_ext

        self._release()
        path = str(req.args["path"])
        settings = LoadSettings.from_dict(req.args.get("settings", {}))
        config = EngineConfig.from_dict(req.args.get("engine", {}))
        last = [-1.0]

        def on_progress(fraction: float) -> bool:
            if fraction - last[0] >= PROGRESS_STEP or fraction >= 1.0:
                last[0] = fraction
                self.emit(req.id, ev.Progress(fraction, "Loading weights"))
            return not self._should_stop()

        started = time.perf_counter()
        try:
            with (
                llama_ext.overridden_tensors() as overridden,
                llama_ext.buffer_sizes() as buffers,
                llama_ext.log_lines() as said,
            ):
                llm = llama_ext.HerdLlama(
                    on_progress=on_progress, **llama_ext.llama_kwargs(path, settings, config)
                )
        except (ValueError, RuntimeError) as exc:
            if self._should_stop():
                self.emit(req.id, ev.Failed("Loading was cancelled.", cancelled=True))
            else:
                lines = "".join(said).splitlines()
                self.emit(req.id, _load_failure(path, exc, lines, self._log_path))
            return
        if self._should_stop():
            # Stop came after the last progress report (an mmap'd model reports all of it in
            # a millisecond, then builds its context): a cancelled load must not end loaded.
            llm.close()
            self.emit(req.id, ev.Failed("Loading was cancelled.", cancelled=True))
            return
        llama_ext.set_abort_check(llm, self._should_stop)
        self._llm = llm
        self._config = config
        projector = str(req.args.get("projector") or "")
        vision_error = self._load_projector(projector, llm, settings) if projector else ""
        n_params, size = llama_ext.model_size(llm)
        facts = ev.ModelFacts(
            path=path,
            name=str(llm.metadata.get("general.name", os.path.basename(path))),
            architecture=str(llm.metadata.get("general.architecture", "")),
            description=llama_ext.model_description(llm),
            n_params=n_params,
            size_bytes=size,
            n_ctx=llm.n_ctx(),
            n_ctx_train=llm._model.n_ctx_train(),
            n_vocab=llm.n_vocab(),
            load_seconds=time.perf_counter() - started,
            bos_token=_token_text(llm, llm.token_bos()),
            eos_token=_token_text(llm, llm.token_eos()),
            overridden_tensors=tuple(overridden),
            buffers=tuple(buffers),
            vision=self._projector is not None,
            projector=projector if self._projector is not None else "",
            vision_error=vision_error,
        )
        self.emit(req.id, ev.Loaded(facts))

    def _load_projector(self, path: str, llm: Any, settings: LoadSettings) -> str:
        """Load the vision projector beside the model; returns why not ("" when loaded)."""
        from app.core.engine import image_tiles, multimodal

        try:
            self._projector = image_tiles.open_projector(
                path, llm, use_gpu=settings.n_gpu_layers != 0, flash_attn=settings.flash_attn
            )
        except (HerdError, RuntimeError, ValueError, OSError) as exc:
            logger.warning("projector %s not loaded: %s", path, exc)
            why = exc.user_message if isinstance(exc, HerdError) else f"{exc}."
            return f"The vision projector {os.path.basename(path)} could not be loaded: {why}"
        self._image_counter = multimodal.ImageCounter()
        return ""

    def _require_projector(self, req: proto.Request) -> Any:
        if self._projector is None:
            self.emit(
                req.id,
                ev.Failed(
                    "This model cannot see images: no vision projector is loaded with it.",
                    "Put the model's mmproj GGUF next to it (or choose one) and load it "
                    "again, or remove the images.",
                ),
            )
        return self._projector

    def _require_model(self, req: proto.Request) -> Any:
        if self._llm is None:
            self.emit(req.id, ev.Failed("No model is loaded.", "Load a model first."))
        return self._llm

    def _tokenize(self, req: proto.Request) -> None:
        llm = self._require_model(req)
        if llm is None:
            return
        from app.core.engine import llama_ext

        segments = req.args.get("segments")
        if segments is not None:  # a chat prompt: counted exactly as generation takes it
            tokens = prompt_tokens.prompt_ids(llm, segments)
        else:  # raw text: special tokens parsed, no BOS added (as ever)
            text = str(req.args.get("text", ""))
            tokens = llama_ext.tokenize(llm, text.encode("utf-8"), special=True)
        images = [str(p) for p in req.args.get("images", [])]
        if not images:
            self.emit(req.id, ev.TokenCount(len(tokens)))
            return
        if self._require_projector(req) is None:
            return
        from app.core.engine import multimodal

        placeholder = str(req.args.get("image_placeholder", ""))
        try:
            n_images = multimodal.count_images(
                llm, self._projector, self._image_counter, tokens, images, placeholder
            )
        except HerdError as exc:
            self.emit(req.id, ev.Failed(exc.user_message, exc.hint))
            return
        # each placeholder token becomes the image's own tokens (its begin/end markers too)
        self.emit(req.id, ev.TokenCount(len(tokens) - len(images) + n_images, n_images))

    def _devices(self, req: proto.Request) -> None:
        from app.core.engine import llama_devices

        self.emit(req.id, ev.DeviceList(tuple(llama_devices.backend_devices())))

    def _unload(self, req: proto.Request) -> None:
        self._release()
        self.emit(req.id, ev.Unloaded())

    def _release(self) -> None:
        if self._projector is not None:
            self._projector.close()  # before its model
            self._projector = None
            self._image_counter = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def _generate(self, req: proto.Request) -> None:
        llm = self._require_model(req)
        if llm is None:
            return
        if self._crash_repacked_decode and self._config.use_extra_bufts:
            os.kill(os.getpid(), signal.SIGSEGV)
        from app.core.engine import llama_ext

        sampling = SamplingSettings.from_dict(req.args.get("sampling", {}))
        segments = req.args.get("segments")  # a chat prompt; else a raw "prompt" text
        prompt = str(req.args.get("prompt", ""))
        images = [str(p) for p in req.args.get("images", [])]
        started = time.perf_counter()
        n_image_tokens = 0
        if images:
            if self._require_projector(req) is None:
                return
            try:
                filled = self._prefill_images(req, llm, segments or prompt, images)
            except HerdError as exc:
                llama_ext.clear_memory(llm)
                full = isinstance(exc, ContextFullError)
                self.emit(req.id, ev.Failed(exc.user_message, exc.hint, context_full=full))
                return
            except RuntimeError as exc:  # an image's decode failed, or Stop aborted it
                filled = None
                if not self._should_stop():
                    llama_ext.clear_memory(llm)
                    self.emit(req.id, ev.Failed(f"The image failed: {exc}", "See the engine log."))
                    return
            if filled is None:  # Stop was pressed while the prompt was read
                llama_ext.clear_memory(llm)
                self.emit(req.id, generation.stopped_before_reply(started))
                return
            tokens, n_image_tokens = filled
        elif segments is not None:
            tokens = prompt_tokens.prompt_ids(llm, segments)
        else:
            tokens = generation.text_tokens(llm, prompt)
        generation.stream_reply(
            llm,
            tokens,
            sampling,
            [str(text) for text in req.args.get("stop_tokens", [])],
            lambda event: self.emit(req.id, event),
            self._should_stop,
            started=started,
            cached_before=llm.n_tokens if not images else self._cached_before,
            image_tokens=n_image_tokens,
        )

    def _prefill_images(
        self, req: proto.Request, llm: Any, prompt: str | list[Any], images: list[str]
    ) -> tuple[list[int], int] | None:
        """Evaluate a prompt with images: its ids and image tokens (None: Stop came first)."""
        from app.core.engine import multimodal

        placeholder = str(req.args.get("image_placeholder", ""))
        projector, stop = self._projector, self._should_stop
        if isinstance(prompt, str):
            done = multimodal.evaluate_prompt(llm, projector, prompt, images, placeholder, stop)
        else:
            done = multimodal.evaluate_segments(llm, projector, prompt, images, placeholder, stop)
        if done is None:
            return None
        tokens, n_image, self._cached_before = done
        return tokens, n_image


def _load_failure(path: str, exc: Exception, said: list[str], log_path: str) -> ev.Failed:
    """A failed load in llama.cpp's own words (its reason line), with the log's path."""
    reason = llama_reason(said)
    where = f" The full log: {log_path}" if log_path else ""
    if reason:
        return ev.Failed(
            f"llama.cpp could not load {os.path.basename(path)}: {reason}",
            f"The file may be damaged, incomplete or of a layout this llama.cpp does not "
            f"know; re-download it or try another quant.{where}",
            log_path=log_path,
        )
    return ev.Failed(
        f"llama.cpp could not load {os.path.basename(path)}: {exc}",
        f"The engine log names the reason (memory, a damaged file, an unsupported layout).{where}",
        log_path=log_path,
    )


def llama_reason(lines: list[str]) -> str:
    """The line of llama.cpp's log that says why a load failed ("" when none does)."""
    for marker in ("error loading model:", "error:", "llama_init_from_model:", "failed to"):
        for line in reversed(lines):
            text = line.strip()
            at = text.lower().rfind(marker)
            if at < 0:
                continue
            rest = text[at + len(marker) :].strip()
            return rest if rest and marker != "failed to" else text
    return ""


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    from app.core.engine import llama_ext

    return llama_ext.token_bytes(llm, token, special=True).decode("utf-8", errors="replace")


def main(argv: list[str]) -> int:
    """Entry point of the engine process: ``worker.py LOGFILE``."""
    log_path = argv[1] if len(argv) > 1 else os.devnull
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = open(log.fileno(), "w", buffering=1, closefd=False)  # noqa: SIM115
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="herd-engine: %(message)s")
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core dump
    except (ImportError, ValueError, OSError):
        pass
    from app.core.engine import backends, llama_ext

    llama_ext.send_log_to(log)
    backends.load_backends()  # a portable build's CPU variant and GPU modules (the bundles)
    crash_repacked = os.environ.get("HERD_TEST_CRASH_REPACKED_DECODE") == "1"
    Worker(
        proto_out, sys.stdin.buffer, log_path=log_path, crash_repacked_decode=crash_repacked
    ).run()
    logging.shutdown()
    sys.stdout.flush()
    proto_out.flush()
    # Skip interpreter finalization: the daemon request reader may be blocked in a read
    # holding stdin's buffer lock, and finalization would then wait 1 s for that lock and
    # abort the process ("Fatal Python error: _enter_buffered_busy", SIGABRT).
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""The engine self-check, the safe configuration on every load, and the one retry.

This machine's CPU decodes correctly in llama.cpp's default configuration, so the crash of
llama.cpp's AMX path (SIGSEGV at the first decode of repacked weights, Intel Xeons) is
emulated: with ``HERD_TEST_CRASH_REPACKED_DECODE=1`` the engine and the self-check child
kill themselves with a real SIGSEGV at the first decode of a model loaded with extra
buffer types. Everything else (the children, the signal, the record, the reload) is real.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from app.core import events as ev
from app.core.chat.messages import ChatMessage, Role
from app.core.engine import selfcheck
from app.core.engine.client import EngineClient
from app.core.engine.engine_config import (
    DEFAULT,
    RECORD_FILE,
    SAFE,
    CheckRecord,
    read_record,
    write_record,
)
from app.core.paths import AppPaths
from app.core.settings import LoadSettings, SamplingSettings
from tests.fixtures.gguf_rewrite import rewrite_gguf

CRASH_ENV = {**os.environ, "HERD_TEST_CRASH_REPACKED_DECODE": "1"}
SAMPLING = SamplingSettings(temperature=0.0, max_tokens=4, seed=1)


def _home(tmp_path: Path, name: str = "home") -> AppPaths:
    return AppPaths.under(tmp_path / name).ensure()


def test_a_working_configuration_is_found_and_recorded(tmp_path: Path) -> None:
    paths = _home(tmp_path)
    record = selfcheck.ensure_checked(paths)
    assert record.works and record.new
    # the first that decodes wins: every one before it crashed (an AMX Xeon: default)
    *failed, last = record.attempts
    assert last.ok and record.chosen == last.config
    assert all(not a.ok and a.outcome.startswith("crashed") for a in failed)
    if record.chosen == DEFAULT:
        assert "default configuration works" in record.cause
    else:
        assert "it is off" in record.cause or "they are off" in record.cause
    assert "CPU" in record.system_info and record.devices
    saved = json.loads((paths.state / RECORD_FILE).read_text())
    assert saved["chosen"] == last.config.name and saved["fingerprint"] == record.fingerprint
    again = selfcheck.ensure_checked(paths)  # read back: no child this time
    assert not again.new
    assert [(a.config, a.outcome) for a in again.attempts] == [
        (a.config, a.outcome) for a in record.attempts
    ]


def test_a_crashing_fast_path_is_turned_off(tmp_path: Path) -> None:
    record = selfcheck.ensure_checked(_home(tmp_path), env=CRASH_ENV)
    assert record.chosen == SAFE
    first, second = record.attempts
    assert not first.ok and first.outcome == "crashed (SIGSEGV)"
    assert second.ok and second.config == SAFE
    assert "crashed (SIGSEGV) on this CPU" in record.cause
    assert "off" in record.cause


def test_a_changed_machine_is_checked_again(tmp_path: Path) -> None:
    paths = _home(tmp_path)
    record = selfcheck.ensure_checked(paths)
    write_record(paths.state, dataclasses.replace(record, fingerprint="another-build"))
    again = selfcheck.ensure_checked(paths)
    assert again.new and again.fingerprint == record.fingerprint


def test_nothing_works_names_every_attempt(tmp_path: Path, tiny_llama4_broken: Path) -> None:
    # the broken model aborts llama.cpp at every decode, whatever the configuration
    record = selfcheck.run_self_check(_home(tmp_path), "fp", model=tiny_llama4_broken)
    assert record.chosen is None and not record.works
    assert len(record.attempts) == 4
    assert all(a.outcome.startswith("crashed (SIG") for a in record.attempts)
    # the safe configurations decode as far as the broken layout, where llama.cpp aborts
    assert record.attempts[-1].outcome == "crashed (SIGABRT)"
    assert "GGML_ASSERT" in record.attempts[-1].log_line
    assert "cannot decode on this machine in any configuration" in record.cause


def _load(client: EngineClient, model: Path) -> ev.ModelFacts:
    events = list(client.load(model, LoadSettings(n_ctx=512, n_threads=2)))
    assert isinstance(events[-1], ev.Loaded), events[-1]
    return events[-1].facts


def _reply(client: EngineClient) -> list[object]:
    return list(client.chat([ChatMessage(Role.USER, "Hi")], SAMPLING))


def test_every_load_applies_the_verdict_and_says_it_once(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    paths = _home(tmp_path)
    with EngineClient(paths, env=CRASH_ENV) as client:
        facts = _load(client, smollm2_gguf)
        assert "without repacked CPU weights" in facts.engine
        assert "crashed (SIGSEGV)" in facts.engine_note
        assert isinstance(_reply(client)[-1], ev.Finished)  # no crash: repacking is off
        assert _load(client, smollm2_gguf).engine_note == ""  # said once
    with EngineClient(paths, env=CRASH_ENV) as client:  # a restart reads the record
        facts = _load(client, smollm2_gguf)
        assert facts.engine_note == "" and "without repacked" in facts.engine


def test_a_crash_at_the_first_decode_is_retried_safely_and_remembered(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    paths = _home(tmp_path)
    # the self-check passed (its probe model did not crash), but this model does
    record = CheckRecord(selfcheck.machine_fingerprint(), (), DEFAULT, "checked", 0.0, 0.0)
    write_record(paths.state, record)
    with EngineClient(paths, env=CRASH_ENV) as client:
        assert _load(client, smollm2_gguf).engine == DEFAULT.describe()
        events = _reply(client)
        notices = [e for e in events if isinstance(e, ev.Notice)]
        assert len(notices) == 1 and "SIGSEGV" in notices[0].message
        assert isinstance(events[-1], ev.Finished) and events[-1].generated_tokens > 0
        assert not any(isinstance(e, ev.EngineCrashed) for e in events)
        assert client.facts is not None and "without repacked" in client.facts.engine
    saved = read_record(paths.state)
    assert saved is not None and saved.chosen == SAFE and "first reply" in saved.cause


def test_a_later_crash_is_not_retried(tmp_path: Path, smollm2_gguf: Path) -> None:
    paths = _home(tmp_path)
    record = selfcheck.ensure_checked(paths)
    with EngineClient(paths) as client:
        _load(client, smollm2_gguf)
        assert isinstance(_reply(client)[-1], ev.Finished)
        client.kill()  # a crash after the first reply is the model's or the machine's
        assert isinstance(_reply(client)[-1], ev.EngineCrashed)
    saved = read_record(paths.state)
    assert saved is not None and saved.chosen == record.chosen


def test_no_working_configuration_refuses_to_load(tmp_path: Path, smollm2_gguf: Path) -> None:
    paths = _home(tmp_path)
    broken = CheckRecord(
        fingerprint=selfcheck.machine_fingerprint(),
        attempts=(),
        chosen=None,
        cause="llama.cpp cannot decode on this machine in any configuration (test).",
        seconds=0.0,
        checked_at=0.0,
    )
    write_record(paths.state, broken)
    with EngineClient(paths) as client:
        events = list(client.load(smollm2_gguf, LoadSettings(n_ctx=512)))
        assert isinstance(events[-1], ev.Failed)
        assert "cannot decode on this machine" in events[-1].message
        assert "herd doctor" in events[-1].hint
        assert not client.alive  # refused before the engine was asked


def test_a_load_failure_quotes_llama_cpp_and_gives_the_log(
    tmp_path: Path, tiny_scout: Path
) -> None:
    model = rewrite_gguf(
        tiny_scout, tmp_path / "no-attn-q.gguf", drop_tensors={"blk.1.attn_q.weight"}
    )
    paths = _home(tmp_path)
    with EngineClient(paths) as client:
        events = list(client.load(model, LoadSettings(n_ctx=512)))
    failed = events[-1]
    assert isinstance(failed, ev.Failed)
    assert "tensor 'blk.1.attn_q.weight' not found" in failed.message
    assert str(paths.engine_log) in failed.hint and failed.log_path == str(paths.engine_log)


@pytest.mark.parametrize(
    "lines, reason",
    [
        (
            [
                "llama_model_load: error loading model: check_tensor_dims: tensor "
                "'blk.0.attn_q.weight' not found",
                "llama_model_load_from_file_impl: failed to load model",
            ],
            "check_tensor_dims: tensor 'blk.0.attn_q.weight' not found",
        ),
        (
            [
                "llama_init_from_model: K cache type q8_0 with block size 32 does not divide "
                "n_embd_head_k=16",
                "llama_model_load_from_file_impl: failed to load model",
            ],
            "K cache type q8_0 with block size 32 does not divide n_embd_head_k=16",
        ),
        (["load_tensors: loading model", "nothing wrong"], ""),
    ],
)
def test_llama_reason(lines: list[str], reason: str) -> None:
    from app.core.engine.worker import llama_reason

    assert llama_reason(lines) == reason


def test_a_check_that_could_not_run_is_not_kept(tmp_path: Path) -> None:
    # children that cannot even start Python's side of the check say nothing of llama.cpp
    paths = _home(tmp_path)
    broken_env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONNOUSERSITE": "1"}
    (tmp_path / "numpy.py").write_text("raise ImportError('numpy is broken here')\n")
    record = selfcheck.ensure_checked(paths, env=broken_env)
    assert not record.works and not record.conclusive
    assert all(a.outcome.startswith("failed (exit code") for a in record.attempts)
    assert "numpy is broken here" in record.cause
    assert read_record(paths.state) is None  # checked again next time
    assert selfcheck.ensure_checked(paths).works

"""A GGUF's chat template that would run for hours or eat all memory: bounded, warned, unused.

Every check here is also a wall-clock and memory bound: a template bomb must not take more
than about 2 s (the test allows 4) nor grow this process by hundreds of MiB.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.chat import template_probe
from app.core.chat.formats import choose_format
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.prompt_format import PromptFormatKind
from app.core.chat.template_check import check_model_template, render_chat_template
from app.core.chat.template_compare import compare_with_llama4
from app.core.chat.template_probe import ProbeVerdict
from app.core.chat.template_sandbox import compile_template
from app.core.errors import TemplateError
from app.core.gguf.info import GGUFInfo
from app.core.settings import TemplateChoice

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "llama4_official_template.jinja"

NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
HUGE_CONSTANT = "{{ 'x' * 10**10 }}"  # folded by stock Jinja while compiling: 10 GB
SYNTAX_ERROR = "{% for %}"
LIMITS = "ran past Herd's limits of 2 s / 256 MiB"

BOMBS = {
    "nested-loops": (NESTED_LOOPS, f"{LIMITS}: it was still running after 2 s"),
    "huge-constant": (HUGE_CONSTANT, f"{LIMITS}: it would build a value of 10,000,000,000"),
    "syntax-error": (SYNTAX_ERROR, "syntax error on line 1"),
}

USER = [ChatMessage(Role.USER, "hi")]


def _info(template: str, arch: str = "llama4") -> GGUFInfo:
    path = Path("bomb.gguf")
    meta = {"general.architecture": arch, "tokenizer.chat_template": template}
    return GGUFInfo(path, (path,), 3, meta, (), 0, (0,), 32)


def _peak_rss_mib() -> float:
    if resource is None:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


@pytest.fixture
def bounded() -> Iterator[None]:
    """The test takes under 4 s and grows this process's peak memory by under 300 MiB."""
    rss = _peak_rss_mib()
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < 4.0, f"took {elapsed:.1f} s"
    assert _peak_rss_mib() - rss < 300


@pytest.mark.timeout(60)
@pytest.mark.parametrize("choice", list(TemplateChoice))
@pytest.mark.parametrize("bomb", list(BOMBS))
def test_llama4_bomb_warns_and_uses_herds_format(
    bomb: str, choice: TemplateChoice, bounded: None
) -> None:
    template, cause = BOMBS[bomb]
    template += f"{{# {choice.value} #}}"  # a fresh check, not the cached verdict
    fmt, warnings = choose_format(_info(template), choice)
    assert fmt.kind is PromptFormatKind.LLAMA4
    assert len(warnings) == 1
    assert "The model's own chat template cannot be rendered" in warnings[0]
    assert cause in warnings[0]
    assert warnings[0].endswith("Herd uses Llama 4's official format.")
    # and the chat is rendered in Herd's own format
    assert fmt.render(USER).endswith("<|header_start|>assistant<|header_end|>\n\n")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bomb", list(BOMBS))
def test_other_model_with_a_bomb_gets_plain_completion(bomb: str, bounded: None) -> None:
    template, cause = BOMBS[bomb]
    fmt, warnings = choose_format(_info(template + "{# other #}", arch="llama"))
    assert fmt.kind is PromptFormatKind.COMPLETION_ONLY
    assert len(warnings) == 1
    assert cause in warnings[0]
    assert warnings[0].endswith("Herd offers plain completion only.")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bomb", ["nested-loops", "huge-constant"])
def test_compare_with_llama4_stops_a_bomb(bomb: str, bounded: None) -> None:
    template, cause = BOMBS[bomb]
    with pytest.raises(TemplateError, match=cause.replace(".", r"\.")) as caught:
        compare_with_llama4(template + "{# compare #}")
    assert "use another build" in caught.value.hint


@pytest.mark.timeout(60)
def test_in_process_rendering_is_bounded_too(bounded: None) -> None:
    # Herd renders a usable template in its own process later; the sandbox bounds it there.
    compile_template(HUGE_CONSTANT)  # intercepted operators are not folded while compiling
    with pytest.raises(TemplateError, match="it would build a value of 10,000,000,000"):
        render_chat_template(HUGE_CONSTANT, USER)
    with pytest.raises(TemplateError, match="it was still running after 2 s"):
        render_chat_template(NESTED_LOOPS.replace("x", ""), USER)  # no output at all


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("template", "cause"),
    [
        ("{% set a = 'xxxxxxxxxx' %}" + "{% set a = a ~ a %}" * 40, "build a value"),
        (
            "{% set a = [0] * 10 %}{% set b = [0] * 10 %}"  # tiny in memory, 10**11 to compare
            + "{% set a = [a] * 10 %}{% set b = [b] * 10 %}" * 10
            + "{{ a == b }}",
            "build a value",
        ),
        (
            "{% set t = (0,) * 10 %}"
            + "{% set t = (t, t, t, t, t, t, t, t, t, t) %}" * 10
            + "{{ {t: 1} }}",
            "build a value",
        ),  # hashing it is as costly
        ("{% set a = 'x' %}" + "{% set a = dict(a=a, b=a) %}" * 40, "build a value"),
        (
            "{% macro m() %}{% for i in range(100000) %}" + "L" * 1000 + "{% endfor %}"
            "{% endmacro %}{{ m()|length }}",
            "wrote more than",
        ),
        ("{{ 'x'.center(10**9) }}", "width or count of 1,000,000,000"),
        ("{{ '%0999999999d' % 1 }}", "width of 10 digits"),
        ("{{ 'x'|center(9999999999) }}", "width or count of 9,999,999,999"),
        ("{{ [1]|tojson(indent=100000) }}", "indent"),
        ("{{ 2 ** 100000 }}", "a number of 200,000 bits"),
        (
            "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}",
            "still running after 2 s",
        ),
    ],
)
def test_in_process_bounds(template: str, cause: str, bounded: None) -> None:
    with pytest.raises(TemplateError, match=LIMITS) as caught:
        render_chat_template(template, USER)
    assert cause in caught.value.user_message


def test_regex_filters_are_left_out() -> None:
    # striptags on "<<<<..." is quadratic inside the regex engine, where nothing can stop it
    with pytest.raises(TemplateError, match="No filter named 'striptags'"):
        render_chat_template("{{ ('<' * 100000)|striptags }}", USER)
    with pytest.raises(TemplateError, match="'lipsum' is undefined"):
        render_chat_template("{{ lipsum(10**6) }}", USER)


@pytest.mark.skipif(
    not FIXTURE.exists(), reason="tests/fixtures/llama4_official_template.jinja absent"
)
def test_official_template_check_is_cheap_and_cached() -> None:
    template = FIXTURE.read_text(encoding="utf-8") + "{# cheap #}"
    start = time.monotonic()
    first = check_model_template(template, bos_token="<|begin_of_text|>")
    assert first.verdict is ProbeVerdict.RENDERED
    assert time.monotonic() - start < 3.0  # a child interpreter: ~0.2 s on a laptop
    start = time.monotonic()
    assert check_model_template(template, bos_token="<|begin_of_text|>") == first
    assert time.monotonic() - start < 0.05


# -- the child process's own bounds, with stand-in children --------------------------------
def _fake_child(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    command = [sys.executable, "-c", code]
    monkeypatch.setattr(template_probe, "_child_command", lambda: command)


READY = "import sys, time; print('herd-template-probe-ready 0', flush=True); sys.stdin.read(); "


@pytest.mark.timeout(60)
def test_child_that_hangs_is_killed(monkeypatch: pytest.MonkeyPatch, bounded: None) -> None:
    _fake_child(monkeypatch, READY + "time.sleep(60)")
    result = template_probe._run_child(b"{}")
    assert result is not None and result.verdict is ProbeVerdict.OVER_BUDGET
    assert "still running after 2 s" in result.user_message


@pytest.mark.timeout(60)
def test_child_that_grows_is_killed(monkeypatch: pytest.MonkeyPatch, bounded: None) -> None:
    # what RLIMIT_AS stops on Linux, the parent's watch stops everywhere
    grow = "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20)); time.sleep(0.005)"
    _fake_child(monkeypatch, READY.replace("; ", "\n") + grow)
    result = template_probe._run_child(b"{}")
    assert result is not None and result.verdict is ProbeVerdict.OVER_BUDGET
    assert "used more than 256 MiB" in result.user_message


@pytest.mark.timeout(60)
def test_child_that_dies_is_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, READY + "sys.exit(3)")
    result = template_probe._run_child(b"{}")
    assert result is not None and result.verdict is ProbeVerdict.OVER_BUDGET
    assert "ended with code 3" in result.user_message


@pytest.mark.timeout(60)
def test_without_a_child_the_check_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, "import sys; sys.exit(1)")  # never says it is ready
    template = "{{ messages[0]['content'] }}{# no child #}"
    assert check_model_template(template).rendered == "  You are Herd\u2019s careful assistant.\n\n"
    monkeypatch.setattr(template_probe, "_child_command", lambda: ["/nonexistent/python"])
    result = check_model_template(HUGE_CONSTANT + "{# no child #}")
    assert result.verdict is ProbeVerdict.OVER_BUDGET


@pytest.mark.skipif(resource is None, reason="no RLIMIT_AS here")
def test_child_limits_its_address_space() -> None:
    code = (
        "from app.core.chat.template_probe import _limit_address_space\n"
        "_limit_address_space()\n"
        "try:\n    bytearray(400 << 20)\nexcept MemoryError:\n    raise SystemExit(7)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 7

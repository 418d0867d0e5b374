"""The streamed reply's hold-back, OpenAI's tool_calls shape, and the engine's one turn."""

from __future__ import annotations

import json
import threading

import pytest

from app.core import events as ev
from app.core.chat.tool_calls import ParsedReply
from app.core.chat.tools import ToolCall
from app.core.jobs import CancelToken
from app.server.tool_replies import HeldReply
from app.server.turn import SERVER, WINDOW, EngineTurn, in_turn
from app.server.wire import Reply, tool_names

NAMES = frozenset({"get_weather"})
FINISHED = ev.Finished(10, 5, 100.0, 20.0, ev.StopReason.END_OF_TURN)


def _stream(pieces: list[str], names: frozenset[str] | None) -> tuple[str, ParsedReply]:
    held = HeldReply(names)
    sent = "".join(held.feed(p) for p in pieces)
    return sent, held.end()


@pytest.mark.parametrize(
    "pieces",
    [
        ['{"name": "get_', 'weather", "parameters": ', '{"city": "Paris"}}'],
        ["<|python_start|>", "<|python_end|>", '{"name": "get_weather", "parameters": {}}'],
        ["\n", "[get_wea", "ther(city='Paris')]"],
        ["<func", "tion=get_weather>", '{"city": "Paris"}</function>'],
    ],
)
def test_a_streamed_call_is_held_back_and_read_at_the_end(pieces: list[str]) -> None:
    sent, rest = _stream(pieces, NAMES)
    assert sent == ""
    assert [c.name for c in rest.calls] == ["get_weather"]


def test_text_streams_as_soon_as_it_cannot_be_a_call() -> None:
    held = HeldReply(NAMES)
    assert held.feed("  ") == ""  # blanks: still undecided
    assert held.feed("The") == "  The"
    assert held.feed(" weather") == " weather"
    assert held.end() == ParsedReply("")


def test_held_text_that_is_not_a_call_is_sent_at_the_end() -> None:
    sent, rest = _stream(["[1, 2", ", 3]"], NAMES)
    assert sent == "" and rest == ParsedReply("[1, 2, 3]")
    sent, rest = _stream(["{", '"a": 1}'], None)  # no tools: never held
    assert sent == '{"a": 1}' and rest == ParsedReply("")


def test_completion_with_tool_calls_has_openais_shape() -> None:
    reply = ParsedReply("", (ToolCall("get_weather", {"city": "Zürich"}),))
    body = Reply("m").completion(reply, FINISHED, "stop")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Zürich"}
    plain = Reply("m").completion(ParsedReply("hi"), FINISHED, "stop")["choices"][0]
    assert plain["message"] == {"role": "assistant", "content": "hi"}
    assert plain["finish_reason"] == "stop"


def test_tool_names_reads_openais_and_bare_definitions() -> None:
    tools = [{"type": "function", "function": {"name": "a"}}, {"name": "b"}, {"x": 1}]
    assert tool_names(tools) == {"a", "b"}


def test_the_turn_is_one_at_a_time_and_a_waiter_can_give_up() -> None:
    turn = EngineTurn()
    mine = CancelToken()
    assert turn.try_take(SERVER, mine) and turn.holder == SERVER
    waiting = CancelToken()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(turn.take(WINDOW, waiting)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # it waits its turn
    waiting.cancel()
    waiter.join(2)
    assert got == [False] and turn.holder == SERVER
    assert turn.interrupt(SERVER) and mine.cancelled  # a model change stops the holder
    assert not turn.interrupt(WINDOW)
    turn.give_back()
    assert turn.holder == "" and turn.try_take(WINDOW)
    turn.give_back()


def test_a_window_job_waits_for_the_turn_says_so_and_gives_it_back() -> None:
    turn = EngineTurn()
    assert turn.try_take(SERVER)

    def job(_cancel: CancelToken) -> object:
        assert turn.holder == WINDOW
        yield "reply"

    cancel = CancelToken()
    events: list[object] = []

    def run() -> None:
        events.extend(in_turn(turn, job)(cancel))  # type: ignore[arg-type]

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(0.2)
    assert runner.is_alive()  # waiting, and it says so; the job has not run
    assert events == [ev.Notice("Waiting for the local server to finish a request…")]
    turn.give_back()  # the server's reply ended
    runner.join(2)
    assert events[1:] == [ev.Notice(""), "reply"]
    assert turn.holder == ""
    # cancelled while waiting: it ends as a stopped reply with nothing written
    assert turn.try_take(SERVER)
    stopped = CancelToken()
    stopped.cancel()
    out = list(in_turn(turn, job)(stopped))  # type: ignore[arg-type]
    assert isinstance(out[-1], ev.Finished) and out[-1].generated_tokens == 0
    assert turn.holder == SERVER
    turn.give_back()

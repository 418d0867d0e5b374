"""A loaded model's prompt format: Herd's Llama 4 renderer, the GGUF's own template, or none.

Llama 4 always gets Herd's renderer of the official format (:mod:`llama4_format`); another
model gets its own embedded template, rendered in the bounded sandbox
(:mod:`template_check`), or plain completion when it has none.

Continuing the last reply (``continue_final_message``) leaves it open. A model's own
template has no such switch: it is rendered without the generation prompt, and cut after
the last reply's text, found by the same sentinels that tell contents from the template's
own text (as transformers cuts at the final message). A template whose rendering cannot be
cut there reliably is refused, and :meth:`PromptFormat.continue_problem` says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.core.chat.llama4_format import (
    BEGIN_OF_TEXT,
    EOT,
    LLAMA4_FORMAT_NAME,
    STOP_TOKENS,
    Segment,
    join_segments,
    render_llama4_segments,
)
from app.core.chat.messages import ChatMessage, Role
from app.core.chat.template_check import render_chat_template_segments
from app.core.errors import TemplateError


class PromptFormatKind(Enum):
    """Where a model's prompt text comes from."""

    LLAMA4 = "llama4"
    """Herd's own renderer of Llama 4's official format."""
    MODEL_TEMPLATE = "model_template"
    """The Jinja chat template embedded in the GGUF (``tokenizer.chat_template``)."""
    COMPLETION_ONLY = "completion_only"
    """No chat template at all: plain text completion only."""


@dataclass(frozen=True, slots=True)
class PromptFormat:
    """How to turn a conversation into prompt text for one model.

    Plain data (no callables), so it can be sent to the engine process as is.

    Attributes:
        name: Shown to people, e.g. "Llama 4 (official)" or "model's own template".
        kind: Which renderer is used.
        stop_strings: Text that ends generation, besides the model's end-of-generation tokens.
        template: The Jinja source, for :attr:`PromptFormatKind.MODEL_TEMPLATE` only.
        bos_token: The model's BOS text, passed to its template as ``bos_token``.
        eos_token: The model's EOS text, passed to its template as ``eos_token``.
    """

    name: str
    kind: PromptFormatKind
    stop_strings: tuple[str, ...] = ()
    template: str | None = None
    bos_token: str = ""
    eos_token: str = ""

    @classmethod
    def llama4(cls) -> PromptFormat:
        """Herd's renderer of Llama 4's official format."""
        return cls(
            name=LLAMA4_FORMAT_NAME,
            kind=PromptFormatKind.LLAMA4,
            stop_strings=STOP_TOKENS,
            bos_token=BEGIN_OF_TEXT,
            eos_token=EOT,
        )

    @classmethod
    def from_model_template(
        cls,
        template: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        stop_strings: Sequence[str] = (),
        name: str = "the model's own chat template",
    ) -> PromptFormat:
        """The GGUF's own Jinja chat template, rendered in a sandbox.

        Args:
            template: ``tokenizer.chat_template`` from the GGUF.
            bos_token: The text of the model's BOS token.
            eos_token: The text of the model's EOS token; it is also a stop string.
            stop_strings: More stop strings (e.g. the template's end-of-turn marker).
            name: Shown to people.

        Raises:
            TemplateError: The template is empty.
        """
        if not template or not template.strip():
            raise TemplateError(
                "The model's chat template is empty.",
                "Use plain completion with this model.",
            )
        stops = tuple(dict.fromkeys(s for s in (*stop_strings, eos_token) if s))
        return cls(
            name=name,
            kind=PromptFormatKind.MODEL_TEMPLATE,
            stop_strings=stops,
            template=template,
            bos_token=bos_token,
            eos_token=eos_token,
        )

    @classmethod
    def completion_only(cls, *, eos_token: str = "") -> PromptFormat:
        """For a model without a chat template: chat is refused, completion works."""
        return cls(
            name="plain completion (no chat template)",
            kind=PromptFormatKind.COMPLETION_ONLY,
            stop_strings=(eos_token,) if eos_token else (),
            eos_token=eos_token,
        )

    @property
    def supports_chat(self) -> bool:
        """Whether :meth:`render` can turn a conversation into a prompt."""
        return self.kind is not PromptFormatKind.COMPLETION_ONLY

    def render(
        self,
        messages: Sequence[ChatMessage],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        continue_final_message: bool = False,
    ) -> str:
        """Render a conversation into prompt text (:meth:`render_segments`, joined).

        Raises:
            TemplateError: The model has no chat template, the conversation breaks the
                format, or the model's template fails.
        """
        return join_segments(
            self.render_segments(
                messages,
                add_generation_prompt=add_generation_prompt,
                tools=tools,
                continue_final_message=continue_final_message,
            )
        )

    def render_segments(
        self,
        messages: Sequence[ChatMessage],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        continue_final_message: bool = False,
    ) -> list[Segment]:
        """Render a conversation as format text and message contents (see :data:`Segment`).

        Args:
            messages: The conversation.
            add_generation_prompt: End with the assistant's header so the model answers.
            tools: Tool definitions (JSON schemas, as for Hugging Face's
                ``apply_chat_template``), or None. A model's own template gets them as
                ``tools``.
            continue_final_message: Leave the last message, a reply, open so the model
                continues it (no end of turn after it, no generation prompt).

        Raises:
            TemplateError: The model has no chat template, the conversation breaks the
                format, the model's template fails, or the reply cannot be left open.
        """
        if self.kind is PromptFormatKind.LLAMA4:
            return render_llama4_segments(
                messages,
                add_generation_prompt=add_generation_prompt,
                tools=tools,
                continue_final_message=continue_final_message,
            )
        if self.kind is PromptFormatKind.MODEL_TEMPLATE and self.template is not None:
            segments = render_chat_template_segments(
                self.template,
                messages,
                add_generation_prompt=add_generation_prompt and not continue_final_message,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
                tools=tools,
            )
            return _open_final(segments, messages[-1]) if continue_final_message else segments
        raise TemplateError(
            "This model has no chat template; use plain completion.",
            "Switch to completion mode, or load an instruction-tuned model that ships a "
            "chat template.",
        )

    def continue_problem(self) -> str:
        """Why this format cannot continue a reply ("" when it can), in a person's words.

        A model's own template is tried on a short conversation (a quick render in the
        sandbox); call it off the GUI thread, once per load.
        """
        if self.kind is PromptFormatKind.LLAMA4:
            return ""
        if not self.supports_chat:
            return "This model has no chat template, so there is no reply to continue."
        probe = [ChatMessage(Role.USER, "Hello"), ChatMessage(Role.ASSISTANT, CONTINUE_PROBE)]
        try:
            self.render_segments(probe, continue_final_message=True)
        except TemplateError as exc:
            return exc.user_message
        return ""


CONTINUE_PROBE = "Hello! How can I"


def _open_final(segments: list[Segment], last: ChatMessage) -> list[Segment]:
    """``segments`` cut right after the last message's text, which must be a reply's.

    A template that trims contents (Gemma's) ends the reply at its trimmed end, and so
    does the prompt: the model continues from there.
    """
    if last.role is not Role.ASSISTANT or last.tool_calls or last.expects_tool_result:
        raise TemplateError("Only a reply in words can be continued.", "Regenerate it instead.")
    tail = last.pieces()[-1].strip()
    contents = [i for i, (_, is_format) in enumerate(segments) if not is_format]
    if not tail or not contents or not segments[contents[-1]][0].rstrip().endswith(tail):
        # the template hides or rewrites the reply's end, or its contents were not found
        raise TemplateError(
            "This model's chat template cannot leave its last reply open to continue it.",
            "Regenerate the reply instead.",
        )
    return segments[: contents[-1] + 1]


def select_prompt_format(
    architecture: str,
    chat_template: str | None,
    *,
    bos_token: str = "",
    eos_token: str = "",
) -> PromptFormat:
    """Pick the prompt format for a model; never another model's format by accident.

    A Llama 4 model always gets Herd's renderer (its embedded template can be checked
    against it with ``template_check.compare_with_llama4``). Any other model gets its own
    embedded template, or plain completion only when it has none.

    Args:
        architecture: ``general.architecture`` from the GGUF.
        chat_template: ``tokenizer.chat_template`` from the GGUF, if any.
        bos_token: The text of the model's BOS token.
        eos_token: The text of the model's EOS token.
    """
    if architecture.strip().lower() == "llama4":
        return PromptFormat.llama4()
    if chat_template and chat_template.strip():
        return PromptFormat.from_model_template(
            chat_template, bos_token=bos_token, eos_token=eos_token
        )
    return PromptFormat.completion_only(eos_token=eos_token)

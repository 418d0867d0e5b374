"""Choosing how a loaded model's chats are formatted, with the warnings people should see."""

from __future__ import annotations

import logging

from app.core.chat.llama4_format import STOP_TOKENS
from app.core.chat.prompt_format import PromptFormat, PromptFormatKind, select_prompt_format
from app.core.chat.template_check import check_model_template
from app.core.chat.template_compare import compare_with_llama4
from app.core.errors import TemplateError
from app.core.gguf.info import GGUFInfo
from app.core.settings import TemplateChoice

logger = logging.getLogger(__name__)


def choose_format(
    info: GGUFInfo,
    choice: TemplateChoice = TemplateChoice.HERD,
    *,
    bos_token: str = "",
    eos_token: str = "",
) -> tuple[PromptFormat, list[str]]:
    """The prompt format for ``info`` and the warnings to show with it.

    Llama 4 gets Herd's renderer of the official format; when the GGUF carries its own
    template it is rendered on a probe conversation and compared, and a difference
    becomes a warning. ``choice=MODEL`` uses the GGUF's template instead. Other models use
    their own template, or plain completion only: never another model's format.

    A file's template is first rendered in a child process bounded to 2 s / 256 MiB
    (``template_check.check_model_template``); one that does not compile or runs past
    the limits is never used, and a warning says why.
    """
    warnings: list[str] = []
    fmt = select_prompt_format(
        info.arch, info.chat_template, bos_token=bos_token, eos_token=eos_token
    )
    if info.is_llama4 and info.chat_template:
        try:
            comparison = compare_with_llama4(info.chat_template)
        except TemplateError as exc:
            warnings.append(
                f"The model's own chat template cannot be rendered "
                f"({exc.user_message.rstrip('.')}); Herd uses Llama 4's official format."
            )
        else:
            if not comparison.matches and comparison.warning:
                if choice is TemplateChoice.MODEL:
                    fmt = PromptFormat.from_model_template(
                        info.chat_template,
                        bos_token=bos_token,
                        eos_token=eos_token,
                        stop_strings=STOP_TOKENS,
                    )
                    warnings.append(
                        comparison.warning.replace(
                            "Herd uses the official format.",
                            "Herd uses the model's template, as chosen in the settings.",
                        )
                    )
                else:
                    warnings.append(comparison.warning)
    elif fmt.kind is PromptFormatKind.MODEL_TEMPLATE and fmt.template:
        check = check_model_template(fmt.template, bos_token=bos_token, eos_token=eos_token)
        if not check.usable:
            fmt = PromptFormat.completion_only(eos_token=eos_token)
            warnings.append(
                f"The model's own chat template cannot be used "
                f"({check.user_message.rstrip('.')}); Herd offers plain completion only."
            )
    elif not fmt.supports_chat:
        warnings.append(
            "This model has no chat template, so it can only continue text (plain completion)."
        )
    for warning in warnings:
        logger.warning("%s: %s", info.path.name, warning)
    return fmt, warnings

"""The chat: conversations, the transcript and its Markdown, the composer, the sidebar."""

"""The long-context truth probe: needles hidden in long prompts, and how many come back."""

"""Settings: sampling, system-prompt presets, appearance and the engine's verdict."""

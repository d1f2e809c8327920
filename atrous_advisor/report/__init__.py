"""Result models (pydantic) and their renderers."""

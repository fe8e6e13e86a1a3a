"""procmem: procedural memory for AI agents."""

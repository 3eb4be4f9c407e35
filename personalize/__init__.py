"""On-device personalization: LoRA on the chat GGUF's own weights, exported back to a GGUF adapter.

Heavy libraries (torch, transformers, peft) are imported inside the functions that need them.
"""

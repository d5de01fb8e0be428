"""Model folders for tests: a real transformers causal LM, tiny and randomly initialised."""

from __future__ import annotations

from pathlib import Path


def tiny_llama_folder(folder: Path) -> Path:
    """Write a LlamaForCausalLM (2 layers, width 32) with the bundled SmolLM2 tokenizer and its chat template
    into ``folder`` (config, safetensors, tokenizer): what a model hub repository holds."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from adaptive_engine.models_bundled import bundled_chat_model_dir, world_readable

    tokenizer = AutoTokenizer.from_pretrained(str(bundled_chat_model_dir()))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # Imported by a job, which runs as another uid when the server is root (pytest's folders are 0700).
    return world_readable(folder)

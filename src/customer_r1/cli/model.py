"""`customer-r1 model init`: offline base models (no hub downloads needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("init")
def init(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the HF model + tokenizer to.")],
    tiny: Annotated[bool, typer.Option("--tiny", help="A small Llama decoder from a config.")] = False,
    smollm2: Annotated[
        bool, typer.Option("--smollm2", help="SmolLM2-135M-Instruct from the bundled GGUF.")
    ] = False,
    data: Annotated[
        Path | None, typer.Option("--data", help="Built examples whose texts train the tiny tokenizer.")
    ] = None,
    vocab_size: Annotated[int, typer.Option(help="Tiny: tokenizer vocabulary.")] = 4096,
    hidden_size: Annotated[int, typer.Option(help="Tiny: hidden size.")] = 192,
    layers: Annotated[int, typer.Option(help="Tiny: decoder layers.")] = 4,
    heads: Annotated[int, typer.Option(help="Tiny: attention heads.")] = 6,
    max_positions: Annotated[int, typer.Option(help="Tiny: context length.")] = 4096,
    seed: Annotated[int, typer.Option(help="Tiny: initialisation seed.")] = 0,
) -> None:
    """Write a base model folder: --tiny (tokenizer trained on --data) or --smollm2."""
    if tiny == smollm2:
        raise typer.BadParameter("choose exactly one of --tiny or --smollm2")
    if smollm2:
        from customer_r1.training.bases import smollm2_dir

        path = smollm2_dir(out)
    else:
        from customer_r1.training.bases import TinyModelConfig, init_tiny_model

        if data is None:
            raise typer.BadParameter(
                "--tiny needs --data BUILT to train its tokenizer on", param_hint="--data"
            )
        cfg = TinyModelConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 8 // 3,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 3),
            max_position_embeddings=max_positions,
            seed=seed,
        )
        path = init_tiny_model(out, built=data, config=cfg)
    typer.echo(str(path))

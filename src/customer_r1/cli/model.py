"""`customer-r1 model init`: offline base models (no hub downloads needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from customer_r1.cli.entry import new_app
from customer_r1.cli.params import input_option, output_option

app = new_app(no_args_is_help=True)


@app.command("init")
def init(
    out: Annotated[Path, output_option("--out", help="Folder to write the HF model + tokenizer to.")],
    tiny: Annotated[bool, typer.Option("--tiny", help="A small Llama decoder from a config.")] = False,
    smollm2: Annotated[
        bool, typer.Option("--smollm2", help="SmolLM2-135M-Instruct from the bundled GGUF.")
    ] = False,
    data: Annotated[
        Path | None,
        input_option("built", "--data", help="Built examples whose texts train the tiny tokenizer."),
    ] = None,
    vocab_size: Annotated[int, typer.Option(min=64, help="Tiny: tokenizer vocabulary.")] = 4096,
    hidden_size: Annotated[int, typer.Option(min=1, help="Tiny: hidden size.")] = 192,
    layers: Annotated[int, typer.Option(min=1, help="Tiny: decoder layers.")] = 4,
    heads: Annotated[int, typer.Option(min=1, help="Tiny: attention heads.")] = 6,
    max_positions: Annotated[int, typer.Option(min=1, help="Tiny: context length.")] = 4096,
    seed: Annotated[int, typer.Option(help="Tiny: initialisation seed.")] = 0,
) -> None:
    """Write a base model folder: --tiny (tokenizer trained on --data) or --smollm2.

    The folder is written under a temporary name and renamed when complete, so an
    interrupted init never leaves a checkpoint without its weights or tokenizer.
    """
    from customer_r1.errors import BadOption
    from customer_r1.io import atomic_dir

    if tiny == smollm2:
        raise BadOption("choose exactly one of --tiny or --smollm2", where="--tiny / --smollm2")
    if smollm2:
        from customer_r1.training.bases import smollm2_dir

        with atomic_dir(out) as tmp:
            smollm2_dir(tmp)
    else:
        from customer_r1.training.bases import TinyModelConfig, init_tiny_model, texts_of_built

        if data is None:
            raise BadOption("--tiny needs --data BUILT to train its tokenizer on", where="--data")
        if hidden_size % heads or heads % max(1, heads // 3):
            raise BadOption(f"--hidden-size {hidden_size} and --heads {heads} do not fit: the hidden "
                            "size must be a multiple of the heads, the heads of their third",
                            where="--heads", hint="e.g. --hidden-size 192 --heads 6")
        texts = texts_of_built(data)  # a missing split or corrupt file fails before any training
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
        with atomic_dir(out) as tmp:
            init_tiny_model(tmp, texts=texts, config=cfg)
    typer.echo(str(out))

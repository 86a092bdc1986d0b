"""What a ``--model`` (or ``--tokenizer``) string points at, decided once for every command.

transformers treats any string it cannot find locally as a Hub repo id, so a typo in a
local path came back as "Repo id must use alphanumeric chars ..." after seconds of
imports. The rules here answer first, in one line:

* an existing folder must be a checkpoint: ``config.json`` (or a PEFT
  ``adapter_config.json``), weights (``*.safetensors``, ``pytorch_model*.bin`` or
  ``adapter_model.*``) and a tokenizer (``tokenizer.json`` or ``tokenizer_config.json``);
  what is missing is named;
* a path-like string (starts with ``/``, ``./``, ``../`` or ``~``, holds a backslash or
  more than one ``/``, or ends with ``/``) that does not exist is "no model at X";
* only a string shaped like a Hub id (``name`` or ``org/name``) is taken as one; it is
  found in the local Hugging Face cache, or else the Hub is asked (unless
  ``HF_HUB_OFFLINE=1``), and an unreachable Hub says so.

:func:`check_model_arg` is the cheap part (no network, for option parsing);
:func:`resolve_model` adds the Hub look-up and is called right before loading.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from customer_r1.errors import BadInput, ModelNotFound

#: Hub repo ids: ``name`` or ``org/name`` of letters, digits, ``-``, ``_`` and ``.``.
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
#: Names the project resolves itself (the bundled SmolLM2 tokenizer and weights).
BUNDLED = ("smollm2",)

_WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "adapter_model.bin")
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json")
_HINT = "pass a checkpoint folder (config.json, weights, tokenizer) or a Hub id such as org/name"


def looks_like_path(value: str) -> bool:
    """True for strings a user meant as a file-system path, never as a Hub id."""
    return (
        value.startswith(("/", "./", "../", "~"))
        or value in (".", "..")
        or "\\" in value
        or value.count("/") > 1
        or value.endswith("/")
    )


def looks_like_hub_id(value: str) -> bool:
    """``name`` or ``org/name`` with the Hub's characters (no ``--`` or ``..``)."""
    return (
        not looks_like_path(value)
        and bool(_HUB_ID.match(value))
        and "--" not in value
        and ".." not in value
        and not value.endswith((".", "-"))
    )


def missing_parts(path: str | Path, *, tokenizer_only: bool = False) -> list[str]:
    """What a checkpoint folder lacks, in words (empty when complete)."""
    p = Path(path)
    tokenizer = any((p / name).is_file() for name in _TOKENIZER)
    if tokenizer_only:
        return [] if tokenizer else ["a tokenizer (tokenizer.json or tokenizer_config.json)"]
    missing: list[str] = []
    adapter = (p / "adapter_config.json").is_file()
    if not adapter and not (p / "config.json").is_file():
        missing.append("config.json")
    if not any(any(p.glob(pattern)) for pattern in _WEIGHTS):
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    if not tokenizer:
        missing.append("a tokenizer (tokenizer.json or tokenizer_config.json)")
    return missing


def check_model_arg(value: str, where: str = "--model", *, tokenizer_only: bool = False) -> str:
    """The local half of the rules (see the module doc): no network, cheap enough for
    option parsing. Returns ``value``; a Hub-shaped string passes unchecked."""
    what = "tokenizer" if tokenizer_only else "model"
    if value in BUNDLED:
        return value
    p = Path(value).expanduser()
    if p.exists():
        if not p.is_dir():
            raise BadInput(f"{value} is a file, not a {what} folder", where=where, hint=_HINT)
        missing = missing_parts(p, tokenizer_only=tokenizer_only)
        if missing:
            raise BadInput(
                f"{value} is not a {what} checkpoint: missing {', '.join(missing)}", where=where,
                hint="point at the folder `save_pretrained` wrote (model init, train sft/grpo --output_dir)",
            )
        return value
    if looks_like_hub_id(value):
        return value
    raise ModelNotFound(f"no {what} at {value}", where=where, hint=_HINT)


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` set to a true value."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _cached(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)
    except (ValueError, OSError):  # not a valid id for the cache layout
        return False


def resolve_model(
    value: str, where: str = "--model", *, tokenizer_only: bool = False, timeout: float = 5.0
) -> str:
    """:func:`check_model_arg`, then a Hub id must be in the local cache or on a reachable
    Hub. Returns what ``from_pretrained`` should get (the string itself)."""
    check_model_arg(value, where, tokenizer_only=tokenizer_only)
    if value in BUNDLED or Path(value).expanduser().exists():
        return value
    marker = "tokenizer_config.json" if tokenizer_only else "config.json"
    if _cached(value, marker):
        return value
    what = "tokenizer" if tokenizer_only else "model"
    unreachable = ModelNotFound(
        f"no local directory {value} and the Hugging Face Hub is unreachable"
        + (" (HF_HUB_OFFLINE=1)" if hub_offline() else ""),
        where=where, hint=f"pass a local {what} checkpoint path",
    )
    if hub_offline():
        raise unreachable
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(value, timeout=timeout)
    except GatedRepoError:
        return value  # it exists; from_pretrained explains the access rules
    except RepositoryNotFoundError as exc:
        raise ModelNotFound(
            f"no local directory {value} and no {what} {value} on the Hugging Face Hub",
            where=where, hint=_HINT,
        ) from exc
    except Exception as exc:  # any transport failure means the same thing here
        raise unreachable from exc
    return value

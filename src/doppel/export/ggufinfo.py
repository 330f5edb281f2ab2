"""What a GGUF from `doppel export` says about its run, so `doppel serve --engine llama.cpp` can
serve the file alone: whom it plays (the run's speakers, the exporting user) and its context
window. One JSON string under RUN_KEY; the speaker names are in the chat template's roles anyway."""

from __future__ import annotations

import json
from pathlib import Path

from doppel.errors import DoppelError
from doppel.runs import RunInfo

RUN_KEY = "doppel.run"


def add_run_info(writer, info: RunInfo, max_length: int) -> None:
    """Write the run's speakers, me (by name only) and context window into a GGUFWriter."""
    me = (info.me or {}).get("name")
    record = {"base_model": info.base_model, "method": info.method,
              "me": {"name": me} if me else None, "speakers": info.speakers,
              "trained_speakers": info.trained_speakers, "max_length": max_length}
    writer.add_string(RUN_KEY, json.dumps(record, ensure_ascii=False))


def read_run_info(path: Path) -> RunInfo:
    """The RunInfo a doppel GGUF carries, or a one-line error for any other GGUF."""
    from doppel.ggufread import FastGGUFReader

    try:
        field = FastGGUFReader(path).fields.get(RUN_KEY)
    except (ValueError, OSError) as error:
        raise DoppelError(f"{path} is not a readable GGUF file ({error})") from None
    if field is None:
        raise DoppelError(f"{path} was not written by `doppel export` (or by an older doppel): "
                          "re-export the run with `doppel export RUN -o FILE.gguf`")
    record = json.loads(bytes(field.parts[field.data[0]]).decode("utf-8"))
    return RunInfo(**record, path=path)

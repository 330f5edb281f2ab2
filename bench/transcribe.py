"""Benchmark transcription for `doppel prepare --transcribe`: seconds of audio heard per second.

Usage: python bench/transcribe.py [--clip FLAC] [--threads 2] [--repeats 3] [--model FOLDER]
                                  [--no-transformers]

Rows, all on the same clip (../shared/fixtures/voice/whisper__jfk.flac, 11 s, "...my fellow
Americans, ask not what your country can do for you...") and the same CPU threads:
- faster-whisper (CTranslate2) with the packaged tiny.en model (or --model), as prepare runs it
  (int8, greedy), and with int8 beam 5 and float32 greedy for comparison; each row says whether
  the words came out right;
- transformers' Whisper (already a dependency) with a randomly initialised model of tiny.en's
  shape, forced to write as many tokens: its speed only, since no package ships its weights.
CPU seconds are printed next to wall seconds: the machine may be shared, so compare rows of one
run (the ratio), not runs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
CLIP = HERE.parents[1] / "shared" / "fixtures" / "voice" / "whisper__jfk.flac"
WORDS = ("fellow americans", "your country")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(run, repeats: int) -> tuple[float, float, str]:
    """(best wall seconds, CPU seconds of that run, text) after one warm-up run."""
    text = run()
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), _cpu()
        text = run()
        best = min(best, (time.perf_counter() - wall, _cpu() - cpu))
    return best[0], best[1], text


def faster_whisper_rows(audio, folder: Path, threads: int, repeats: int) -> list[tuple]:
    from faster_whisper import WhisperModel

    rows = []
    for label, compute, beam in (("int8, greedy (prepare)", "int8", 1),
                                 ("int8, beam 5", "int8", 5), ("float32, greedy", "float32", 1)):
        started = time.perf_counter()
        model = WhisperModel(str(folder), device="cpu", compute_type=compute,
                             cpu_threads=threads, local_files_only=True)
        load_s = time.perf_counter() - started

        def run(model=model, beam=beam) -> str:
            segments, _ = model.transcribe(audio, beam_size=beam,
                                           condition_on_previous_text=False)
            return " ".join(s.text.strip() for s in segments)

        wall, cpu, text = _timed(run, repeats)
        rows.append((f"faster-whisper {label}", load_s, wall, cpu, text))
    return rows


def transformers_row(audio, threads: int, repeats: int, tokens: int) -> tuple:
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers.utils import logging

    logging.set_verbosity_error()  # forced lengths are the point here, not a mistake to warn of
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=51864, d_model=384, encoder_layers=4, decoder_layers=4,
                           encoder_attention_heads=6, decoder_attention_heads=6,
                           encoder_ffn_dim=1536, decoder_ffn_dim=1536)
    started = time.perf_counter()
    model = WhisperForConditionalGeneration(config).eval()
    load_s = time.perf_counter() - started
    features = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=16000,
                                                       return_tensors="pt").input_features

    def run() -> str:
        with torch.inference_mode():
            model.generate(features, max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, num_beams=1)
        return "(random weights: speed only)"

    wall, cpu, text = _timed(run, repeats)
    return ("transformers Whisper, tiny.en's shape, greedy", load_s, wall, cpu, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="a faster-whisper folder "
                        "(default: the packaged tiny.en)")
    parser.add_argument("--no-transformers", action="store_true")
    args = parser.parse_args()
    if not args.clip.is_file():
        sys.exit(f"{args.clip} is not present")
    from faster_whisper.audio import decode_audio

    from doppel.voice.model import find_model

    audio = decode_audio(str(args.clip), sampling_rate=16000)
    seconds = len(audio) / 16000
    model = find_model(args.model)
    rows = faster_whisper_rows(audio, model.folder, args.threads, args.repeats)
    if not args.no_transformers:
        tokens = len(rows[0][4].split()) * 4 // 3 + 4  # about the tokens the real model wrote
        rows.append(transformers_row(audio, args.threads, args.repeats, tokens))
    print(f"clip: {args.clip.name}, {seconds:.1f} s of audio; model: {model.name}; "
          f"{args.threads} threads; best of {args.repeats} after a warm-up")
    print(f"{'engine':48} {'load s':>7} {'wall s':>7} {'cpu s':>7} {'audio s/s':>10}  words")
    for label, load_s, wall, cpu, text in rows:
        right = "random" if text.startswith("(") else (
            "right" if all(w in text.lower() for w in WORDS) else "WRONG")
        print(f"{label:48} {load_s:7.2f} {wall:7.2f} {cpu:7.2f} {seconds / wall:10.2f}  {right}")
    print(f"transcript (prepare's settings): {rows[0][4]}")


if __name__ == "__main__":
    main()

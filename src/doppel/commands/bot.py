"""`doppel bot RUN_DIR --token-file FILE`: the twin answers in Telegram."""

from __future__ import annotations

from doppel.bot import options as bo
from doppel.infer import options as opt

_DEFAULT = bo.BotSettings


def command(
    run_dir: opt.RunDir,
    token_file: bo.TokenFile = None,
    persona: bo.Persona = None,
    allow: bo.Allow = None,
    friend: bo.Friend = None,
    groups: bo.Groups = _DEFAULT.groups,
    state: bo.State = None,
    api_url: bo.ApiUrl = _DEFAULT.api_url,
    delay_per_char: bo.DelayPerChar = _DEFAULT.delay_per_char,
    max_history: bo.MaxHistory = _DEFAULT.max_history,
    verbose: bo.Verbose = False,
    temperature: opt.Temperature = opt.SamplingParams.temperature,
    top_p: opt.TopP = opt.SamplingParams.top_p,
    top_k: opt.TopK = opt.SamplingParams.top_k,
    repetition_penalty: opt.RepetitionPenalty = opt.SamplingParams.repetition_penalty,
    max_new_tokens: opt.MaxNewTokens = opt.SamplingParams.max_new_tokens,
    seed: opt.Seed = None,
    merge: opt.Merge = True,
    max_length: opt.MaxLength = None,
    dtype: opt.Dtype = "auto",
) -> None:
    """Run the twin as a Telegram bot (long polling; stop it with Ctrl-C or SIGTERM)."""
    from doppel.bot.app import serve

    token = bo.read_token(token_file)
    params = opt.sampling(temperature, top_p, top_k, repetition_penalty, max_new_tokens, seed)
    settings = bo.BotSettings.from_flags(
        run_dir, state, allow, friend, persona=persona, groups=groups, api_url=api_url,
        delay_per_char=delay_per_char, max_history=max_history, verbose=verbose, params=params)
    serve(token, settings, lambda: opt.load_engine(run_dir, merge, max_length, dtype))

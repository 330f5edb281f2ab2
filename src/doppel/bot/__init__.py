"""`doppel bot`: the twin answers in Telegram, with the engine and chat format of `doppel chat`.

options.py (flags and settings) -> app.py (the bot's life; client.py the Bot API server, logs.py
the log) -> handlers.py (who may talk, commands, recording) -> replies.py (one generation at a
time, fair across chats) -> outgoing.py (typing, pacing, splitting, retries). incoming.py reads a
Telegram message the way the dataset reads an export's; store.py keeps the histories in SQLite.
"""

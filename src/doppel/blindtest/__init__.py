"""`doppel blindtest`: "which one is real?", asked of the user's own friends.

options.py (the flags) -> items.py (which held-out turns each judge may see: only chats they
were in) -> prepare.py (candidates generated once, shuffled, stored) -> store.py (the test and
its answers in one owner-only SQLite file next to the run folder) -> server.py + static/ (one
page per judge link) and doppel.bot.quiz (/quiz in Telegram) -> results.py (twin-picked shares
with bootstrap intervals) -> report.py (the terminal and Markdown tables).
"""

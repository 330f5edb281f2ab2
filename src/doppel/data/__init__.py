"""From the Message stream to the dataset folder (`doppel prepare`).

options.py        PrepareOptions: every option's type, default, help and check (the CLI flags)
pipeline.py       prepare_dataset(): one read of the export -> the dataset folder, atomically
selection.py      which chats are used, and why the others are not
masking.py        phones, emails, cards (and URLs) -> [phone] [email] [card] [url]
gaps.py           the pause histogram and the automatic session gap
conversations.py  segments -> conversations, monologues, the train/val split
exports.py        opening several exports, their fingerprint, the --list-speakers list
identities.py     who "me" is in each source (--me, --identities); one person across apps
speakers.py       clean, unique speaker names
report.py         report.md, report.html, plots/*.png, drawn from the manifest
dataset.py        THE dataset folder contract (read and write)
"""

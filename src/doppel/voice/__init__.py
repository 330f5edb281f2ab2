"""Voice messages as words (`doppel prepare --transcribe`, the optional `doppel[voice]` extra).

media.py finds a voice message's audio inside its export, model.py finds the speech model (a
package's or the user's folder; nothing is downloaded), cache.py keeps transcripts by the audio's
sha256, transcribe.py runs the pass before prepare's read and hands it the words.
"""

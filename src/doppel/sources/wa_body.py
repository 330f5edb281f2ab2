"""What a WhatsApp message body is: text, a media placeholder, a deleted message, a system line.

The app writes these in the phone's language; the phrases below are the ones real exports show
(shared/docs/other-sources-format.md and public parsers' test data) for the most used locales.
An unknown language's placeholder stays text, which is harmless; a system line needs no phrase
when it has no `Name:` part (the reader's first test).
"""

from __future__ import annotations

import re

# "<Media omitted>" (Android), localised; compared lower-cased
_MEDIA_OMITTED = frozenset({
    "<media omitted>", "<medien ausgelassen>", "<multimedia omitido>", "<médias omis>",
    "<без медиафайлов>", "<mídia oculta>", "<media omessi>", "<media weggelaten>",
    "<arquivo de mídia oculto>", "<archivo omitido>", "<media dihilangkan>",
    "<medya dahil edilmedi>",
})
# iOS: "image omitted", "sticker omitted" ... -> the kind's marker
_OMITTED_WORDS = ("omitted", "omitido", "omitida", "weggelassen", "absente", "omis", "omise",
                  "omesso", "omessa", "отсутствует", "ocultado", "ocultada", "oculto", "oculta",
                  "dihilangkan", "weggelaten")
_KIND_WORDS = {
    "image": "[photo]", "imagen": "[photo]", "bild": "[photo]", "immagine": "[photo]",
    "imagem": "[photo]", "изображение": "[photo]", "photo": "[photo]", "gambar": "[photo]",
    "video": "[video]", "vídeo": "[video]", "vidéo": "[video]", "видео": "[video]",
    "audio": "[voice]", "аудио": "[voice]", "sticker": "[sticker]", "стикер": "[sticker]",
    "gif": "[gif]", "document": "[file]", "documento": "[file]", "dokument": "[file]",
    "документ": "[file]", "contact card": "[contact]", "tarjeta de contacto": "[contact]",
}
_ATTACHED = re.compile(r"(?:[^<>]*\s)?<(?:attached|anhang|angehängt|adjunto|adjunt|pièce jointe|"
                       r"прикреплено|приложение|anexado|anexo|allegato|bijlage|bijgevoegd|"
                       r"lampiran|dilampir|terlampir|eklendi|bifogat|vedlagt|załączono|"
                       r"添付ファイル|附件|첨부됨|đính kèm) ?: ?(?P<file>[^<>]+)>", re.IGNORECASE)
_FILE_ATTACHED = re.compile(r"(?P<file>\S.*?) \((?:file attached|datei angehängt|archivo adjunto|"
                            r"fichier joint|файл добавлен|arquivo anexado|file allegato|"
                            r"bestand bijgevoegd)\)", re.IGNORECASE)
_EDITED = re.compile(r"<[^<>]{0,40}(?:edited|editó|editad|bearbeitet|modifié|изменено|"
                     r"modificato|bewerkt|diedit)[^<>]{0,20}>$", re.IGNORECASE)
_DELETED = frozenset({
    "this message was deleted", "you deleted this message", "se eliminó este mensaje",
    "eliminaste este mensaje", "diese nachricht wurde gelöscht", "du hast diese nachricht gelöscht",
    "ce message a été supprimé", "vous avez supprimé ce message", "данное сообщение удалено",
    "вы удалили данное сообщение", "esta mensagem foi apagada", "você apagou esta mensagem",
    "questo messaggio è stato eliminato", "hai eliminato questo messaggio",
    "dit bericht is verwijderd", "je hebt dit bericht verwijderd", "pesan ini telah dihapus",
})
_POLL = ("POLL:", "ENCUESTA:", "UMFRAGE:", "SONDAGE:", "ОПРОС:", "ENQUETE:", "SONDAGGIO:")
_LOCATION = re.compile(r"(?:location|ubicación|standort|position|местоположение|localização|"
                       r"posizione|locatie|lokasi): https?://\S+$", re.IGNORECASE)
_LIVE_LOCATION = ("live location shared", "ubicación en tiempo real compartida")
_MEDIA_ENDS = (">", ")", *_OMITTED_WORDS)  # how a placeholder's first line ends

# the notice that opens every chat (iOS: "<group or contact>: Messages and calls are ..."); the
# words that say "end-to-end" in the app's most used languages
ENCRYPTION = re.compile(
    r"end-to-end|extremo a extremo|Ende-zu-Ende|de bout en bout|сквозным шифрованием|"
    r"ponta a ponta|ponto a ponto|uçtan uca|szyfrowan|наскрізним|エンドツーエンド|端到端|端對端|"
    r"종단간|mã hóa đầu cuối|hujung ke hujung|ende-til-ende|end-to-end-krypter|salataan|"
    r"koncovým šifrováním|d'extrem a extrem|مشفرة", re.IGNORECASE)
# system lines that a locale or iOS writes with a "Name: " part, wherever they are
ALWAYS_SYSTEM = re.compile(
    r"(?:Your security code with .{1,80} changed|"
    r"Messages to this group are now secured with end-to-end encryption|"
    r"(?:Missed|Silenced) (?:group )?(?:voice|video) call|Waiting for this message)")
SYSTEM_INITIALS = frozenset("YMSW")  # the first letters ALWAYS_SYSTEM can match
NOTICE_MESSAGES = 3  # the encryption notice is among a chat's first lines
# an event phrased as "<someone> <verb> ...": a system line when <someone> is the writer
ACTION = re.compile(
    r"(?:created (?:this )?group|created group|added |removed |left$|joined using|"
    r"changed (?:the subject|this group's|the group|their phone number|to )|"
    r"deleted this group's icon|pinned a message|turned (?:on|off) disappearing messages|"
    r"was added|were added|added you)")
_KINDS = (("STICKER", "[sticker]"), ("STK-", "[sticker]"), ("PHOTO", "[photo]"),
          ("IMG-", "[photo]"), ("VIDEO", "[video]"), ("VID-", "[video]"), ("GIF", "[gif]"),
          ("AUDIO", "[voice]"), ("PTT-", "[voice]"), ("AUD-", "[voice]"))
_EXTENSIONS = {"jpg": "[photo]", "jpeg": "[photo]", "png": "[photo]", "heic": "[photo]",
               "webp": "[sticker]", "mp4": "[video]", "mov": "[video]", "3gp": "[video]",
               "opus": "[voice]", "ogg": "[voice]", "m4a": "[voice]", "aac": "[voice]",
               "mp3": "[audio]", "gif": "[gif]", "vcf": "[contact]"}


def file_marker(name: str) -> str:
    """A media marker from an attachment's file name (00000035-PHOTO-..., IMG-...-WA0001.jpg)."""
    upper = name.upper()
    for key, marker in _KINDS:
        if key in upper:
            return marker
    return _EXTENSIONS.get(name.rsplit(".", 1)[-1].lower(), "[file]")


def attached_name(body: str) -> str | None:
    """The file name a media placeholder names (`PTT-...opus (file attached)`, `<attached: ...>`),
    or None (`<Media omitted>`, "image omitted": the export holds no file)."""
    first = body.partition("\n")[0]
    found = _ATTACHED.fullmatch(first) or _FILE_ATTACHED.fullmatch(first)
    name = found["file"].strip() if found else ""
    return name if name and "/" not in name and "\\" not in name else None


def _media(body: str) -> tuple[str, str] | None:
    """(marker, caption) when the body is a media placeholder, else None."""
    first, _, rest = body.partition("\n")
    if first.startswith("<"):
        if first.lower() in _MEDIA_OMITTED:
            return "[media]", rest
        attached = _ATTACHED.fullmatch(first)
        if attached:
            return file_marker(attached["file"]), rest
    if first.endswith(")") and "(" in first:
        attached = _FILE_ATTACHED.fullmatch(first)
        if attached:
            return file_marker(attached["file"]), rest
    if first.endswith(_OMITTED_WORDS):  # "image omitted", "Some.pdf • 2 pages document omitted"
        words = first.lower().rsplit(" ", 3)
        kind = _KIND_WORDS.get(" ".join(words[-3:-1])) or _KIND_WORDS.get(words[-2], "")
        if kind or len(first) < 32:
            return kind or "[media]", rest
    if first.startswith(_POLL):
        question = (rest.partition("\n")[0] or first.partition(":")[2]).strip()
        return f"[poll: {question}]", ""
    if _LOCATION.match(first) or first[:48].lower().startswith(_LIVE_LOCATION):
        return "[location]", rest
    return None


def read_body(body: str) -> tuple[str | None, str | None, str]:
    """(drop reason or None, media marker or None, text) of one message's body."""
    if body.endswith(">"):  # the mark is at most 64 characters: search only the end (a search
        # from every position of a long line, with a leading \s*, is quadratic)
        edited = _EDITED.search(body, max(0, len(body) - 64))
        if edited:
            body = body[:edited.start()].rstrip()
    if len(body) < 48:
        key = body.rstrip(". ").lower()
        if key in _DELETED:
            return "deleted", None, ""
        if key == "null":  # a view-once photo or video
            return "view_once", None, ""
    first = body.partition("\n")[0]
    if first.endswith(_MEDIA_ENDS) or first.startswith(_POLL) or "://" in first \
            or first[:20].lower().startswith(_LIVE_LOCATION):
        media = _media(body)
    else:
        media = None
    if media is None:
        return None, None, body
    return None, media[0], media[1].strip()

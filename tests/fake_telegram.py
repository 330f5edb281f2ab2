"""A fake Telegram Bot API on loopback for `doppel bot` tests: no test reaches the internet.

It implements the methods the bot calls (getMe, getUpdates with long polling and offsets,
sendMessage, sendChatAction, deleteWebhook, setMyCommands, answerCallbackQuery), records every
call, and answers 429 (or 502) on demand. Tests push updates as Telegram would deliver them
and read what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

BOT_USER = {"id": 999, "is_bot": True, "first_name": "Twin", "username": "twin_bot",
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
LONG_POLL_CAP_S = 2.0  # a poll waits at most this long, so a stopped bot frees its thread soon


class FakeTelegram:
    """The server and its record: `calls` is [(method, params)] in arrival order."""

    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        self.updates: list[dict] = []
        self.failures: dict[str, list[tuple[int, dict]]] = {}
        self.member_counts: dict[int, int] = {}  # chat id -> getChatMemberCount (else 404)
        self.next_update_id = 1
        self.next_message_id = 5000
        self.condition = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTelegram:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what a test does -------------------------------------------------------------------
    def push(self, **update) -> int:
        """Deliver one update (its update_id is added); returns the id."""
        with self.condition:
            update["update_id"] = self.next_update_id
            self.next_update_id += 1
            self.updates.append(update)
            self.condition.notify_all()
            return update["update_id"]

    def say(self, user_id: int, text: str | None = None, first_name: str = "Sam",
            chat: dict | None = None, **fields) -> int:
        """A message from a user: in their private chat, or in `chat` (a group)."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat = chat or {"id": user_id, "type": "private", "first_name": first_name}
        message = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat,
                   "from": user, **fields}
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": len(command)}]
        return self.push(message=message)

    def tap(self, user_id: int, data: str, first_name: str = "Sam") -> int:
        """A user taps an inline button carrying `data` under a bot message in their chat."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        message = {"message_id": self._message_id(), "date": int(time.time()), "chat": chat,
                   "from": BOT_USER, "text": "(the question)"}
        return self.push(callback_query={"id": f"cb{self.next_update_id}", "from": user,
                                         "chat_instance": str(user_id), "data": data,
                                         "message": message})

    def markups(self, chat_id: int) -> list:
        """The reply_markup of each message sent to a chat (None where there was none)."""
        with self.condition:
            found = []
            for method, params in self.calls:
                if method == "sendMessage" and params.get("ok") and int(params["chat_id"]) == \
                        chat_id:
                    markup = params.get("reply_markup")
                    found.append(json.loads(markup) if isinstance(markup, str) else markup)
            return found

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1) -> None:
        """The next call of `method` gets this error (429 with retry_after, or e.g. 502)."""
        body = {"ok": False, "error_code": status, "description": "Too Many Requests: retry "
                f"after {retry_after}" if status == 429 else "Bad Gateway"}
        if status == 429:
            body["parameters"] = {"retry_after": retry_after}
        with self.condition:
            self.failures.setdefault(method, []).append((status, body))

    def sent(self, chat_id: int | None = None) -> list[str]:
        """Texts the bot sent (to one chat), in order; failed attempts are not counted."""
        with self.condition:
            return [p["text"] for m, p in self.calls if m == "sendMessage" and p.get("ok")
                    and (chat_id is None or int(p["chat_id"]) == chat_id)]

    def methods(self) -> list[str]:
        with self.condition:
            return [method for method, _ in self.calls]

    def wait_for(self, check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self.condition:
            while not check():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or check}; calls: "
                                         f"{[(m, p.get('text')) for m, p in self.calls]}")
                self.condition.wait(min(left, 0.2))

    def wait_sent(self, chat_id: int, count: int, timeout: float = 30.0) -> list[str]:
        self.wait_for(lambda: len(self.sent(chat_id)) >= count, timeout,
                      f"{count} messages to chat {chat_id}")
        return self.sent(chat_id)

    def _message_id(self) -> int:
        self.next_message_id += 1
        return self.next_message_id

    # --- what the bot gets ------------------------------------------------------------------
    def answer(self, token: str, method: str, params: dict) -> tuple[int, dict]:
        params["time"] = time.monotonic()
        with self.condition:
            self.calls.append((method, params))
            self.condition.notify_all()
            if token != self.token:
                return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            queued = self.failures.get(method)
            if queued:
                return queued.pop(0)
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._poll(params)}
        result = self._result(method, params)
        if result is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if method == "sendMessage":
            with self.condition:
                params["ok"] = True
                self.condition.notify_all()
        return 200, {"ok": True, "result": result}

    def _result(self, method: str, params: dict):
        if method == "getMe":
            return BOT_USER
        if method in ("deleteWebhook", "setMyCommands", "sendChatAction", "answerCallbackQuery"):
            return True
        if method == "getChatMemberCount":
            return self.member_counts.get(int(params["chat_id"]))
        if method == "sendMessage":
            chat_id = int(params["chat_id"])
            with self.condition:
                message_id = self._message_id()
            return {"message_id": message_id, "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                    "from": BOT_USER, "text": params["text"]}
        return None

    def _poll(self, params: dict) -> list[dict]:
        """Updates from `offset` on (older ones are confirmed and dropped), waiting for one."""
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), LONG_POLL_CAP_S)
        deadline = time.monotonic() + wait
        with self.condition:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self.condition.wait(deadline - time.monotonic())
            return self.updates[:limit]


def _handler(fake: FakeTelegram):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            _, token, method = self.path.split("/", 2)
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size).decode("utf-8")
            if self.headers.get("Content-Type", "").startswith("application/json"):
                params = json.loads(body or "{}")
            else:
                params = dict(parse_qsl(body))
            status, answer = fake.answer(token.removeprefix("bot"), method, params)
            data = json.dumps(answer).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the bot hung up (a poll cancelled at shutdown)
                pass

        do_GET = do_POST

        def log_message(self, *args) -> None:  # quiet: the record is `calls`
            pass

    return Handler

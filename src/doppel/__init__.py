"""doppel: a language model that chats like you and your friends, from your Telegram export."""

__version__ = "0.1.0"

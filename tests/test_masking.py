"""Privacy masking: what is masked, what is left alone, and the counts."""

from __future__ import annotations

import pytest

from doppel.data.masking import Masker, luhn_valid


@pytest.mark.parametrize("text", [
    "call me at +1 415 555 2671 tonight",
    "мой номер 8 (916) 123-45-67",
    "+7 916 123 45 67",
    "ring 020 7946 0958 after six",
    "(415) 555-2671",
    "+44 7911 123456",
    "89161234567",
    "Berlin: 030 12345678",
    "my new number is +44 7911 482730 btw",  # possible but unallocated: still a phone number
])
def test_phone_numbers_in_several_formats_are_masked(text):
    masker = Masker()
    masked = masker.mask(text)
    assert "[phone]" in masked
    assert not any(ch.isdigit() for ch in masked), masked
    assert masker.counts["phone"] == 1


def test_two_phones_and_surrounding_text_kept():
    masker = Masker()
    text = "home +7 916 123 45 67, work 8 (916) 765-43-21."
    assert masker.mask(text) == "home [phone], work [phone]."
    assert masker.counts["phone"] == 2


@pytest.mark.parametrize("text", [
    "meet at 2023-10-12 14:30", "I have 1234567 reasons", "pin 1234", "lol 😂", "order #12 of 40",
])
def test_dates_short_numbers_and_plain_text_are_left_alone(text):
    masker = Masker()
    assert masker.mask(text) == text
    assert sum(masker.counts.values()) == 0


def test_emails_are_masked():
    masker = Masker()
    assert masker.mask("write to a.b+c@ex-ample.co.uk.") == "write to [email]."
    assert masker.mask("или на иван@почта.рф") == "или на [email]"
    assert masker.mask("twitter @handle is not an email") == "twitter @handle is not an email"
    assert masker.counts["email"] == 2


def test_cards_need_a_valid_luhn_checksum():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    masker = Masker()
    text = "card 4111 1111 1111 1111, old 4111-1111-1111-1112, amex 378282246310005"
    assert masker.mask(text) == "card [card], old 4111-1111-1111-1112, amex [card]"
    assert masker.counts["card"] == 2


def test_urls_only_when_asked():
    text = "see https://example.com/a?b=1). and www.foo.org"
    assert Masker().mask(text) == text
    masker = Masker(urls=True)
    assert masker.mask(text) == "see [url]). and [url]"
    assert masker.counts["url"] == 2


def test_export_entities_are_masked_even_when_the_patterns_miss_them():
    masker = Masker()
    entities = [("phone", "555-0101"), ("email", "me@localhost"), ("bank_card", "1234"),
                ("mention", "@sam")]
    masked = masker.mask("me@localhost or 555-0101, card ends 1234, ask @sam", entities)
    assert masked == "[email] or [phone], card ends [card], ask @sam"
    assert (masker.counts["email"], masker.counts["phone"], masker.counts["card"]) == (1, 1, 1)

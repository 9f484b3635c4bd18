"""The personal-details detector: true and false examples of each kind."""

from __future__ import annotations

import pytest

from redress.pipeline.text import (
    DetailKind,
    cn_resident_id_valid,
    find_personal_details,
    us_ssn_valid,
)


def kinds(text: str) -> list[tuple[DetailKind, str]]:
    return [(d.kind, d.text) for d in find_personal_details(text)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("她的电话 13812345678 快打", "13812345678"),
        ("call +86 138 1234 5678 now", "+86 138 1234 5678"),
        ("0086-139-8765-4321", "0086-139-8765-4321"),
        ("UK: +44 20 7946 0958", "+44 20 7946 0958"),
        ("ring 0044 20 7946 0958", "0044 20 7946 0958"),
        ("her cell (415) 555-0134", "(415) 555-0134"),
        ("415-555-0134 text only", "415-555-0134"),
    ],
)
def test_phone_numbers_are_found(text: str, found: str) -> None:
    assert kinds(text) == [(DetailKind.PHONE, found)]


@pytest.mark.parametrize(
    "text",
    [
        "posted 2024-05-17 at 10:30",
        "price 12345678901234567 yuan",  # too long for any phone plan
        "version 1.2.3.4",
        "room 12345",
        "order #20240517",
        "12812345678",  # 12x is not a Chinese mobile prefix
        "+1 555",  # too few digits
    ],
)
def test_things_that_look_numeric_are_not_phones(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ig @lucy_w98", "@lucy_w98"),
        ("follow instagram.com/lucy.w", "instagram.com/lucy.w"),
        ("https://www.tiktok.com/@someone_x", "https://www.tiktok.com/@someone_x"),
        ("t.me/her_channel", "t.me/her_channel"),
        ("https://x.com/somebody", "https://x.com/somebody"),
        ("weibo.com/u/1234567890", "weibo.com/u/1234567890"),
        ("微信: lucy_1990", "lucy_1990"),
        ("WeChat ID lucy-1990", "lucy-1990"),
    ],
)
def test_handles_are_found(text: str, found: str) -> None:
    assert kinds(text) == [(DetailKind.HANDLE, found)]


@pytest.mark.parametrize(
    "text",
    ["mail me at someone@example.com", "meet @ 5pm", "look @ this", "example.com/page"],
)
def test_emails_and_at_signs_are_not_handles(text: str) -> None:
    assert kinds(text) == []


# 11010519491231002X is the published example of a valid Chinese resident ID.
@pytest.mark.parametrize("number", ["11010519491231002X", "11010519491231002x"])
def test_valid_resident_id(number: str) -> None:
    assert cn_resident_id_valid(number)
    assert kinds(f"身份证 {number}") == [(DetailKind.CN_RESIDENT_ID, number)]


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("110105194912310021", "wrong check character"),
        ("110105194902300027", "30 February"),
        ("110105219912310021", "born in the future"),
        ("910105194912310021", "area code cannot start with 9"),
        ("11010519491231002", "17 characters"),
    ],
)
def test_invalid_resident_ids_are_rejected(number: str, why: str) -> None:
    assert not cn_resident_id_valid(number), why
    assert all(d.kind is not DetailKind.CN_RESIDENT_ID for d in find_personal_details(number))


def test_a_valid_id_is_not_also_reported_as_a_phone() -> None:
    assert [d.kind for d in find_personal_details("11010519491231002X")] == [
        DetailKind.CN_RESIDENT_ID
    ]


@pytest.mark.parametrize("ssn", ["123-45-6788", "536 22 1234", "001-01-0001"])
def test_valid_ssns_are_found(ssn: str) -> None:
    assert kinds(f"SSN {ssn}") == [(DetailKind.US_SSN, ssn)]


@pytest.mark.parametrize(
    "ssn",
    [
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "912-12-3456",  # area 9xx (ITINs)
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "078-05-1120",  # the Woolworth wallet sample
        "123-45 6789",  # mixed separators
    ],
)
def test_invalid_ssns_are_rejected(ssn: str) -> None:
    assert all(d.kind is not DetailKind.US_SSN for d in find_personal_details(ssn))


def test_ssn_ranges() -> None:
    assert us_ssn_valid("665", "01", "0001")
    assert not us_ssn_valid("666", "01", "0001")


def test_a_doxxing_caption_reports_every_detail_in_order() -> None:
    caption = "Lucy 13812345678 ig @lucy_w98 身份证 11010519491231002X"
    assert [d.kind for d in find_personal_details(caption)] == [
        DetailKind.PHONE,
        DetailKind.HANDLE,
        DetailKind.CN_RESIDENT_ID,
    ]

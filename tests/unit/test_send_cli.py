"""``wapipe send``: the options become a job checked against the contract; an invalid one exits
2 with msgspec's reason, before anything is published."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from wapipe.cli import localsandbox
from wapipe.cli.errors import UNREACHABLE, USAGE, CommandError
from wapipe.cli.send import InvalidJob, build_job, register, run_send
from wapipe.shared.schemas.jobs import MarkReadJob, SendJob, api_message
from wapipe.shared.settings import Settings

NUMBER = "109876000001"
SETTINGS = Settings()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wapipe")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["send", *argv])


def sent(*argv: str) -> SendJob:
    job = build_job(parse(*argv, "--from", NUMBER), SETTINGS)
    assert isinstance(job, SendJob)
    return job


def test_a_text_with_every_envelope_option() -> None:
    job = sent(
        "text", "--to", "16315551181", "--body", "Shipped: https://t.example.com", "--preview-url",
        "--key", "order-42", "--callback-data", "order:42", "--reply-to", "wamid.IN",
    )  # fmt: skip
    assert (job.idempotency_key, job.callback_data, job.reply_to) == (
        "order-42",
        "order:42",
        "wamid.IN",
    )
    assert api_message(job)["text"] == {
        "body": "Shipped: https://t.example.com",
        "preview_url": True,
    }


def test_a_fresh_key_each_time_by_default() -> None:
    argv = ("text", "--to", "1", "--body", "a")
    assert sent(*argv).idempotency_key != sent(*argv).idempotency_key


def test_a_document_by_relative_file_is_sent_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    job = sent(
        "document",
        "--to",
        "1",
        "--file",
        "prices.pdf",
        "--caption",
        "Prices",
        "--filename",
        "p.pdf",
    )
    assert api_message(job, media_id="7")["document"] == {
        "id": "7",
        "caption": "Prices",
        "filename": "p.pdf",
    }
    assert job.message.document.file == str(tmp_path / "prices.pdf")  # type: ignore[union-attr]


def test_a_template_with_header_and_body_parameters() -> None:
    job = sent("template", "--to", "1", "--name", "order_update", "--language", "en_US",
               "--header-param", "Ana", "--param", "42", "--param", "Friday")  # fmt: skip
    assert api_message(job)["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Ana"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "42"}, {"type": "text", "text": "Friday"}],
            },
        ],
    }


def test_a_reaction_and_a_mark_read_with_typing() -> None:
    job = sent("reaction", "--to", "1", "--message-id", "wamid.IN", "--emoji", "👍")
    assert api_message(job)["reaction"] == {"message_id": "wamid.IN", "emoji": "👍"}
    read = build_job(
        parse("mark-read", "--from", NUMBER, "--message-id", "wamid.IN", "--typing"), SETTINGS
    )
    assert read == MarkReadJob(
        idempotency_key=read.idempotency_key,
        phone_number_id=NUMBER,
        message_id="wamid.IN",
        typing=True,
    )


def test_a_whole_job_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    location = {"type": "location", "location": {"latitude": 1.5, "longitude": 2.5}}
    job: dict[str, object] = {"kind": "send", "idempotency_key": "k", "phone_number_id": NUMBER}
    job.update(to="1", message=location)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(job).encode())))
    decoded = build_job(parse("job", "-"), SETTINGS)
    assert isinstance(decoded, SendJob)
    assert api_message(decoded)["location"] == {"latitude": 1.5, "longitude": 2.5}


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (
            ("text", "--from", NUMBER, "--to", "1", "--body", "x" * 4097),
            "length <= 4096 - at `$.message.text.body`",
        ),
        (
            ("image", "--from", NUMBER, "--to", "1", "--link", "ftp://x"),
            "at `$.message.image.link`",
        ),
        (
            ("text", "--from", NUMBER, "--to", "1", "--body", "a", "--callback-data", "c" * 513),
            "length <= 512",
        ),
        (
            ("template", "--from", NUMBER, "--to", "1", "--name", "Bad Name", "--language", "en"),
            "at `$.message.template.name`",
        ),
        (
            (
                "reaction",
                "--from",
                NUMBER,
                "--to",
                "1",
                "--message-id",
                "w",
                "--emoji",
                "x",
                "--reply-to",
                "w",
            ),
            "a reaction cannot reply",
        ),
        (("text", "--to", "1", "--body", "a"), "give --from"),
        (("text", "--from", "12.3", "--to", "1", "--body", "a"), "at `$.phone_number_id`"),
    ],
)
def test_an_invalid_job_exits_2_with_the_reason_and_publishes_nothing(
    argv: tuple[str, ...],
    reason: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No --from and no setting: a local sandbox's number would do; none answers here (a
    # `wapipe up` of another test on this machine must not decide this one).
    monkeypatch.setattr(localsandbox, "local_business", lambda: None)
    with pytest.raises(InvalidJob, match=None) as raised:
        build_job(parse(*argv), SETTINGS)
    assert reason in str(raised.value)
    # No broker here: an invalid job never gets as far as connecting.
    unreachable = Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/")
    with pytest.raises(CommandError) as refused:
        run_send(unreachable, parse(*argv))
    if "--from" in argv:
        assert (refused.value.code, str(refused.value)) == (USAGE, f"invalid job: {raised.value}")
    else:  # no number at all: a setting is missing, not a flag wrong
        assert refused.value.code == UNREACHABLE
        assert str(refused.value).startswith("no number to send from: give --from")


def test_a_job_file_that_is_not_json_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text("{not json")
    with pytest.raises(InvalidJob, match="JSON is malformed"):
        build_job(parse("job", str(tmp_path / "job.json")), SETTINGS)


def test_a_media_needs_exactly_one_source() -> None:
    with pytest.raises(SystemExit):
        parse("image", "--to", "1", "--id", "1", "--link", "https://x.example.com/a.jpg")

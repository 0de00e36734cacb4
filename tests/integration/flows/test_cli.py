"""``wapipe flows`` against the sandbox: the endpoint's keys made, set on the number and read
back; Flow JSON checked before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.account_support import environment, wapipe
from tests.integration.sandbox_support import SandboxClient
from wapipe.sandbox.keys import WORLD
from wapipe.shared.flows import keys


def number_of(sandbox: SandboxClient) -> str:
    return next(iter(sandbox.app[WORLD].businesses))


async def test_a_generated_public_key_is_set_on_the_number_and_read_back(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    env = environment(sandbox, f"sqlite:///{tmp_path}/w.db")
    made = await wapipe(env, "flows", "keys", "generate", "--out", str(tmp_path / "k"))
    assert made.code == 0, made.err
    private = keys.load_private((tmp_path / "k" / "private.pem").read_text())[0]
    public = str(tmp_path / "k" / "public.pem")
    number = number_of(sandbox)
    uploaded = await wapipe(
        env, "flows", "keys", "upload", "--public-key", public, "--from", number
    )
    assert uploaded.code == 0, uploaded.err
    shown = await wapipe(env, "flows", "keys", "show", "--from", number)
    stored = json.loads(shown.out)["data"][0]
    assert stored["business_public_key"] == keys.public_pem(private).strip()
    assert stored["business_public_key_signature_status"] == "VALID"


async def test_a_key_that_is_not_a_public_key_is_refused_before_any_call(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    env = environment(sandbox, f"sqlite:///{tmp_path}/w.db")
    (tmp_path / "not.pem").write_text("hello")
    ran = await wapipe(
        env, "flows", "keys", "upload", "--public-key", str(tmp_path / "not.pem"), "--from", "1"
    )
    assert ran.code == 2
    assert ran.err.strip() == f"wapipe flows keys upload: {tmp_path}/not.pem: not a PEM public key"
    assert not [r for r in sandbox.app[WORLD].requests if "encryption" in r.path]


async def test_an_encrypted_private_key_needs_its_passphrase(
    sandbox: SandboxClient, tmp_path: Path
) -> None:
    env = environment(sandbox, f"sqlite:///{tmp_path}/w.db", FLOWS_SECRET="s3cret")
    out = tmp_path / "k"
    made = await wapipe(
        env, "flows", "keys", "generate", "--out", str(out), "--passphrase-env", "FLOWS_SECRET"
    )
    assert made.code == 0, made.err
    text = (out / "private.pem").read_text()
    assert "ENCRYPTED" in text
    assert len(keys.load_private(text, ["s3cret"])) == 1
    assert (out / "private.pem").stat().st_mode & 0o077 == 0

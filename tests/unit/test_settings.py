"""Settings from the environment: names, types, secrets from files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from wapipe.shared.settings import Settings, SettingsError, from_env, require


def test_defaults_need_no_environment() -> None:
    settings = from_env({})
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.max_body_bytes == 3 * 1024 * 1024
    assert settings.confirm_timeout_s == 2.0


def test_values_are_read_and_converted() -> None:
    settings = from_env(
        {
            "WAPIPE_APP_SECRETS": " one, two ,",
            "WAPIPE_INGRESS_PORT": "9090",
            "WAPIPE_CONFIRM_TIMEOUT_S": "0.5",
            "UNRELATED": "x",
        }
    )
    assert settings.app_secrets == ("one", "two")
    assert settings.ingress_port == 9090
    assert settings.confirm_timeout_s == 0.5


def test_secret_is_read_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("from-a-file\n")
    assert from_env({"WAPIPE_VERIFY_TOKEN_FILE": str(path)}).verify_token == "from-a-file"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"WAPIPE_INGRESS_PORT": "eighty"}, "WAPIPE_INGRESS_PORT"),
        ({"WAPIPE_MAX_BODY_BYTES": "0"}, "WAPIPE_MAX_BODY_BYTES"),
        ({"WAPIPE_CONFIRM_TIMEOUT_S": "-1"}, "WAPIPE_CONFIRM_TIMEOUT_S"),
        ({"WAPIPE_LOG_FORMAT": "xml"}, "WAPIPE_LOG_FORMAT"),
        ({"WAPIPE_ACCESS_TOKEN_FILE": "/does/not/exist"}, "WAPIPE_ACCESS_TOKEN_FILE"),
        ({"WAPIPE_VERIFY_TOKEN": "a", "WAPIPE_VERIFY_TOKEN_FILE": "/x"}, "WAPIPE_VERIFY_TOKEN"),
    ],
)
def test_bad_value_names_its_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        from_env(environ)


def test_error_shows_the_bad_value_of_a_setting_that_is_not_secret() -> None:
    with pytest.raises(SettingsError) as caught:
        from_env({"WAPIPE_INGRESS_PORT": "not-a-port"})
    assert "not-a-port" in str(caught.value)


def test_require_names_each_missing_variable() -> None:
    with pytest.raises(SettingsError, match="WAPIPE_APP_SECRETS, WAPIPE_VERIFY_TOKEN"):
        require(Settings(), "app_secrets", "verify_token")


def test_repr_masks_secrets() -> None:
    settings = Settings(
        app_secrets=("s3cr3t",),
        verify_token="t0k3n",
        access_token="EAAB",
        amqp_url="amqp://u:p4ss@h/",
    )
    text = repr(settings) + str(settings)
    for secret in ("s3cr3t", "t0k3n", "EAAB", "p4ss"):
        assert secret not in text

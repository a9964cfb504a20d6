"""The AWS side of a run's configuration, resolved once by botocore with the aws cli's rules.

Both planes of :class:`~s3pump.store.s3.S3Store` (awscrt for data, botocore for control)
take endpoint, region, addressing style and credentials from one :class:`AwsSettings`,
so they can never disagree. Everything is botocore's own resolution, not a copy of it:

* **endpoint**: ``--endpoint-url`` (``TransferConfig.endpoint_url``), then what botocore
  configures for the ``s3`` client: ``AWS_ENDPOINT_URL_S3`` > ``AWS_ENDPOINT_URL`` > the
  profile's ``services`` section (``s3 = endpoint_url = ...``) > the profile's
  ``endpoint_url`` (AWS SDKs and Tools Reference Guide, "Service-specific endpoints");
  ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` turns the configured ones off. None: AWS
  S3 in the region (``https://s3.<region>.amazonaws.com``).
* **region**: ``--region``/``AWS_REGION``/``AWS_DEFAULT_REGION``, then the profile's
  ``region``, then ``us-east-1``.
* **addressing style**: the profile's ``s3 = addressing_style = path|virtual|auto``. ``auto``
  means virtual-hosted for AWS and path-style for a custom endpoint.
* **credentials**: botocore's chain (env, ``credential_process``, SSO, ``role_arn`` with
  ``source_profile``, web identity, container, IMDS), refreshed by botocore when they expire.
  IMDS lookups fail fast (1 s, 1 attempt) unless the profile or env sets
  ``metadata_service_timeout``/``metadata_service_num_attempts``.

:func:`profile_transfer_defaults` reads the aws cli's own ``s3`` knobs of the profile
(``max_concurrent_requests``, ``multipart_chunksize``, ``multipart_threshold``,
``max_bandwidth``) as defaults for s3pump's (AWS CLI User Guide, "AWS CLI S3 configuration").

Without botocore when its answer is known: importing botocore and building a session costs about
a tenth of the client CPU of a small run (issue 15). When no profile is named (flag,
``AWS_PROFILE``, ``AWS_DEFAULT_PROFILE``), both AWS config files are missing or empty, and the
environment holds static credentials (``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, no
``AWS_CREDENTIAL_EXPIRATION``) or the caller gives them, botocore's rules reduce to environment
variables alone (:func:`_without_config_files`, checked against botocore in
``tests/unit/test_awsconfig_fast.py``), and botocore is loaded only if the control plane needs
a client (:attr:`AwsSettings.session`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from .errors import CredentialsError, UsageError
from .units import parse_aws_size_bytes

if TYPE_CHECKING:
    import botocore.session

__all__ = ["NO_CREDENTIALS_MESSAGE", "AwsSettings", "config_failure", "freeze", "profile_transfer_defaults",
           "resolve_aws"]

NO_CREDENTIALS_MESSAGE = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, use --profile, or --embedded"
)
_ADDRESSING_STYLES = ("auto", "path", "virtual")


class FrozenCredentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


class StaticCredentials:
    """Credentials that never change (from the environment or given), without botocore: the part of
    ``botocore.credentials.Credentials`` that s3pump uses."""

    __slots__ = ("_frozen",)

    def __init__(self, access_key: str, secret_key: str, token: str | None) -> None:
        self._frozen = FrozenCredentials(access_key, secret_key, token)

    def get_frozen_credentials(self) -> FrozenCredentials:
        return self._frozen


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Endpoint, region, addressing style and credentials of one run, and the botocore session
    they came from (the control plane's client is created from it; made on first use when the
    settings were resolved without botocore).

    ``endpoint_url`` is None for AWS S3 itself; ``path_style`` is what both planes use;
    ``credentials`` is a ``botocore.credentials.Credentials`` (or :class:`StaticCredentials`).
    """

    endpoint_url: str | None
    region: str
    path_style: bool
    credentials: Any = field(repr=False)
    _session: list[Any] = field(default_factory=list, repr=False, compare=False)
    _static: tuple[str, str, str | None] | None = field(default=None, repr=False, compare=False)
    ca_bundle: str | None = None
    """PEM file of the CAs an https endpoint's certificate is checked against; None: the system's."""

    @property
    def session(self) -> botocore.session.Session:
        """botocore's session of these settings (created on first use after the fast path)."""
        if not self._session:
            session = _session(None)
            if self._static is not None:
                session.set_credentials(*self._static)
            self._session.append(session)
        return self._session[0]

    @property
    def endpoint_shown(self) -> str:
        """The endpoint as a user would name it (for messages)."""
        return self.endpoint_url or f"https://s3.{self.region}.amazonaws.com"


def _empty_file(path: str) -> bool:
    """A config file botocore would find nothing in: missing, an empty regular file, or /dev/null."""
    try:
        st = os.stat(os.path.expanduser(path))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_size == 0) or os.path.realpath(path) == os.devnull


def _without_config_files(
    endpoint_url: str | None, region: str | None, profile: str | None,
    static_credentials: tuple[str, str, str | None] | None, ca_bundle: str | None = None,
) -> AwsSettings | None:
    """botocore's answer when it has only the environment to go on (the module docstring says
    when); None when botocore must decide."""
    env = os.environ
    if profile is not None or "AWS_PROFILE" in env or "AWS_DEFAULT_PROFILE" in env:
        return None
    if not (_empty_file(env.get("AWS_CONFIG_FILE", "~/.aws/config"))
            and _empty_file(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))):
        return None
    if static_credentials is not None:
        credentials = StaticCredentials(*static_credentials)
    else:  # botocore's EnvProvider, first in its chain when no profile is named
        access_key, secret_key = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key or env.get("AWS_CREDENTIAL_EXPIRATION"):
            return None
        token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
        credentials = StaticCredentials(access_key, secret_key, token)
    endpoint = endpoint_url
    if endpoint is None and env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    _check_endpoint(endpoint)
    resolved_region = region or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return AwsSettings(endpoint, resolved_region, endpoint is not None, credentials, [], static_credentials,
                       _check_ca_bundle(ca_bundle or env.get("AWS_CA_BUNDLE"), "--ca-bundle or AWS_CA_BUNDLE",
                                        endpoint))


def _check_ca_bundle(path: str | None, where: str, endpoint: str | None) -> str | None:
    """``path`` expanded, when it names a readable PEM file (None for an ``http://`` endpoint, which
    has no certificate to check, as botocore ignores the bundle there).

    Raises:
        UsageError: it does not (exit 2), naming where it was set.
    """
    if not path or (endpoint or "").startswith("http://"):
        return None
    full = os.path.expanduser(path)
    try:
        with open(full, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise UsageError(f"CA bundle {path} ({where}): {e.strerror or e}; give a PEM file of CA "
                         "certificates") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise UsageError(f"CA bundle {path} ({where}): not a PEM file of CA certificates") from None
    return full


def _check_endpoint(endpoint: str | None) -> None:
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"endpoint URL {endpoint!r}: use http://host[:port] or https://host[:port]")


def config_failure(error: BaseException, profile: str | None) -> UsageError | CredentialsError | None:
    """The one-line error for what botocore raised while reading the AWS config files or fetching
    credentials (a malformed file, a ``credential_process`` that prints no JSON, a role whose STS
    cannot be reached or refuses); None for anything else (a defect, shown as such).
    Both are exit 2."""
    import botocore.exceptions as bx

    name = profile or os.environ.get("AWS_PROFILE") or "default"
    if isinstance(error, bx.ConfigParseError):
        return UsageError(f"AWS config file {error.kwargs.get('path')}: cannot be parsed; fix its syntax "
                          "([section] headers, 'key = value' lines)")
    if isinstance(error, bx.ProfileNotFound):
        return UsageError(f"profile {error.kwargs.get('profile', name)}: no such profile in the AWS config "
                          f"files ({os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')})")
    if isinstance(error, ValueError) and not isinstance(error, bx.BotoCoreError):
        # botocore's credential_process provider parses the command's output with json.loads
        return CredentialsError(f"credential_process of profile {name} did not print JSON credentials "
                                f"({error}); run the command by hand and fix its output")
    if isinstance(error, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return CredentialsError(f"AWS credentials of profile {name}: {error.kwargs.get('endpoint_url')} does not "
                                "answer (fetching the credentials: an STS role, SSO or a container endpoint); "
                                "check the network, AWS_ENDPOINT_URL_STS and the profile's role_arn/source_profile")
    if isinstance(error, bx.ClientError):
        err = error.response.get("Error", {})
        return CredentialsError(f"AWS credentials of profile {name}: {err.get('Code')} ({err.get('Message', '')}) "
                                "from the credential source; check the profile's role_arn, source_profile or SSO")
    if isinstance(error, bx.BotoCoreError):
        return CredentialsError(f"AWS credentials of profile {name}: {error}")
    return None


def freeze(credentials: Any, profile: str | None) -> FrozenCredentials:
    """``credentials.get_frozen_credentials()``: the first fetch of a role's, SSO's or a process's
    credentials happens here.

    Raises:
        UsageError, CredentialsError: see :func:`config_failure` (exit 2).
    """
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception as e:
        failure = config_failure(e, profile)
        if failure is None:
            raise
        raise failure from None
    return FrozenCredentials(frozen.access_key, frozen.secret_key, frozen.token)


def _session(profile: str | None) -> botocore.session.Session:
    import botocore.config
    import botocore.session

    session = botocore.session.Session(profile=profile)
    try:
        session.get_scoped_config()  # an unknown profile or a malformed file fails here, before any request
    except Exception as e:
        failure = config_failure(e, profile)
        if failure is None:
            raise
        raise failure from None
    # the clients botocore makes for itself (STS for a role, SSO) give up in seconds, not minutes;
    # s3pump's own S3 client sets its timeouts and retries over these
    session.set_default_client_config(botocore.config.Config(
        connect_timeout=5, read_timeout=4, retries={"mode": "standard", "total_max_attempts": 2}))
    # IMDS lookups fail fast unless the user configured them (botocore's defaults are the same
    # today: 1 s, 1 attempt; set so a future default cannot make "no credentials" slow).
    for name, value in (("metadata_service_timeout", 1), ("metadata_service_num_attempts", 1)):
        if session.get_config_variable(name) in (None, "1", 1):
            session.set_config_variable(name, value)
    return session


def _configured_endpoint(session: botocore.session.Session) -> str | None:
    """The endpoint botocore configures for an ``s3`` client (env, services section, profile)."""
    from botocore.configprovider import ConfiguredEndpointProvider

    if str(session.get_config_variable("ignore_configured_endpoint_urls")).lower() == "true":
        return None
    url = ConfiguredEndpointProvider(
        full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name="s3",
    ).provide()
    return str(url) if url else None


def resolve_aws(
    *, endpoint_url: str | None, region: str | None, profile: str | None,
    static_credentials: tuple[str, str, str | None] | None = None, ca_bundle: str | None = None,
) -> AwsSettings:
    """Resolve where and as whom a run talks to S3 (rules in the module docstring).

    Args:
        endpoint_url, region: flags (or s3pump's env); None lets botocore's config decide.
        ca_bundle: ``--ca-bundle``/``AWS_CA_BUNDLE``; None: the profile's ``ca_bundle``, else the
            system's trust store (AWS CLI User Guide, "ca_bundle").
        profile: ``--profile``/``AWS_PROFILE``; None: the default profile.
        static_credentials: ``(access key, secret, session token)`` given explicitly (``--embedded``).

    Raises:
        UsageError: an unknown profile, a bad ``addressing_style`` or endpoint URL (exit 2).
        CredentialsError: no credentials anywhere in the chain, or a profile's credential
            source failed (e.g. an expired SSO token, a failing ``credential_process``) (exit 2).
    """
    fast = _without_config_files(endpoint_url, region, profile, static_credentials, ca_bundle)
    if fast is not None:
        return fast
    return _with_botocore(endpoint_url, region, profile, static_credentials, ca_bundle)


def _with_botocore(
    endpoint_url: str | None, region: str | None, profile: str | None,
    static_credentials: tuple[str, str, str | None] | None, ca_bundle: str | None = None,
) -> AwsSettings:
    """:func:`resolve_aws` by botocore's own resolution (same arguments and errors)."""

    session = _session(profile)
    endpoint = endpoint_url or _configured_endpoint(session)
    _check_endpoint(endpoint)
    resolved_region = region or session.get_config_variable("region") or "us-east-1"
    s3_section = _s3_section(session)
    style = str(s3_section.get("addressing_style") or "auto").lower()
    if style not in _ADDRESSING_STYLES:
        raise UsageError(f"s3 addressing_style {style!r} in the AWS config: use auto, path or virtual")
    # virtual-hosted style needs a DNS name to put the bucket in front of: for an IP address or
    # localhost the aws cli (botocore) falls back to path style, and so does s3pump
    path_style = style == "path" or (endpoint is not None and (style == "auto" or _no_bucket_host(endpoint)))
    if static_credentials is not None:
        session.set_credentials(*static_credentials)
    try:
        credentials = session.get_credentials()
    except Exception as e:  # SSO expired, credential_process failed or printed no JSON, ...
        failure = config_failure(e, profile)
        if failure is None:
            raise
        raise failure from None
    if credentials is None:
        raise CredentialsError(NO_CREDENTIALS_MESSAGE)
    if ca_bundle:
        bundle = _check_ca_bundle(ca_bundle, "--ca-bundle or AWS_CA_BUNDLE", endpoint)
    else:
        bundle = _check_ca_bundle(session.get_config_variable("ca_bundle"),
                                  f"ca_bundle of profile {profile or 'default'}", endpoint)
    return AwsSettings(endpoint, resolved_region, path_style, credentials, [session], static_credentials, bundle)


def _no_bucket_host(endpoint: str) -> bool:
    """True for an endpoint whose host cannot carry a bucket name: an IP address or ``localhost``."""
    import ipaddress

    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _s3_section(session: botocore.session.Session) -> Mapping[str, Any]:
    section = session.get_scoped_config().get("s3")
    return section if isinstance(section, dict) else {}


def profile_transfer_defaults(profile: str | None) -> dict[str, Any]:
    """TransferConfig fields from the profile's aws cli ``s3`` settings, to use as defaults.

    ``max_concurrent_requests`` -> ``concurrency``; ``multipart_chunksize`` -> ``part_size_bytes``;
    ``multipart_threshold`` -> ``multipart_threshold_bytes``; ``max_bandwidth`` (``50MB/s``) ->
    ``max_bandwidth_bps``. Sizes follow the aws cli: ``KB``/``MB``/``GB``/``TB`` are binary
    (``5MB`` = 5 MiB), a bare number is bytes. Empty when there is no AWS config (or no profile).

    Raises:
        UsageError: a value is not a number or size, or the profile does not exist.
    """
    env = os.environ
    if (profile is None and "AWS_PROFILE" not in env and "AWS_DEFAULT_PROFILE" not in env
            and _empty_file(env.get("AWS_CONFIG_FILE", "~/.aws/config"))
            and _empty_file(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))):
        # no profile and no config files: botocore would find no s3 section (it reads one in the
        # credentials file's profile too)
        return {}
    import botocore.exceptions
    import botocore.session

    try:
        section = _s3_section(botocore.session.Session(profile=profile))
    except Exception as e:
        failure = config_failure(e, profile)
        if failure is None:
            raise
        raise failure from None
    out: dict[str, Any] = {}
    where = f"profile {profile or 'default'}, s3"
    value = section.get("max_concurrent_requests")
    if value is not None:
        if not str(value).strip().isdigit():
            raise UsageError(f"{where} max_concurrent_requests = {value!r}: give a whole number")
        out["concurrency"] = int(value)
    for key, name in (("multipart_chunksize", "part_size_bytes"),
                      ("multipart_threshold", "multipart_threshold_bytes"),
                      ("max_bandwidth", "max_bandwidth_bps")):
        value = section.get(key)
        if value is not None:
            text = str(value).strip()
            if key == "max_bandwidth" and text.lower().endswith("/s"):
                text = text[:-2]
            out[name] = parse_aws_size_bytes(text, what=f"{where} {key}")
    return out

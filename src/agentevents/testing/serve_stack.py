"""The second configuration: `agentevents serve` (gateway and worker in one process), configured
from its target profile, beside the native stack.

It keeps its own PostgreSQL database (``agentevents_serve`` on the native stack's server) and its
own Redis database (db 1), verifies RS256 tokens with a key pair made here
(``.stack/serve/signer.pem``), and takes issuer, audience, token grace and runs per tier from the
profile — so a run against it shows the suite holds a backend to what *its* profile declares,
not to the native stack's tuning. The native stack is started for its PostgreSQL and Redis when
it is not up, and stopped again afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .profile import Profile, TokenSpec

OFFSET = int(os.environ.get("AE_STACK_OFFSET", "0"))
PORT = 8600 + OFFSET
HEALTH_PORT = 8601 + OFFSET
CALLBACK_PORT = 8602 + OFFSET  # the test HTTP service its http_api tool may call (`callbacks`)
DATABASE = "agentevents_serve"
REDIS_DB = 1


def ws_url() -> str:
    return f"ws://127.0.0.1:{PORT}/ws"


def callback_url() -> str:
    """Where the suite serves the HTTP service the http_api scenarios call; the one base URL
    `agentevents serve` allows its http_api tool (AE_HTTP_ALLOWED_BASE_URLS)."""
    return f"http://127.0.0.1:{CALLBACK_PORT}"


def folder() -> Path:
    from ..stack import native
    return native.stack_dir() / "serve"


def key_files() -> tuple[Path, Path]:
    """The RS256 key pair the tokens are signed and verified with (made once)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    private, public = folder() / "signer.pem", folder() / "signer.pub.pem"
    if not private.exists():
        folder().mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        private.chmod(0o600)
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def token_spec(profile: Profile) -> TokenSpec:
    """The profile's token rules, with the key made here unless the profile names its own."""
    import dataclasses
    if profile.tokens.private_key_file or profile.tokens.algorithm.startswith("HS"):
        return profile.tokens
    private, _public = key_files()
    return dataclasses.replace(profile.tokens, private_key_file=str(private))


def environment(profile: Profile, database_url: str, redis_url: str) -> dict[str, str]:
    """`agentevents serve`'s AE_* settings, as the profile declares them."""
    tokens = token_spec(profile)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AE_")}
    env.update({
        "AE_HOST": "127.0.0.1", "AE_PORT": str(PORT), "AE_HEALTH_PORT": str(HEALTH_PORT),
        "AE_SERVER_ID": "serve", "AE_DATABASE_URL": database_url, "AE_REDIS_URL": redis_url,
        "AE_JWT_ALGORITHM": tokens.algorithm, "AE_JWT_ISSUER": tokens.issuer, "AE_JWT_AUDIENCE": tokens.audience,
        "AE_TOKEN_GRACE_S": f"{profile.limits.token_grace_s:g}",
        "AE_TIER_RUN_LIMITS": ",".join(f"{t}={n}" for t, n in profile.limits.runs_per_tier.items()),
        "AE_HTTP_ALLOWED_BASE_URLS": callback_url(),
        "AE_LOG_LEVEL": "WARNING",
    })
    if tokens.algorithm.startswith("HS"):
        env["AE_JWT_SECRET"] = tokens.secret
    else:
        env["AE_JWT_PUBLIC_KEY_FILE"] = str(key_files()[1])
    return env


def healthy(ws_port: int = PORT, health_port: int = HEALTH_PORT) -> bool:
    """The gateway (on the WebSocket port) and the worker (on its health port) both answer."""
    for port in (ws_port, health_port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status != 200:
                    return False
        except OSError:
            return False
    return True


@dataclass
class Serve:
    """A running `agentevents serve` and whether the native stack under it was started here."""

    process: subprocess.Popen[bytes]
    native_started: bool

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.native_started:
            from ..stack import native
            native.down()


def up(profile: Profile, timeout_s: float = 60.0) -> Serve:
    """Start the native stack's PostgreSQL and Redis if needed, then `agentevents serve` as the
    profile says; returns once its health endpoint answers (SystemExit with one line otherwise)."""
    from ..stack import native
    started = False
    if not native.supervisor_running(native.Paths(native.stack_dir())):
        native.up()
        started = True
    database_url = native.ensure_database(DATABASE)
    redis_url = native.stack_env()["AE_REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    log = folder() / "serve.log"
    folder().mkdir(parents=True, exist_ok=True)
    exe = str(Path(sys.executable).with_name("agentevents"))
    with open(log, "ab") as out:
        process = subprocess.Popen([exe, "serve", "--health-port", str(HEALTH_PORT)], stdout=out,
                                   stderr=subprocess.STDOUT, env=environment(profile, database_url, redis_url))
    serve = Serve(process, started)
    deadline = time.monotonic() + timeout_s
    while not healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            serve.stop()
            tail = log.read_text(errors="replace").splitlines()[-3:]
            raise SystemExit(f"agentevents serve did not become healthy on :{HEALTH_PORT}: " + " / ".join(tail))
        time.sleep(0.2)  # polling its health endpoint, with the deadline above
    return serve
